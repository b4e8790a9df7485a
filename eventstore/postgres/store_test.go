package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/eventstore/storetest"
	"github.com/orders-reference/orders/internal/pgtest"
	pg "github.com/orders-reference/orders/internal/postgres"
)

// newStore returns a store on a fresh, migrated database.
func newStore(t *testing.T, opts postgres.Options) (*postgres.Store, *pgxpool.Pool) {
	t.Helper()
	pool := pgtest.NewPool(t, 20)
	s := postgres.New(pool, opts)
	t.Cleanup(s.Close)
	return s, pool
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, h storetest.Hooks) eventstore.Store {
		// A long poll interval: live delivery in the suite must come from
		// notifications (or the held-back retry), not from polling.
		opts := postgres.Options{PollInterval: 10 * time.Second, DeliveryInterval: h.DeliveryInterval}
		if h.BeforeCommit != nil {
			opts = postgres.WithBeforeCommit(opts, h.BeforeCommit)
		}
		s, _ := newStore(t, opts)
		return s
	}, storetest.Full)
}

func testEvent(i int) eventstore.EventData {
	return eventstore.EventData{ID: uuid.New(), Type: "test", Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}
}

// received collects a subscription's events and signals each batch.
type received struct {
	mu      sync.Mutex
	events  []eventstore.RecordedEvent
	batches int
	signal  chan struct{}
}

func subscribe(t *testing.T, s eventstore.Store) *received {
	t.Helper()
	r := &received{signal: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Subscribe(ctx, eventstore.Start, eventstore.SubscribeOptions{}, func(_ context.Context, b eventstore.Batch) error {
			r.mu.Lock()
			r.events = append(r.events, b.Events...)
			r.batches++
			r.mu.Unlock()
			select {
			case r.signal <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func (r *received) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

func (r *received) waitFor(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for r.count() < n {
		select {
		case <-r.signal:
		case <-deadline:
			t.Fatalf("got %d events within %v, want %d", r.count(), within, n)
		}
	}
}

// A subscriber that never gets a notification still receives every event,
// by polling.
func TestPollingFallbackWithoutNotifications(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, 10)
	writer := postgres.New(pool, postgres.Options{NotifyChannel: "writer_channel"})
	reader := postgres.New(pool, postgres.Options{NotifyChannel: "reader_channel", PollInterval: 50 * time.Millisecond})
	t.Cleanup(writer.Close)
	r := subscribe(t, reader)
	for i := range 5 {
		if _, err := writer.Append(context.Background(), "order-1", eventstore.Any, testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	r.waitFor(t, 5, 10*time.Second)
}

// After its LISTEN connection is killed, the subscription reconnects and
// notifications wake it again (polling is effectively off here).
func TestListenerReconnects(t *testing.T) {
	t.Parallel()
	// Only a notification can wake the reader: it polls once an hour and
	// appends come from another Store (as from another process).
	reader, pool := newStore(t, postgres.Options{PollInterval: time.Hour})
	s := postgres.New(pool, postgres.Options{})
	t.Cleanup(s.Close)
	ctx := context.Background()
	r := subscribe(t, reader)

	listenerPID := func() int32 {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			var pid int32
			err := pool.QueryRow(ctx, `SELECT pid FROM pg_stat_activity
			     WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`).Scan(&pid)
			if err == nil {
				return pid
			}
			time.Sleep(10 * time.Millisecond) // polling the catalog for the listener to appear
		}
		t.Fatal("no LISTEN connection appeared")
		return 0
	}
	first := listenerPID()
	if _, err := s.Append(ctx, "order-1", eventstore.NoStream, testEvent(0)); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, 1, 10*time.Second)

	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, first); err != nil {
		t.Fatal(err)
	}
	var second int32
	for second = listenerPID(); second == first; second = listenerPID() {
		time.Sleep(10 * time.Millisecond) // the terminated backend may still be listed
	}
	if _, err := s.Append(ctx, "order-1", eventstore.Exact(0), testEvent(1)); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, 2, 10*time.Second)
}

// An event committed after an older transaction took its id stays invisible
// to readers until that transaction ends: this is the fence that keeps a
// late commit from being skipped.
func TestOpenTransactionHoldsBackLaterEvents(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, postgres.Options{PollInterval: time.Hour})
	ctx := context.Background()
	if _, err := s.Append(ctx, "order-early", eventstore.NoStream, testEvent(0)); err != nil {
		t.Fatal(err)
	}
	r := subscribe(t, s)
	r.waitFor(t, 1, 10*time.Second)

	// An open transaction with an id older than the next append's.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var olderXID uint64
	if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()`).Scan(&olderXID); err != nil {
		t.Fatal(err)
	}

	res, err := s.Append(ctx, "order-late", eventstore.NoStream, testEvent(1))
	if err != nil {
		t.Fatal(err)
	}
	if res.Position.Commit <= olderXID {
		t.Fatalf("append got transaction id %d, not after the open %d", res.Position.Commit, olderXID)
	}
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !head.Less(res.Position) {
		t.Fatalf("head %s includes %s while an older transaction is open", head, res.Position)
	}
	page, err := s.ReadAll(ctx, eventstore.Start, 10, eventstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || !page.AtEnd || !page.Next.Less(res.Position) {
		t.Fatalf("read all while held back: %d events, next %s, at end %v", len(page.Events), page.Next, page.AtEnd)
	}

	// The older transaction ends without appending anything and without a
	// notification: the subscription notices on its own.
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, 2, 10*time.Second)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.events[1].Position != res.Position {
		t.Fatalf("delivered %s, want %s", r.events[1].Position, res.Position)
	}
}

// The stream lock is taken before the append's transaction has an id: an
// append that waited for the lock gets an id larger than any transaction
// that started meanwhile. (Taking the lock after the first write would give
// it an older id, and a later version of the stream would sort before an
// earlier one in the global order.)
func TestStreamLockPrecedesTransactionID(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, postgres.Options{})
	ctx := context.Background()
	const stream = "order-locked"

	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_xact_lock(1163084612, hashtext($1))`, stream); err != nil {
		t.Fatal(err)
	}
	appended := make(chan eventstore.AppendResult, 1)
	go func() {
		res, err := s.Append(ctx, stream, eventstore.NoStream, testEvent(0))
		if err != nil {
			t.Error(err)
		}
		appended <- res
	}()
	// Wait until the append is queued on the lock.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = 1163084612)`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the append never waited for the stream lock")
		}
		time.Sleep(5 * time.Millisecond) // polling pg_locks against a deadline
	}
	var meanwhile uint64
	if err := pool.QueryRow(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&meanwhile); err != nil {
		t.Fatal(err)
	}
	if err := holder.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	res := <-appended
	if res.Position.Commit <= meanwhile {
		t.Fatalf("append that waited for the lock has transaction id %d, not after %d", res.Position.Commit, meanwhile)
	}
}

// Appends refuse to run under an isolation level that would make their
// version check read a stale snapshot, with a clear error.
func TestAppendNeedsReadCommitted(t *testing.T) {
	t.Parallel()
	_, pool := newStore(t, postgres.Options{})
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET default_transaction_isolation = 'repeatable read'`); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, `RESET default_transaction_isolation`)
	_, err = conn.Exec(ctx, `SELECT * FROM es_append_batch(ARRAY['s'], ARRAY[-1::bigint], ARRAY[1], ARRAY[gen_random_uuid()], ARRAY['t'], ARRAY['{}'::json], ARRAY['{}'::json])`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "25001" {
		t.Fatalf("append under repeatable read: %v", err)
	}
}

// A caller's deadline ends its wait even while its batch is still running.
func TestAppendHonoursContextWhileBatchRuns(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	s, _ := newStore(t, postgres.WithBeforeCommit(postgres.Options{}, func(ctx context.Context) {
		select {
		case <-release:
		case <-ctx.Done():
		}
	}))
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Append(ctx, "order-slow", eventstore.NoStream, testEvent(0))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("append past its deadline: %v", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("append returned %v after a 100ms deadline", waited)
	}
}

// A Store on another pool (WithPool) shares its notifications: what it
// appends wakes the first Store's subscribers, which poll once an hour.
func TestWithPoolSharesWakeUps(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, postgres.Options{PollInterval: time.Hour})
	other, err := pg.Connect(context.Background(), pool.Config().ConnString(), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	sibling := s.WithPool(other)
	r := subscribe(t, s)
	for i := range 3 {
		if _, err := sibling.Append(context.Background(), "order-1", eventstore.Any, testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	r.waitFor(t, 3, 10*time.Second)
}

// A batch whose statement times out (a lock held on the events table)
// fails as a whole at once: its appends are not retried one by one, each
// waiting out the timeout again. Nothing of it is stored.
func TestTimedOutBatchFailsAsAWhole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base, pool := newStore(t, postgres.Options{MaxInFlight: 1})
	requests, err := pg.ConnectWith(ctx, pool.Config().ConnString(), pg.PoolOptions{MaxConns: 4, StatementTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(requests.Close)
	s := base.WithPool(requests)

	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Rollback(ctx) }()
	if _, err := holder.Exec(ctx, `LOCK TABLE events IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	const n = 9
	start := time.Now()
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := s.Append(ctx, fmt.Sprintf("order-%d", i), eventstore.NoStream, testEvent(i))
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; !pg.TimedOut(err) {
			t.Errorf("append behind a lock: %v, want a statement timeout", err)
		}
	}
	// Two batches at most (the first append alone, the rest together):
	// about 1 s. One by one, the rest would take 4 s more.
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("%d appends failed after %s, want about 1s", n, took)
	}
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	var stored int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("%d events stored by timed-out appends (%v)", stored, err)
	}
}

// BatchObserver is told the size of every group commit: appends that
// arrive while a batch runs are combined into the next one.
func TestBatchObserverSeesGroupCommits(t *testing.T) {
	t.Parallel()
	var (
		mu       sync.Mutex
		batches  []int
		first    sync.Once
		release  = make(chan struct{})
		blocking = make(chan struct{})
	)
	opts := postgres.Options{MaxInFlight: 1, BatchObserver: func(n int) {
		mu.Lock()
		defer mu.Unlock()
		batches = append(batches, n)
	}}
	s, _ := newStore(t, postgres.WithBeforeCommit(opts, func(ctx context.Context) {
		first.Do(func() {
			close(blocking)
			select {
			case <-release:
			case <-ctx.Done():
			}
		})
	}))
	const n = 6
	errs := make(chan error, n)
	go func() {
		_, err := s.Append(context.Background(), "order-0", eventstore.NoStream, testEvent(0))
		errs <- err
	}()
	<-blocking // the first batch runs and holds the only slot
	for i := 1; i < n; i++ {
		go func() {
			_, err := s.Append(context.Background(), fmt.Sprintf("order-%d", i), eventstore.NoStream, testEvent(i))
			errs <- err
		}()
	}
	time.Sleep(300 * time.Millisecond) // the others queue behind it
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	sum := 0
	for _, b := range batches {
		sum += b
	}
	if sum != n || len(batches) < 2 || batches[0] != 1 || len(batches) == n {
		t.Fatalf("batches %v, want %d appends in all: the first alone, the rest combined", batches, n)
	}
}

// A position beyond the last event stored and the read fence (a checkpoint
// kept while the database was restored from an older backup, or of another
// database) is not read as "nothing after it": Backlog and Subscribe
// report ErrPositionNotInStore. The last event's own position is fine.
func TestPositionBeyondTheLastEvent(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, postgres.Options{})
	ctx := context.Background()
	res, err := s.Append(ctx, "order-1", eventstore.NoStream, testEvent(0))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := s.Backlog(ctx, res.Position, 10); err != nil || b.Events != 0 {
		t.Fatalf("backlog after the last event: %+v, %v", b, err)
	}
	// (A reader that read everything continues from the read fence, past
	// the last event: only what lies beyond both is refused.)
	for _, past := range []eventstore.Position{
		{Commit: res.Position.Commit + 1<<40},
		{Commit: res.Position.Commit + 1<<40, Prepare: 7},
	} {
		if _, err := s.Backlog(ctx, past, 10); !errors.Is(err, eventstore.ErrPositionNotInStore) {
			t.Fatalf("backlog after %s: %v, want ErrPositionNotInStore", past, err)
		}
		err := s.Subscribe(ctx, past, eventstore.SubscribeOptions{}, func(context.Context, eventstore.Batch) error { return nil })
		if !errors.Is(err, eventstore.ErrPositionNotInStore) {
			t.Fatalf("subscribe after %s: %v, want ErrPositionNotInStore", past, err)
		}
	}
}

// A subscription's poll keeps the delivery interval too: with a poll
// interval shorter than it, a trickle of appends still comes in about one
// batch per interval, not one per poll.
func TestPollKeepsTheDeliveryInterval(t *testing.T) {
	t.Parallel()
	const interval = time.Second
	s, _ := newStore(t, postgres.Options{PollInterval: 50 * time.Millisecond, DeliveryInterval: interval})
	r := subscribe(t, s)
	const n = 20
	began := time.Now()
	for i := range n {
		if _, err := s.Append(context.Background(), "order-1", eventstore.Any, testEvent(i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // the trickle
	}
	r.waitFor(t, n, 10*time.Second)
	took := time.Since(began)
	r.mu.Lock()
	got := r.batches
	r.mu.Unlock()
	// Per interval, at most a wake-up's batch and a poll's.
	if limit := 2*int(took/interval) + 2; got > limit {
		t.Errorf("%d appends over %v came in %d batches, want at most %d (the interval %v, not the poll's 50ms)", n, took, got, limit, interval)
	}
}
