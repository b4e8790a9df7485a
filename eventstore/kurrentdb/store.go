// Package kurrentdb is the KurrentDB (EventStoreDB) adapter of the event
// store port, on the v4 gRPC client (github.com/EventStore/EventStore-Client-Go/v4).
//
// The port was shaped after EventStoreDB, so most of it maps directly:
// streams, expected versions, event ids and $all positions are the server's
// own. What does not map, and what the adapter does about it:
//
//   - Stream ids starting with "$" are KurrentDB's system streams, and
//     $all shows their events (only the epoch records and persistent
//     subscription internals are hidden). They are no part of the port:
//     Append refuses such ids (ErrInvalidEvent), ReadStream reports them
//     missing, and ReadAll, Head, Backlog and Subscribe skip their events
//     (a skipped event still moves a page or a checkpoint past it).
//   - KurrentDB has no global event-id index and recognises retries with
//     Any or StreamExists only while the ids sit in an in-memory cache of
//     recent writes to the same stream. Only retries with an exact or
//     NoStream expected version and the same ids are safe; an old id
//     appended elsewhere is stored again, never ErrDuplicateEventID.
//   - The append reply carries no time, and the client answers a
//     recognised retry as it answers a write, so Append reads the last
//     appended event back (one more round trip): its time is
//     AppendResult.RecordedAt, and a mark of the append's own in its
//     stored metadata tells a write from a retry (AppendResult.Replayed).
//   - Reading $all forward from a position includes the event at that
//     position, while the port's ReadAll is exclusive: the adapter drops it.
//   - The v4 client reports context cancellation as a raw gRPC Canceled
//     status and the actual version of a failed append only in an error
//     text; the adapter maps both (errors.Is(err, context.Canceled) holds
//     for every method).
//
// Subscriptions are catch-up subscriptions to $all that resubscribe from
// their last checkpoint, with backoff, when the server drops them.
//
// No call waits on the client unbounded: the v4 client gives up
// reconnecting for good after its discovery budget and then leaves the
// calls that were waiting for a connection blocked forever, whatever their
// context. Every call ends within Options.CallTimeout, and a client found
// dead (closed, or not answering in time) is replaced, which ends every
// call still waiting on it and moves subscriptions to the new one (see
// conn).
package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/orders-reference/orders/eventstore"
)

// Defaults for Options.
const (
	DefaultBatchSize     = 512
	DefaultCatchUpLinger = 100 * time.Millisecond
	DefaultRetryDelay    = 50 * time.Millisecond
	DefaultMaxRetryDelay = 5 * time.Second
	DefaultCallTimeout   = 30 * time.Second
)

// ErrClosed is returned by every method once Close was called.
var ErrClosed = errors.New("kurrentdb: store closed")

// Options tunes a Store. The zero value uses the defaults.
type Options struct {
	// BatchSize is the default number of events per subscription batch. It
	// is also the server-side filter's search window, so a filtered
	// subscription hears of a checkpoint at least every BatchSize events
	// the server considered.
	BatchSize int
	// CatchUpLinger is how long a catching-up subscription waits for more
	// events before it hands over a batch that is not full. Servers from
	// 24.2 end the catch-up with a caught-up message, which hands the batch
	// over at once; the linger only matters for older servers.
	CatchUpLinger time.Duration
	// DeliveryInterval is the least time between two batches of a live
	// subscription (default eventstore.DefaultDeliveryInterval): the
	// events that arrive meanwhile are handed over together.
	DeliveryInterval time.Duration
	// RetryDelay is the first wait before resubscribing after the server
	// dropped a subscription; it doubles up to MaxRetryDelay and starts
	// again once a subscription received something.
	RetryDelay    time.Duration
	MaxRetryDelay time.Duration
	// CallTimeout bounds every call of the client (an append, a read, the
	// start of a subscription) whatever its context: a call that runs
	// longer is abandoned and its client taken for dead and replaced (see
	// conn). It should exceed the longest call of a healthy node; the
	// client's rediscovery of a node that went away takes up to
	// maxDiscoverAttempts × (discoveryInterval + gossipTimeout), after
	// which a call fails or, if it waited, is released when the next call
	// replaces the dead client.
	CallTimeout time.Duration
	// Logger receives resubscriptions (warn) and the client's own log lines
	// (debug). Nil discards them.
	Logger *slog.Logger
}

// Store is the KurrentDB event store. It is safe for concurrent use.
type Store struct {
	conn *conn
	opts Options
	log  *slog.Logger
}

var _ eventstore.Store = (*Store)(nil)

// New connects to the KurrentDB node or cluster of url, a connection string
// of scheme esdb://, esdb+discover://, kurrentdb:// or kurrentdb+discover://
// (the last two are read as the first two), with TLS settings and
// credentials as the v4 client reads them (TLS is on unless tls=false; the
// client sends credentials only over TLS). Settings the client does not
// know are dropped with a warning. New checks the connection by reading
// the head of $all within ctx. Errors never contain the password.
func New(ctx context.Context, url string, opts Options) (*Store, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.CatchUpLinger <= 0 {
		opts.CatchUpLinger = DefaultCatchUpLinger
	}
	if opts.DeliveryInterval <= 0 {
		opts.DeliveryInterval = eventstore.DefaultDeliveryInterval
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = DefaultRetryDelay
	}
	if opts.MaxRetryDelay < opts.RetryDelay {
		opts.MaxRetryDelay = max(DefaultMaxRetryDelay, opts.RetryDelay)
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := parseURL(url, log)
	if err != nil {
		return nil, err
	}
	c, err := newConn(*cfg, opts.CallTimeout, log)
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: connect to %s: %w", redactURL(url), err)
	}
	s := &Store{conn: c, opts: opts, log: log}
	if _, err := s.Head(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("kurrentdb: connect to %s: %w", redactURL(url), err)
	}
	return s, nil
}

// Close closes the connection. Running calls fail; later ones return
// ErrClosed, and so do subscriptions when they next resubscribe.
func (s *Store) Close() {
	s.conn.close()
}

// isSystemStream reports whether stream is a KurrentDB system stream: its
// id starts with "$".
func isSystemStream(stream string) bool {
	return len(stream) > 0 && stream[0] == '$'
}

// conn holds the v4 client and replaces it when it is dead.
//
// The v4 client gives up for good, reporting ErrorCodeConnectionClosed to
// every later call, once its node discovery failed (MaxDiscoverAttempts
// attempts, about a second with the defaults when the node is down). Worse,
// its connection loop then stops reading its channel without releasing the
// calls already waiting to send on it (to ask for a connection or report a
// lost one): they wait forever, whatever their context. So the adapter
// never lets a call wait on the client unbounded: every call runs detached
// (see detach) and ends, whatever its context, when the call timeout
// passes or its client is replaced. A call that finds the client closed, or
// that times out, replaces it (renew), and replacing a client ends every
// call still waiting on it at once; Subscribe then resubscribes on the new
// one. The old client is retired: the adapter answers, in its connection
// loop's stead, the calls stuck on its channel (their calls fail), and
// closes it once none runs any more.
type conn struct {
	cfg     esdb.Configuration
	timeout time.Duration
	log     *slog.Logger

	mu     sync.Mutex
	gen    *generation
	closed bool
}

// generation is one client of a conn.
type generation struct {
	client *esdb.Client
	// gone is closed when the client is replaced or the store closed:
	// calls waiting on it end at once.
	gone chan struct{}
	// calls counts the calls running on the client, including those left
	// behind (see detach). It is added to only while the client is the
	// conn's current one.
	calls sync.WaitGroup
}

// errors of calls that ended because of their client, not their context.
var (
	// errCallTimeout: the call ran longer than the call timeout; its client
	// is taken for dead and replaced.
	errCallTimeout = fmt.Errorf("kurrentdb: no answer within the call timeout (the client is replaced): %w", eventstore.ErrUnavailable)
	// errClientReplaced: the client was replaced (another call found it
	// dead) while the call waited on it.
	errClientReplaced = fmt.Errorf("kurrentdb: the connection was lost (the client is replaced): %w", eventstore.ErrUnavailable)
)

func newConn(cfg esdb.Configuration, timeout time.Duration, log *slog.Logger) (*conn, error) {
	c := &conn{cfg: cfg, timeout: timeout, log: log}
	g, err := c.newGeneration()
	if err != nil {
		return nil, err
	}
	c.gen = g
	return c, nil
}

func (c *conn) newGeneration() (*generation, error) {
	cfg := c.cfg
	client, err := esdb.NewClient(&cfg)
	if err != nil {
		return nil, err
	}
	return &generation{client: client, gone: make(chan struct{})}, nil
}

// current returns the generation to use, with one more call counted on it
// (the caller must end it with g.calls.Done), or ErrClosed.
func (c *conn) current() (*generation, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	c.gen.calls.Add(1)
	return c.gen, nil
}

// isClosed reports whether the store was closed.
func (c *conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// goneOf is the gone channel of client's generation: closed already if
// client is no longer the current one.
func (c *conn) goneOf(client *esdb.Client) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed && c.gen.client == client {
		return c.gen.gone
	}
	gone := make(chan struct{})
	close(gone)
	return gone
}

// renew replaces dead, a client that closed itself or did not answer in
// time, unless another call replaced it already, and retires it.
func (c *conn) renew(dead *generation, why error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.gen != dead {
		return
	}
	g, err := c.newGeneration()
	if err != nil {
		c.log.Warn("kurrentdb: cannot replace the client", "error", err)
		return
	}
	c.gen = g
	c.log.Warn("kurrentdb: replacing the client", "reason", why.Error())
	close(dead.gone)
	go dead.retire(c.log)
}

// close closes the store's client: running calls end with ErrClosed, and
// the client is closed once they have returned (at most a second is
// waited for that).
func (c *conn) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	g := c.gen
	close(g.gone)
	c.mu.Unlock()
	retired := make(chan struct{})
	go func() {
		defer close(retired)
		g.retire(c.log)
	}()
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-retired:
	case <-t.C:
	}
}

// retire closes g's client once no call runs on it any more. Until then it
// answers the calls waiting on the client's connection loop (which may
// have stopped for good) with an error: a request for a connection fails,
// the report of a lost one is taken. Closing the client earlier would make
// those calls panic (a send on a closed channel).
func (g *generation) retire(log *slog.Logger) {
	idle := make(chan struct{})
	go func() {
		g.calls.Wait()
		close(idle)
	}()
	loop, ok := loopChannel(g.client)
	if !ok {
		// Another client version: the calls stuck on it, if any, stay (at
		// most the calls that were running when it died).
		log.Warn("kurrentdb: cannot reach the v4 client's connection loop; calls stuck on a dead client are left behind")
		<-idle
		_ = g.client.Close()
		return
	}
	cases := []reflect.SelectCase{
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(idle)},
		{Dir: reflect.SelectRecv, Chan: loop},
	}
	for {
		chosen, m, ok := reflect.Select(cases)
		if chosen == 0 || !ok {
			break
		}
		answerStuck(m)
	}
	_ = g.client.Close()
}

// loopChannel is the channel the connection loop of client reads (the
// v4.2 client's grpcClient.channel), if the client has the layout known.
func loopChannel(client *esdb.Client) (reflect.Value, bool) {
	inner := reflect.ValueOf(client).Elem().FieldByName("grpcClient")
	if !inner.IsValid() || inner.Kind() != reflect.Pointer || inner.IsNil() || inner.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	ch := inner.Elem().FieldByName("channel")
	if !ch.IsValid() || ch.Kind() != reflect.Chan || ch.Type().ChanDir() != reflect.BothDir || ch.Type().Elem().Kind() != reflect.Interface {
		return reflect.Value{}, false
	}
	return reflect.NewAt(ch.Type(), unsafe.Pointer(ch.UnsafeAddr())).Elem(), true
}

// answerStuck answers m, a message of the client's connection loop: a
// request for a connection (a struct with a reply channel of connection
// handles) gets a handle with errClientReplaced as its error; any other
// message (the report of a lost connection) needs no answer.
func answerStuck(m reflect.Value) {
	if m.Kind() == reflect.Interface {
		m = m.Elem()
	}
	if !m.IsValid() || m.Kind() != reflect.Struct {
		return
	}
	msg := reflect.New(m.Type()).Elem()
	msg.Set(m)
	reply := msg.FieldByName("channel")
	if !reply.IsValid() || reply.Kind() != reflect.Chan || reply.Type().Elem().Kind() != reflect.Struct {
		return
	}
	reply = reflect.NewAt(reply.Type(), unsafe.Pointer(reply.UnsafeAddr())).Elem()
	handle := reflect.New(reply.Type().Elem()).Elem()
	if f := handle.FieldByName("err"); f.IsValid() && reflect.TypeOf(errClientReplaced).AssignableTo(f.Type()) {
		reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.ValueOf(errClientReplaced))
	} else {
		return // unknown layout: a handle without an error would be used
	}
	reply.Send(handle)
}

// call runs op with the current client, detached (see detach). A call the
// server never saw is made once more: one that found the client closed
// (with a new client) or was refused by a follower (the client has then
// reconnected to the leader it was told of). A call that timed out or
// whose client was replaced while it ran, which the server may have seen,
// is made once more on the new client only if repeatable (a read or a
// subscription).
func call[T any](ctx context.Context, c *conn, repeatable bool, op func(context.Context, *esdb.Client) (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		g, err := c.current()
		if err != nil {
			var zero T
			return zero, err
		}
		v, err := detach(ctx, g, c.timeout, func(ctx context.Context) (T, error) { return op(ctx, g.client) })
		if err == nil || ctx.Err() != nil {
			return v, err
		}
		retry := false
		switch {
		case errors.Is(err, errCallTimeout):
			c.renew(g, err)
			retry = repeatable
		case errors.Is(err, errClientReplaced):
			if c.isClosed() {
				return v, fmt.Errorf("%w (%v)", ErrClosed, err)
			}
			retry = repeatable
		case clientCode(err) == esdb.ErrorCodeConnectionClosed:
			c.renew(g, err)
			retry = true
		case clientCode(err) == esdb.ErrorCodeNotLeader:
			retry = true
		}
		if !retry || attempt > 1 {
			return v, err
		}
	}
}

// detach runs op on its own goroutine, counted as a call of g, and returns
// its result, or an error as soon as ctx ends (ctx.Err()), g's client is
// replaced (errClientReplaced) or timeout passes (errCallTimeout). The v4
// client does not always honour the context: a call that asks for a
// connection or reports a lost one waits, whatever its context, until the
// client's connection loop takes its message, and forever if the loop
// stopped (see conn). Such a call is left behind until g is retired;
// should it succeed meanwhile, a result that holds resources (a
// subscription) is closed.
func detach[T any](ctx context.Context, g *generation, timeout time.Duration, op func(context.Context) (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	var taken atomic.Bool // by the caller, or by the goroutine when the caller left
	go func() {
		defer g.calls.Done()
		v, err := op(ctx)
		if !taken.CompareAndSwap(false, true) {
			if c, ok := any(v).(io.Closer); ok && err == nil {
				_ = c.Close()
			}
			return
		}
		done <- result{v, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	var err error
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		err = ctx.Err()
	case <-g.gone:
		err = errClientReplaced
	case <-t.C:
		err = fmt.Errorf("%w: %s", errCallTimeout, timeout)
	}
	if !taken.CompareAndSwap(false, true) {
		r := <-done // finished meanwhile: its outcome is known
		return r.v, r.err
	}
	var zero T
	return zero, err
}
