package postgres

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/internal/logging"
)

// notifier tells subscribers in other processes, through NOTIFY, that
// events were appended. (Subscribers of the same Store are woken directly.)
//
// NOTIFY is sent after the append has committed, from a background
// goroutine, coalesced and at most once per minInterval: while one is due,
// any number of appends result in one. Notifying inside the append
// transaction would take PostgreSQL's database-wide notify lock on every
// commit and serialize all writers. The payload is the Store's origin, so
// that its own listener, whose subscribers were woken directly, ignores
// it. The NOTIFY transaction commits
// asynchronously (no WAL flush to wait for): a notification lost in a crash
// only delays delivery until the subscribers' next poll, like any lost one.
type notifier struct {
	pool        *pgxpool.Pool
	channel     string
	origin      string
	log         *slog.Logger
	minInterval time.Duration

	dirty   atomic.Bool
	running atomic.Bool

	mu     sync.Mutex // orders wg.Add before wait's wg.Wait
	closed bool
	wg     sync.WaitGroup
}

func newNotifier(pool *pgxpool.Pool, channel, origin string, minInterval time.Duration, log *slog.Logger) *notifier {
	return &notifier{pool: pool, channel: channel, origin: origin, minInterval: minInterval, log: log}
}

// poke records that a notification is due and makes sure one is sent.
func (n *notifier) poke() {
	n.dirty.Store(true)
	if n.running.CompareAndSwap(false, true) {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.closed {
			return
		}
		n.wg.Add(1)
		go n.run()
	}
}

func (n *notifier) run() {
	defer n.wg.Done()
	for {
		for n.dirty.Swap(false) {
			n.send()
			time.Sleep(n.minInterval) // appends meanwhile share the next NOTIFY
		}
		n.running.Store(false)
		// A poke between the loop's last Swap and the Store above saw
		// running=true and started nothing: take over its work.
		if !n.dirty.Load() || !n.running.CompareAndSwap(false, true) {
			return
		}
	}
}

func (n *notifier) send() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := n.pool.Exec(ctx, `SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)`, n.channel, n.origin); err != nil {
		n.log.Warn("event store: NOTIFY failed; subscribers fall back to polling", "error", err)
	}
}

// close stops further notifications and waits for the one being sent.
func (n *notifier) close() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.wg.Wait()
}

// listener holds one LISTEN connection per Store while it has subscribers
// and wakes them on every notification and every append of this process,
// at most once per interval.
type listener struct {
	pool     *pgxpool.Pool
	channel  string
	origin   string // of this Store's own notifications, which it skips
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	refs    int
	wakeCh  chan struct{} // closed and replaced at every wake-up
	woken   time.Time     // of the last wake-up
	pending bool          // a wake-up is due once interval has passed since woken
	stop    context.CancelFunc
	done    chan struct{}
}

func newListener(pool *pgxpool.Pool, channel, origin string, interval time.Duration, log *slog.Logger) *listener {
	return &listener{pool: pool, channel: channel, origin: origin, interval: interval, log: log, wakeCh: make(chan struct{})}
}

// subscribe registers a subscriber. wake returns a channel that is closed at
// the next wake-up (broadcast); take it before reading so that no append or
// notification between the read and the wait is missed. release
// unregisters and, for the last subscriber, closes the connection before
// returning.
func (l *listener) subscribe() (wake func() <-chan struct{}, release func()) {
	l.mu.Lock()
	l.refs++
	if l.refs == 1 {
		ctx, cancel := context.WithCancel(context.Background())
		l.stop, l.done = cancel, make(chan struct{})
		go l.run(ctx, l.done)
	}
	l.mu.Unlock()

	wake = func() <-chan struct{} {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.wakeCh
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			l.mu.Lock()
			l.refs--
			var stop context.CancelFunc
			var done chan struct{}
			if l.refs == 0 {
				stop, done = l.stop, l.done
				l.stop, l.done = nil, nil
			}
			l.mu.Unlock()
			if stop != nil {
				stop()
				<-done
			}
		})
	}
	return wake, release
}

// broadcast wakes every subscriber: at once when the last wake-up is at
// least interval ago, otherwise when it will be, the broadcasts meanwhile
// merged into that one wake-up. Each wake-up costs every subscriber a read
// (and a projection a transaction), so under a steady trickle of appends
// the subscriptions read at most once per interval, each a page of what
// arrived in it, rather than once per append; an append after a quiet
// spell is delivered at once.
func (l *listener) broadcast() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending {
		return
	}
	if wait := l.interval - time.Since(l.woken); wait > 0 {
		l.pending = true
		time.AfterFunc(wait, func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.pending = false
			l.wakeLocked()
		})
		return
	}
	l.wakeLocked()
}

func (l *listener) wakeLocked() {
	close(l.wakeCh)
	l.wakeCh = make(chan struct{})
	l.woken = time.Now()
}

// run keeps a LISTEN connection open until ctx ends, reconnecting with
// backoff after errors.
func (l *listener) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := l.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		l.log.Warn("event store: LISTEN connection lost; subscribers poll until it is back",
			"error", err, logging.Millis("retry_in_ms", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (l *listener) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, l.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.channel}.Sanitize()); err != nil {
		return err
	}
	// Anything appended while not listening is found by this wake-up
	// (at once: it is not an append's, and paces none).
	l.mu.Lock()
	close(l.wakeCh)
	l.wakeCh = make(chan struct{})
	l.mu.Unlock()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Payload != l.origin { // this Store's appends woke its subscribers already
			l.broadcast()
		}
	}
}
