package kurrentdb_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/kurrentdb"
	"github.com/orders-reference/orders/eventstore/kurrentdb/kurrentdbtest"
	"github.com/orders-reference/orders/eventstore/storetest"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/logging/logtest"
)

func testEvent(typ string, i int) eventstore.EventData {
	return eventstore.EventData{
		ID:       uuid.New(),
		Type:     typ,
		Data:     json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)),
		Metadata: eventstore.Metadata{CorrelationID: "corr", Actor: "system"},
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, exp eventstore.ExpectedVersion, events ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(ctxT(t), stream, exp, events...)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return res
}

// collector gathers what a subscription delivers.
type collector struct {
	mu          sync.Mutex
	events      []eventstore.RecordedEvent
	checkpoints []eventstore.Position
}

func (c *collector) handle(_ context.Context, b eventstore.Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, b.Events...)
	c.checkpoints = append(c.checkpoints, b.Checkpoint)
	return nil
}

func (c *collector) snapshot() ([]eventstore.RecordedEvent, []eventstore.Position) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]eventstore.RecordedEvent(nil), c.events...), append([]eventstore.Position(nil), c.checkpoints...)
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// subscribe runs a subscription until the test ends; the channel has its
// result.
func subscribe(t *testing.T, s eventstore.Store, from eventstore.Position, opts eventstore.SubscribeOptions) (*collector, <-chan error) {
	c := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- s.Subscribe(ctx, from, opts, c.handle)
	}()
	t.Cleanup(func() {
		cancel()
		<-finished
	})
	return c, done
}

// checkDelivered fails t unless c delivered exactly the events with ids
// want, in that order, with checkpoints that never moved back.
func checkDelivered(t *testing.T, c *collector, want []uuid.UUID) {
	t.Helper()
	evs, cps := c.snapshot()
	if len(evs) != len(want) {
		t.Fatalf("delivered %d events, want %d", len(evs), len(want))
	}
	for i, e := range evs {
		if e.ID != want[i] {
			t.Fatalf("event %d is %s, want %s", i, e.ID, want[i])
		}
		if i > 0 && !evs[i-1].Position.Less(e.Position) {
			t.Fatalf("positions not increasing at %d: %s then %s", i, evs[i-1].Position, e.Position)
		}
	}
	for i := 1; i < len(cps); i++ {
		if cps[i].Less(cps[i-1]) {
			t.Fatalf("checkpoint moved back from %s to %s", cps[i-1], cps[i])
		}
	}
}

// Every method reports the end of its context as the context's error:
// the v4 client returns a raw gRPC status instead.
func TestContextErrorsAtTheBoundary(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	s := open(t, srv.URL(), fastRetry)
	mustAppend(t, s, "order-1", eventstore.NoStream, testEvent("e", 0))

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, c := range []struct {
		name string
		ctx  context.Context
		want error
	}{{"canceled", canceled, context.Canceled}, {"expired", expired, context.DeadlineExceeded}} {
		calls := map[string]func(context.Context) error{
			"Append": func(ctx context.Context) error {
				_, err := s.Append(ctx, "order-2", eventstore.Any, testEvent("e", 1))
				return err
			},
			"ReadStream": func(ctx context.Context) error {
				_, err := s.ReadStream(ctx, "order-1", eventstore.Forward, 0, 10)
				return err
			},
			"ReadAll": func(ctx context.Context) error {
				_, err := s.ReadAll(ctx, eventstore.Start, 10, eventstore.Filter{})
				return err
			},
			"Head": func(ctx context.Context) error {
				_, err := s.Head(ctx)
				return err
			},
			"Backlog": func(ctx context.Context) error {
				_, err := s.Backlog(ctx, eventstore.Start, 10)
				return err
			},
			"Subscribe": func(ctx context.Context) error {
				return s.Subscribe(ctx, eventstore.Start, eventstore.SubscribeOptions{}, func(context.Context, eventstore.Batch) error { return nil })
			},
		}
		for name, call := range calls {
			if err := call(c.ctx); !errors.Is(err, c.want) {
				t.Errorf("%s with a %s context: %v, want %v", name, c.name, err, c.want)
			}
		}
	}

	// Cancelled in flight, a caught-up subscription returns the context's
	// error, not the client's Canceled status.
	ctx, stop := context.WithCancel(context.Background())
	var got atomic.Bool
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(ctx, eventstore.Start, eventstore.SubscribeOptions{}, func(context.Context, eventstore.Batch) error {
			got.Store(true)
			return nil
		})
	}()
	eventually.True(t, "the first batch", got.Load)
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("subscription cancelled in flight: %v", err)
	}

	if _, err := s.Append(ctxT(t), "order-2", eventstore.NoStream, testEvent("e", 2)); err != nil {
		t.Fatalf("append after the cancelled calls: %v", err)
	}
	if evs, err := s.ReadStream(ctxT(t), "order-2", eventstore.Forward, 0, 10); err != nil || len(evs) != 1 {
		t.Fatalf("the cancelled append wrote something: %d events, %v", len(evs), err)
	}
}

// After Close every method fails with ErrClosed, and a running
// subscription ends with it.
func TestClose(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	s, err := kurrentdb.New(ctxT(t), srv.URL(), fastRetry)
	if err != nil {
		t.Fatal(err)
	}
	c, done := subscribe(t, s, eventstore.Start, eventstore.SubscribeOptions{})
	mustAppend(t, s, "order-1", eventstore.NoStream, testEvent("e", 0))
	eventually.True(t, "the event", func() bool { return c.count() == 1 })
	s.Close()
	if err := <-done; !errors.Is(err, kurrentdb.ErrClosed) {
		t.Fatalf("subscription after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Append(ctxT(t), "order-1", eventstore.Any, testEvent("e", 1)); !errors.Is(err, kurrentdb.ErrClosed) {
		t.Fatalf("append after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Head(ctxT(t)); !errors.Is(err, kurrentdb.ErrClosed) {
		t.Fatalf("head after Close: %v, want ErrClosed", err)
	}
	s.Close() // again: nothing happens
}

// Streams whose ids start with "$" are KurrentDB's: refused on Append,
// missing to ReadStream, skipped (but moved past) by ReadAll, Head,
// Backlog and Subscribe. The double writes a node's start-up system
// events ($settings, $scavenges, …) into $all.
func TestSystemStreams(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	s := open(t, srv.URL(), fastRetry)
	ctx := ctxT(t)

	for _, stream := range []string{"$settings", "$my-stream", "$$order-1", "$"} {
		if _, err := s.Append(ctx, stream, eventstore.Any, testEvent("e", 0)); !errors.Is(err, eventstore.ErrInvalidEvent) {
			t.Errorf("append to %q: %v, want ErrInvalidEvent", stream, err)
		}
	}
	if _, err := s.ReadStream(ctx, "$settings", eventstore.Forward, 0, 10); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("read $settings: %v, want ErrStreamNotFound", err)
	}

	// A store with only system events looks empty, but reading moves past
	// them.
	p, err := s.ReadAll(ctx, eventstore.Start, 100, eventstore.Filter{})
	if err != nil || len(p.Events) != 0 || p.Scanned == 0 || p.Next == eventstore.Start || !p.AtEnd {
		t.Fatalf("read all of a new node: %+v, %v; want system events scanned and skipped", p, err)
	}
	if head, err := s.Head(ctx); err != nil || head != eventstore.Start {
		t.Fatalf("head of a new node: %s, %v; want Start", head, err)
	}
	if b, err := s.Backlog(ctx, eventstore.Start, 100); err != nil || b.Events != 0 {
		t.Fatalf("backlog of a new node: %+v, %v", b, err)
	}
	c, _ := subscribe(t, s, eventstore.Start, eventstore.SubscribeOptions{})
	eventually.True(t, "the checkpoint past the system events", func() bool {
		_, cps := c.snapshot()
		return len(cps) > 0 && !cps[len(cps)-1].Less(p.Next)
	})

	res := mustAppend(t, s, "order-1", eventstore.NoStream, testEvent("e", 1))
	eventually.True(t, "the event", func() bool { return c.count() == 1 })
	if head, err := s.Head(ctx); err != nil || head != res.Position {
		t.Fatalf("head %s, %v; want %s", head, err, res.Position)
	}
	evs, _ := c.snapshot()
	if evs[0].StreamID != "order-1" {
		t.Fatalf("delivered %s", evs[0].StreamID)
	}
}

// The subscription survives the server dropping it and restarting:
// resubscribed from its checkpoint, it delivers every event exactly once.
func TestResubscribes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		filter eventstore.Filter
		fault  func(*kurrentdbtest.Server) error
	}{
		{"DropSubscriptions", eventstore.Filter{}, func(s *kurrentdbtest.Server) error { s.DropSubscriptions(); return nil }},
		{"Restart", eventstore.Filter{}, (*kurrentdbtest.Server).Restart},
		{"DropSubscriptions, filtered", eventstore.Filter{StreamPrefixes: []string{"order-"}}, func(s *kurrentdbtest.Server) error { s.DropSubscriptions(); return nil }},
		{"Restart, filtered", eventstore.Filter{EventTypes: []string{"e"}}, (*kurrentdbtest.Server).Restart},
		{"Unavailable on resubscribing", eventstore.Filter{}, func(s *kurrentdbtest.Server) error {
			s.FailNext(3, codes.Unavailable)
			s.DropSubscriptions()
			return nil
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
			s := open(t, srv.URL(), fastRetry)
			col, done := subscribe(t, s, eventstore.Start, eventstore.SubscribeOptions{BatchSize: 3, Filter: c.filter})
			var want []uuid.UUID
			version := eventstore.NoVersion
			appendSome := func(n int) {
				for i := range n {
					// Noise the filtered subscriptions skip.
					noise := testEvent("noise", i)
					retryAppend(t, s, "noise-"+uuid.NewString(), eventstore.NoVersion, noise)
					if c.filter.IsZero() {
						want = append(want, noise.ID)
					}
					e := testEvent("e", i)
					version = retryAppend(t, s, "order-1", version, e).Version
					want = append(want, e.ID)
				}
			}
			for round := range 3 {
				appendSome(7)
				eventually.True(t, fmt.Sprintf("round %d delivered", round), func() bool { return col.count() >= len(want) })
				if err := c.fault(srv); err != nil {
					t.Fatal(err)
				}
			}
			appendSome(5)
			eventually.True(t, "the last events", func() bool { return col.count() >= len(want) })
			select {
			case err := <-done:
				t.Fatalf("subscription ended: %v", err)
			default:
			}
			checkDelivered(t, col, want)
		})
	}
}

// retryAppend appends e to stream at version (NoVersion: NoStream),
// retrying while the outcome is unknown (the node restarting or failing):
// safe with an exact or NoStream expected version, which recognises a
// stored attempt.
func retryAppend(t *testing.T, s eventstore.Store, stream string, version int64, e eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	var (
		res eventstore.AppendResult
		err error
	)
	eventually.True(t, "an append to "+stream, func() bool {
		res, err = s.Append(ctxT(t), stream, eventstore.Exact(version), e)
		return err == nil || errors.Is(err, eventstore.ErrWrongExpectedVersion)
	})
	if err != nil {
		t.Fatalf("append to %s at %d: %v", stream, version, err)
	}
	return res
}

// The gap scenario of the acceptance suite, with the server dropping
// every subscription after every 50th append: resubscriptions neither lose
// nor repeat an event.
func TestNoGapsWhileSubscriptionsDrop(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	s := &dropping{Store: open(t, srv.URL(), fastRetry), srv: srv, every: 50}
	report := storetest.RunGapScenario(t, s, storetest.GapScenario{Writers: 16, AppendsPerWriter: 40})
	if err := report.Err(); err != nil {
		t.Fatal(err)
	}
	if s.drops() == 0 {
		t.Fatal("no subscription was dropped")
	}
}

// dropping drops the server's subscriptions after every every-th append.
type dropping struct {
	*kurrentdb.Store
	srv   *kurrentdbtest.Server
	every int

	mu      sync.Mutex
	appends int
	dropped int
}

func (d *dropping) Append(ctx context.Context, stream string, exp eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	res, err := d.Store.Append(ctx, stream, exp, events...)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.appends++; d.appends%d.every == 0 {
		d.srv.DropSubscriptions()
		d.dropped++
	}
	return res, err
}

func (d *dropping) drops() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dropped
}

// The server filters event types by prefix; the subscription and ReadAll
// deliver exact types only, and move past the others.
func TestEventTypeFilterIsExact(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	s := open(t, srv.URL(), fastRetry)
	var want []uuid.UUID
	var last eventstore.AppendResult
	for i := range 10 {
		placed, later := testEvent("order.placed", i), testEvent("order.placed.v2", i)
		last = mustAppend(t, s, fmt.Sprint("order-", i), eventstore.NoStream, placed, later)
		want = append(want, placed.ID)
	}
	f := eventstore.Filter{EventTypes: []string{"order.placed"}}
	c, _ := subscribe(t, s, eventstore.Start, eventstore.SubscribeOptions{BatchSize: 4, Filter: f})
	eventually.True(t, "the checkpoint at the last event", func() bool {
		_, cps := c.snapshot()
		return len(cps) > 0 && cps[len(cps)-1] == last.Position
	})
	checkDelivered(t, c, want)
	p, err := s.ReadAll(ctxT(t), eventstore.Start, 100, f)
	if err != nil || len(p.Events) != 10 || p.Next != last.Position {
		t.Fatalf("read all, filtered: %d events, next %s, %v", len(p.Events), p.Next, err)
	}
}

// Positions the server refuses: past the log's end there is nothing to
// read; off a record boundary is ErrInvalidPosition.
func TestInvalidPositions(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	s := open(t, srv.URL(), fastRetry)
	res := mustAppend(t, s, "order-1", eventstore.NoStream, testEvent("e", 0), testEvent("e", 1))

	// Past the end of the log, or off a record boundary: the log does not
	// hold the position (a checkpoint of a node that lost data, or of
	// another node). Nothing reads it as "nothing after".
	past := eventstore.Position{Commit: res.Position.Commit + 1<<20, Prepare: res.Position.Prepare + 1<<20}
	off := eventstore.Position{Commit: res.Position.Commit - 1, Prepare: res.Position.Prepare - 1}
	for _, pos := range []eventstore.Position{past, off} {
		if _, err := s.ReadAll(ctxT(t), pos, 10, eventstore.Filter{}); !errors.Is(err, eventstore.ErrPositionNotInStore) {
			t.Fatalf("read all after %s: %v, want ErrPositionNotInStore", pos, err)
		}
		if _, err := s.Backlog(ctxT(t), pos, 10); !errors.Is(err, eventstore.ErrPositionNotInStore) {
			t.Fatalf("backlog after %s: %v, want ErrPositionNotInStore", pos, err)
		}
		err := s.Subscribe(ctxT(t), pos, eventstore.SubscribeOptions{}, func(context.Context, eventstore.Batch) error { return nil })
		if !errors.Is(err, eventstore.ErrPositionNotInStore) {
			t.Fatalf("subscribe after %s: %v, want ErrPositionNotInStore", pos, err)
		}
	}
	if _, err := s.ReadAll(ctxT(t), off, 10, eventstore.Filter{}); !errors.Is(err, eventstore.ErrInvalidPosition) {
		t.Fatalf("read all off a record boundary: %v, want ErrInvalidPosition too", err)
	}
	if _, err := s.ReadAll(ctxT(t), res.Position, 10, eventstore.Filter{}); err != nil {
		t.Fatalf("read all after the head: %v", err)
	}
}

// A node that comes back without its log (restarted empty on the same
// address): a running subscription does not wait for the new log to grow
// past its checkpoint (and then skip every event before it); it ends with
// ErrPositionNotInStore when it resubscribes.
func TestNodeLostItsLog(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	addr := srv.Addr()
	s := open(t, srv.URL(), fastRetry)
	for i := range 20 {
		mustAppend(t, s, "order-"+uuid.NewString(), eventstore.NoStream, testEvent("e", i))
	}
	c, done := subscribe(t, s, eventstore.Start, eventstore.SubscribeOptions{})
	eventually.True(t, "the events", func() bool { return c.count() == 20 })
	srv.Close()
	again, err := kurrentdbtest.Listen(addr, kurrentdbtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(again.Close)
	select {
	case err := <-done:
		if !errors.Is(err, eventstore.ErrPositionNotInStore) {
			t.Fatalf("subscription ended with %v, want ErrPositionNotInStore", err)
		}
	case <-ctxT(t).Done():
		t.Fatal("the subscription did not end")
	}
	_, cps := c.snapshot()
	if _, err := s.Backlog(ctxT(t), cps[len(cps)-1], 10); !errors.Is(err, eventstore.ErrPositionNotInStore) {
		t.Fatalf("backlog after the old checkpoint: %v, want ErrPositionNotInStore", err)
	}
}

// An append above the server's maximum append size is invalid input.
func TestAppendTooLarge(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{MaxAppendSize: 1 << 10})
	s := open(t, srv.URL(), fastRetry)
	e := testEvent("big", 0)
	e.Data = json.RawMessage(`"` + strings.Repeat("x", 2<<10) + `"`)
	if _, err := s.Append(ctxT(t), "order-1", eventstore.NoStream, e); !errors.Is(err, eventstore.ErrInvalidEvent) {
		t.Fatalf("append of 2 KiB to a node taking 1 KiB: %v, want ErrInvalidEvent", err)
	}
}

// What the capabilities say, shown: retries with an exact or NoStream
// expected version are recognised even after a restart; with Any they are
// recognised only while the ids are in the server's cache, and an old id
// at the next version is stored again. Each append says which it was
// (Replayed).
func TestIdempotencyLimits(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	s := open(t, srv.URL(), fastRetry)
	a, b := testEvent("a", 0), testEvent("b", 1)
	first := mustAppend(t, s, "order-1", eventstore.NoStream, a, b)
	if again := mustAppend(t, s, "order-1", eventstore.Any, a, b); again.Position != first.Position || !again.Replayed || first.Replayed {
		t.Fatalf("retry with Any while cached: %+v, want %+v replayed", again, first)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	var again eventstore.AppendResult
	eventually.True(t, "a retry with NoStream after the restart", func() bool {
		var err error
		again, err = s.Append(ctxT(t), "order-1", eventstore.NoStream, a, b)
		return err == nil
	})
	if again.Position != first.Position || again.Version != first.Version || !again.Replayed {
		t.Fatalf("retry with NoStream after a restart: %+v, want %+v replayed", again, first)
	}
	if dup := mustAppend(t, s, "order-1", eventstore.Any, a, b); dup.Version != 3 || dup.Replayed {
		t.Fatalf("retry with Any after a restart: %+v; the double no longer writes it again", dup)
	}
	if dup := mustAppend(t, s, "order-2", eventstore.NoStream, a); dup.Version != 0 || dup.Replayed {
		t.Fatalf("an old id in another stream: %+v", dup)
	}
}

// A follower sends the client to the leader; the append succeeds there.
func TestFollowsTheLeader(t *testing.T) {
	t.Parallel()
	leader := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	follower := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	s := open(t, follower.URL(), fastRetry)
	follower.RedirectToLeader(leader.Addr())
	res := mustAppend(t, s, "order-1", eventstore.NoStream, testEvent("e", 0))
	onLeader := open(t, leader.URL(), fastRetry)
	evs, err := onLeader.ReadStream(ctxT(t), "order-1", eventstore.Forward, 0, 10)
	if err != nil || len(evs) != 1 || evs[0].Position != res.Position {
		t.Fatalf("on the leader: %d events, %v", len(evs), err)
	}
}

// A failed append is reported (not retried: with Any it is not safe), and
// the next one works.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	s := open(t, srv.URL(), fastRetry)
	srv.FailNext(1, codes.Unavailable)
	if _, err := s.Append(ctxT(t), "order-1", eventstore.Any, testEvent("e", 0)); err == nil {
		t.Fatal("append to an unavailable node succeeded")
	}
	mustAppend(t, s, "order-1", eventstore.NoStream, testEvent("e", 1))
}

// Connection strings: all four schemes, TLS with credentials, and no
// password in errors or logs.
func TestConnectionStrings(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	addr := srv.Addr()
	for _, url := range []string{
		"esdb://" + addr + "?tls=false",
		"kurrentdb://" + addr + "?tls=false",
		"esdb+discover://" + addr + "?tls=false",
		"kurrentdb+discover://" + addr + "?tls=false&connectionName=orders",
	} {
		s := open(t, url, fastRetry)
		mustAppend(t, s, "order-"+uuid.NewString(), eventstore.NoStream, testEvent("e", 0))
	}

	const password = "s3cret-Pa55"
	secure := kurrentdbtest.Start(t, kurrentdbtest.Options{TLS: true, Username: "admin", Password: password})
	var logs logtest.Sink
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := open(t, secure.URL(), kurrentdb.Options{Logger: log})
	mustAppend(t, s, "order-1", eventstore.NoStream, testEvent("e", 0))

	wrong := strings.Replace(secure.URL(), password, password+"-wrong", 1)
	if _, err := kurrentdb.New(ctxT(t), wrong, kurrentdb.Options{Logger: log}); err == nil || strings.Contains(err.Error(), password) {
		t.Errorf("wrong password: %v", err)
	}
	// Nothing listens here any more.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := lis.Addr().String()
	_ = lis.Close()
	down := "kurrentdb://admin:" + password + "@" + closed + "?tls=true&tlsVerifyCert=false&maxDiscoverAttempts=1"
	if _, err := kurrentdb.New(ctxT(t), down, kurrentdb.Options{Logger: log}); err == nil || strings.Contains(err.Error(), password) {
		t.Errorf("node down: %v", err)
	} else if !strings.Contains(err.Error(), "admin:xxxxx@") {
		t.Errorf("node down: %v does not show the redacted connection string", err)
	}
	if strings.Contains(logs.String(), password) {
		t.Errorf("the log shows the password:\n%s", logs.String())
	}
}

// The v4 client closes itself for good once node discovery fails (here
// after one attempt); the store replaces it, so appends work again once a
// node listens there again.
func TestRecoversAfterTheClientGaveUp(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	addr := srv.Addr()
	s := open(t, srv.URL()+"&maxDiscoverAttempts=1", fastRetry)
	mustAppend(t, s, "order-1", eventstore.NoStream, testEvent("e", 0))
	srv.Close()
	for i := range 3 { // fails, then rediscovers and gives up, then finds the client closed
		if _, err := s.Append(ctxT(t), "order-2", eventstore.NoStream, testEvent("e", i)); err == nil {
			t.Fatal("append with the node down succeeded")
		}
	}
	again, err := kurrentdbtest.Listen(addr, kurrentdbtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(again.Close)
	retryAppend(t, s, "order-2", eventstore.NoVersion, testEvent("e", 3))
}

// The same append sent at once by several clients (processes that handle
// one message twice): the server writes it once and recognises the rest
// as retries, which the client answers exactly as the write. The adapter
// tells them apart by the mark it reads back: exactly one append reports
// a write (with its recorded time), every other one Replayed, for a new
// stream (NoStream) and at an exact version alike. The events' metadata
// reads back as it was given.
func TestReplayedAcrossClients(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	clients := make([]*kurrentdb.Store, 4)
	for i := range clients {
		clients[i] = open(t, srv.URL(), kurrentdb.Options{})
	}
	stream := "order-" + uuid.NewString()
	for _, exp := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Exact(1)} {
		batch := []eventstore.EventData{testEvent("a", 1), testEvent("b", 2)}
		results := make([]eventstore.AppendResult, 3*len(clients))
		var wg sync.WaitGroup
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := clients[i%len(clients)].Append(ctxT(t), stream, exp, batch...)
				if err != nil {
					t.Errorf("append %d at %s: %v", i, exp, err)
				}
				results[i] = res
			}()
		}
		wg.Wait()
		writes := 0
		for i, res := range results {
			if res.Version != results[0].Version || res.Position != results[0].Position {
				t.Fatalf("at %s, append %d returned %+v, append 0 %+v", exp, i, res, results[0])
			}
			if !res.Replayed {
				writes++
				if res.RecordedAt.IsZero() {
					t.Errorf("at %s, the write has no recorded time", exp)
				}
			} else if !res.RecordedAt.IsZero() {
				t.Errorf("at %s, a replay has a recorded time: %+v", exp, res)
			}
		}
		if writes != 1 {
			t.Fatalf("at %s, %d appends reported a write, want 1", exp, writes)
		}
	}
	got, err := clients[0].ReadStream(ctxT(t), stream, eventstore.Forward, 0, 10)
	if err != nil || len(got) != 4 {
		t.Fatalf("stream holds %d events (%v), want 4", len(got), err)
	}
	for _, e := range got {
		if e.Metadata != (eventstore.Metadata{CorrelationID: "corr", Actor: "system"}) {
			t.Errorf("event %d reads back with metadata %+v", e.Version, e.Metadata)
		}
	}
}

// An outage longer than the client's reconnect budget (here two discovery
// attempts): the v4 client gives up for good and leaves the calls that
// waited for a connection blocked forever, whatever their context. The
// adapter replaces the client and ends those calls, so every subscription
// and every reader carries on once the node is back, none skipping or
// repeating an event, and no call is left stuck on a dead client.
func TestOutageLongerThanTheClientsBudget(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	var logs logtest.Sink
	opts := fastRetry
	opts.CallTimeout = 5 * time.Second
	opts.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := open(t, srv.URL()+"&maxDiscoverAttempts=2&discoveryInterval=10", opts)

	var want []uuid.UUID
	version := eventstore.NoVersion
	appendOne := func(i int) {
		e := testEvent("e", i)
		version = retryAppend(t, s, "order-1", version, e).Version
		want = append(want, e.ID)
	}
	appendOne(0)

	const subscriptions, readers = 4, 2
	cols := make([]*collector, subscriptions)
	dones := make([]<-chan error, subscriptions)
	for i := range cols {
		cols[i], dones[i] = subscribe(t, s, eventstore.Start, eventstore.SubscribeOptions{})
	}
	// Readers read $all over and over, as projection runners and /readyz
	// do, with a context that never ends.
	ctx, cancel := context.WithCancel(context.Background())
	var seen [readers]atomic.Int64
	var wg sync.WaitGroup
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pace := time.NewTicker(10 * time.Millisecond) // pacing, not synchronisation
			defer pace.Stop()
			for ctx.Err() == nil {
				if p, err := s.ReadAll(ctx, eventstore.Start, 100, eventstore.Filter{}); err == nil {
					seen[i].Store(int64(len(p.Events)))
				}
				select {
				case <-ctx.Done():
				case <-pace.C:
				}
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	all := func(n int) func() bool {
		return func() bool {
			for _, c := range cols {
				if c.count() < n {
					return false
				}
			}
			for i := range seen {
				if seen[i].Load() < int64(n) {
					return false
				}
			}
			return true
		}
	}
	eventually.True(t, "the first event everywhere", all(1))

	if err := srv.Down(); err != nil {
		t.Fatal(err)
	}
	// Wait past the client's budget: a subscription that failed four
	// times in a row saw the connection drop, the client rediscover the
	// node and give up, and then the client closed.
	eventually.True(t, "a subscription failing four times in a row", func() bool {
		for _, r := range logs.Records(t) {
			if f, ok := r["attempt"].(float64); ok && r["msg"] == "kurrentdb: subscription dropped, resubscribing" && f >= 4 {
				return true
			}
		}
		return false
	})
	if err := srv.Up(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		appendOne(i)
	}
	eventually.True(t, "every event in every subscription and reader", all(len(want)))
	for i, c := range cols {
		select {
		case err := <-dones[i]:
			t.Fatalf("subscription %d ended: %v", i, err)
		default:
		}
		checkDelivered(t, c, want)
	}
	eventually.True(t, "no call stuck on a dead client", func() bool {
		buf := make([]byte, 1<<22)
		return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "getConnectionHandle")
	})
}

// A node that accepts connections but never answers (a hung host, a
// black-holed network) keeps the client's rediscovery waiting for its
// gossip timeout (here 30 s), and every call with it, whatever its
// context. Each call still ends within the call timeout (twice: a read is
// made once more on a new client), and the store recovers once the node
// answers again.
func TestCallTimeout(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	opts := fastRetry
	opts.CallTimeout = 300 * time.Millisecond
	s := open(t, srv.URL()+"&maxDiscoverAttempts=1&gossipTimeout=30", opts)
	mustAppend(t, s, "order-1", eventstore.NoStream, testEvent("e", 0))

	if err := srv.Down(); err != nil {
		t.Fatal(err)
	}
	hole, err := net.Listen("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	closeHole := func() {
		_ = hole.Close()
		<-accepted
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			_ = c.Close()
		}
		held = nil
	}
	t.Cleanup(closeHole)
	for i := range 3 {
		start := time.Now()
		if _, err := s.Head(context.Background()); !errors.Is(err, eventstore.ErrUnavailable) {
			t.Fatalf("head %d with the node hung: %v, want ErrUnavailable", i, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("head %d with the node hung took %s", i, d)
		}
	}
	closeHole()
	if err := srv.Up(); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, "a head again", func() bool {
		_, err := s.Head(ctxT(t))
		return err == nil
	})
}
