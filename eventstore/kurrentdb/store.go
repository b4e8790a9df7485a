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
package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/orders-reference/orders/eventstore"
)

// Defaults for Options.
const (
	DefaultBatchSize     = 512
	DefaultCatchUpLinger = 100 * time.Millisecond
	DefaultRetryDelay    = 50 * time.Millisecond
	DefaultMaxRetryDelay = 5 * time.Second
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
	// RetryDelay is the first wait before resubscribing after the server
	// dropped a subscription; it doubles up to MaxRetryDelay and starts
	// again once a subscription received something.
	RetryDelay    time.Duration
	MaxRetryDelay time.Duration
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
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = DefaultRetryDelay
	}
	if opts.MaxRetryDelay < opts.RetryDelay {
		opts.MaxRetryDelay = max(DefaultMaxRetryDelay, opts.RetryDelay)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := parseURL(url, log)
	if err != nil {
		return nil, err
	}
	c, err := newConn(*cfg)
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

// conn holds the v4 client and replaces it when it has closed itself: the
// client gives up for good, reporting ErrorCodeConnectionClosed to every
// later call, once its node discovery failed (ten attempts, about a second,
// when the node is down).
type conn struct {
	cfg esdb.Configuration

	mu     sync.Mutex
	client *esdb.Client
	closed bool
}

func newConn(cfg esdb.Configuration) (*conn, error) {
	c := &conn{cfg: cfg}
	client, err := c.newClient()
	if err != nil {
		return nil, err
	}
	c.client = client
	return c, nil
}

func (c *conn) newClient() (*esdb.Client, error) {
	cfg := c.cfg
	return esdb.NewClient(&cfg)
}

// current returns the client to use, or ErrClosed.
func (c *conn) current() (*esdb.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	return c.client, nil
}

// renew replaces dead, a client that closed itself, unless another call
// replaced it already. The dead client is dropped, not closed: closing it
// would make calls of it that wait to report an error to its stopped
// connection loop panic.
func (c *conn) renew(dead *esdb.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.client != dead {
		return
	}
	if client, err := c.newClient(); err == nil {
		c.client = client
	}
}

func (c *conn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	_ = c.client.Close()
}

// call runs op with the current client, detached (see detach). A call the
// server never saw is made once more: one that found the client closed
// (with a new client) or was refused by a follower (the client has then
// reconnected to the leader it was told of).
func call[T any](ctx context.Context, c *conn, op func(context.Context, *esdb.Client) (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		client, err := c.current()
		if err != nil {
			var zero T
			return zero, err
		}
		v, err := detach(ctx, func(ctx context.Context) (T, error) { return op(ctx, client) })
		if err == nil || attempt > 1 || ctx.Err() != nil {
			return v, err
		}
		switch clientCode(err) {
		case esdb.ErrorCodeConnectionClosed:
			c.renew(client)
		case esdb.ErrorCodeNotLeader:
		default:
			return v, err
		}
	}
}

// detach runs op on its own goroutine and returns its result, or ctx.Err()
// as soon as ctx ends. The v4 client does not always honour the context:
// a call that fails while the client rediscovers the node waits, whatever
// its context, until the client's connection loop takes its report, and
// forever if discovery failed and the loop stopped. Such a call is left
// behind.
func detach[T any](ctx context.Context, op func(context.Context) (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := op(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		select {
		case r := <-done: // finished meanwhile: its outcome is known
			return r.v, r.err
		default:
		}
		var zero T
		return zero, ctx.Err()
	}
}
