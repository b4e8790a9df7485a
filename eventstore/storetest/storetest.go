// Package storetest is the acceptance test suite of the event store port.
// Every adapter runs it:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, h storetest.Hooks) eventstore.Store { ... }, storetest.Full)
//	}
//
// The suite checks the contract that the rest of Orders relies on:
// optimistic concurrency, idempotent appends, stream and global ordering, and
// subscriptions that deliver every event exactly once while many writers
// commit out of order. Capabilities name the parts of the contract that not
// every backend can keep; each adapter declares what it promises and is held
// to exactly that.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/eventstore"
)

// Hooks are test hooks a Factory must install in the store it builds.
type Hooks struct {
	// BeforeCommit, if not nil, must run inside every append's transaction
	// after its events are written and before they commit.
	BeforeCommit func(ctx context.Context)
	// DeliveryInterval, if not zero, must be the store's least time
	// between two batches of a caught-up subscription (its
	// Options.DeliveryInterval).
	DeliveryInterval time.Duration
}

// Factory returns a new, empty store for one test, with hooks installed. It
// must release the store when t ends.
type Factory func(t *testing.T, hooks Hooks) eventstore.Store

// Capabilities are the guarantees of the port that depend on the backend.
// The suite checks a guarantee only where the adapter declares it, and
// checks everything else on every adapter. What every backend keeps, and
// what callers may rely on without knowing the backend, is an idempotent
// retry with an exact or NoStream expected version and the same event ids.
type Capabilities struct {
	// UniqueEventIDs: an event id is stored at most once in the whole
	// store; appending a stored id anywhere other than where an idempotent
	// retry would put it fails with ErrDuplicateEventID. KurrentDB has no
	// global id index: it writes such an event again.
	UniqueEventIDs bool
	// IdempotentAny: a retry with Any or StreamExists of an append that was
	// stored is always recognised and writes nothing. KurrentDB recognises
	// it only while the ids are in an in-memory cache of recent writes to
	// the same stream (best effort; lost on restart).
	IdempotentAny bool
	// ReportsReplayed: AppendResult.Replayed tells an idempotent retry from
	// a fresh write. (The KurrentDB client answers both alike; its adapter
	// tells them apart by reading the last event back.)
	ReportsReplayed bool
}

// Full is every capability: what the PostgreSQL and in-memory stores
// promise.
var Full = Capabilities{UniqueEventIDs: true, IdempotentAny: true, ReportsReplayed: true}

// waitTimeout bounds every wait for a subscription to catch up.
const waitTimeout = 30 * time.Second

// Run runs the whole suite against the stores made by newStore, holding
// them to caps.
func Run(t *testing.T, newStore Factory, caps Capabilities) {
	t.Run("AppendAndReadStream", func(t *testing.T) { testAppendAndRead(t, newStore(t, Hooks{})) })
	t.Run("ReadStreamRanges", func(t *testing.T) { testReadStreamRanges(t, newStore(t, Hooks{})) })
	t.Run("ExpectedVersion", func(t *testing.T) { testExpectedVersion(t, newStore) })
	t.Run("IdempotentAppend", func(t *testing.T) { testIdempotentAppend(t, newStore(t, Hooks{}), caps) })
	t.Run("InvalidAppend", func(t *testing.T) { testInvalidAppend(t, newStore(t, Hooks{})) })
	t.Run("ConcurrentSameExpectedVersion", func(t *testing.T) { testConcurrentSameVersion(t, newStore(t, Hooks{})) })
	t.Run("GlobalOrder", func(t *testing.T) { testGlobalOrder(t, newStore(t, Hooks{})) })
	t.Run("Backlog", func(t *testing.T) { testBacklog(t, newStore(t, Hooks{})) })
	t.Run("Filters", func(t *testing.T) { testFilters(t, newStore(t, Hooks{})) })
	t.Run("SubscribeLive", func(t *testing.T) { testSubscribeLive(t, newStore(t, Hooks{})) })
	t.Run("SubscribePacedDelivery", func(t *testing.T) { testPacedDelivery(t, newStore) })
	t.Run("SubscribeResumeFromCheckpoint", func(t *testing.T) { testResume(t, newStore(t, Hooks{})) })
	t.Run("SubscribeFilteredCheckpoints", func(t *testing.T) { testFilteredCheckpoints(t, newStore(t, Hooks{})) })
	t.Run("SubscribeHandlerError", func(t *testing.T) { testHandlerError(t, newStore(t, Hooks{})) })
	t.Run("ContextCancellation", func(t *testing.T) { testCancellation(t, newStore(t, Hooks{})) })
	t.Run("LargePayloads", func(t *testing.T) { testLargePayloads(t, newStore(t, Hooks{})) })
	t.Run("NoGapsUnderConcurrentWriters", func(t *testing.T) {
		store := newStore(t, Hooks{BeforeCommit: RandomDelay(3 * time.Millisecond)})
		report := RunGapScenario(t, store, GapScenario{Writers: 16, AppendsPerWriter: 40})
		if err := report.Err(); err != nil {
			t.Fatal(err)
		}
	})
}

// RandomDelay returns a BeforeCommit hook that sleeps up to max, so that
// concurrent transactions commit in a different order than they started.
func RandomDelay(max time.Duration) func(ctx context.Context) {
	return func(ctx context.Context) {
		d := time.Duration(rand.Int64N(int64(max) + 1))
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// event returns an EventData with a fresh id and a small JSON payload.
func event(typ string, payload any) eventstore.EventData {
	data, err := json.Marshal(payload)
	if err != nil {
		panic(err)
	}
	return eventstore.EventData{
		ID:   uuid.New(),
		Type: typ,
		Data: data,
		Metadata: eventstore.Metadata{
			CorrelationID: "corr-" + typ,
			CausationID:   "cause-" + typ,
			Actor:         "system",
			// Trace context travels with the event on every adapter.
			Traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			Tracestate:  "vendor=" + typ,
		},
	}
}

func newStream(prefix string) string { return prefix + "-" + uuid.NewString() }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
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

func readStream(t *testing.T, s eventstore.Store, stream string) []eventstore.RecordedEvent {
	t.Helper()
	evs, err := s.ReadStream(ctxT(t), stream, eventstore.Forward, 0, 10_000)
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	return evs
}

// readAll pages through the whole log with the given page size.
func readAll(t *testing.T, s eventstore.Store, limit int, f eventstore.Filter) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	pos := eventstore.Start
	for {
		p, err := s.ReadAll(ctxT(t), pos, limit, f)
		if err != nil {
			t.Fatalf("read all from %s: %v", pos, err)
		}
		if p.Scanned > limit || len(p.Events) > p.Scanned {
			t.Fatalf("page from %s: %d events, %d scanned, limit %d", pos, len(p.Events), p.Scanned, limit)
		}
		if p.Next.Less(pos) {
			t.Fatalf("page from %s moved back to %s", pos, p.Next)
		}
		out = append(out, p.Events...)
		pos = p.Next
		if p.AtEnd {
			return out
		}
	}
}

// waitVisible waits until the global order has reached pos. In a store
// that orders by transaction (PostgreSQL), a committed event joins the global
// order once every older transaction on the server has ended, which another
// test's transaction can delay by a moment.
func waitVisible(t *testing.T, s eventstore.Store, pos eventstore.Position) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		head, err := s.Head(ctxT(t))
		if err != nil {
			t.Fatalf("head: %v", err)
		}
		if !head.Less(pos) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("position %s not readable within %v (head %s)", pos, waitTimeout, head)
		}
		time.Sleep(5 * time.Millisecond) // polling the head against a deadline
	}
}

func wantWrongVersion(t *testing.T, err error, actual int64) {
	t.Helper()
	var wev *eventstore.WrongExpectedVersionError
	if !errors.As(err, &wev) || !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("got %v, want a *WrongExpectedVersionError", err)
	}
	if wev.Actual != actual {
		t.Fatalf("WrongExpectedVersionError.Actual = %d, want %d (%v)", wev.Actual, actual, err)
	}
}

func testAppendAndRead(t *testing.T, s eventstore.Store) {
	stream := newStream("order")
	in := []eventstore.EventData{
		event("order.placed.v1", map[string]any{"total": 1500, "email": "a@example.com"}),
		event("order.reserved.v1", map[string]any{"n": 1}),
		event("order.paid.v1", map[string]any{"n": 2}),
	}
	// Data bytes are stored exactly, whitespace and key order included.
	in[2].Data = json.RawMessage(`{ "z": 1,  "a": [1, 2] }`)
	before := time.Now().Add(-time.Minute)
	res := mustAppend(t, s, stream, eventstore.NoStream, in...)
	if res.Version != 2 {
		t.Fatalf("version after 3 events = %d, want 2", res.Version)
	}
	got := readStream(t, s, stream)
	if len(got) != 3 {
		t.Fatalf("read %d events, want 3", len(got))
	}
	for i, e := range got {
		if e.ID != in[i].ID || e.Type != in[i].Type || string(e.Data) != string(in[i].Data) || e.Metadata != in[i].Metadata {
			t.Errorf("event %d = %+v, want %+v", i, e, in[i])
		}
		if e.StreamID != stream || e.Version != int64(i) {
			t.Errorf("event %d at %s@%d, want %s@%d", i, e.StreamID, e.Version, stream, i)
		}
		if e.RecordedAt.Before(before) || e.RecordedAt.After(time.Now().Add(time.Minute)) {
			t.Errorf("event %d recorded at %v", i, e.RecordedAt)
		}
		// The append tells the time the store recorded: one clock for one
		// fact, to the store's precision.
		if !e.RecordedAt.Equal(res.RecordedAt) {
			t.Errorf("event %d recorded at %v, the append said %v", i, e.RecordedAt, res.RecordedAt)
		}
		if i > 0 && !got[i-1].Position.Less(e.Position) {
			t.Errorf("positions not increasing: %s then %s", got[i-1].Position, e.Position)
		}
	}
	if got[2].Position != res.Position {
		t.Errorf("append returned position %s, last event is at %s", res.Position, got[2].Position)
	}
	if _, err := s.ReadStream(ctxT(t), newStream("missing"), eventstore.Forward, 0, 10); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("reading a missing stream: %v, want ErrStreamNotFound", err)
	}
}

func testReadStreamRanges(t *testing.T, s eventstore.Store) {
	stream := newStream("product")
	var in []eventstore.EventData
	for i := range 10 {
		in = append(in, event("product.stock_adjusted.v1", map[string]int{"i": i}))
	}
	mustAppend(t, s, stream, eventstore.NoStream, in...)
	versions := func(evs []eventstore.RecordedEvent) []int64 {
		out := []int64{}
		for _, e := range evs {
			out = append(out, e.Version)
		}
		return out
	}
	cases := []struct {
		name  string
		dir   eventstore.Direction
		from  int64
		limit int
		want  []int64
	}{
		{"forward from start", eventstore.Forward, 0, 3, []int64{0, 1, 2}},
		{"forward from middle", eventstore.Forward, 7, 10, []int64{7, 8, 9}},
		{"forward past end", eventstore.Forward, 10, 10, []int64{}},
		{"backward from end", eventstore.Backward, eventstore.FromEnd, 3, []int64{9, 8, 7}},
		{"backward from version", eventstore.Backward, 2, 10, []int64{2, 1, 0}},
	}
	for _, c := range cases {
		evs, err := s.ReadStream(ctxT(t), stream, c.dir, c.from, c.limit)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := fmt.Sprint(versions(evs)); got != fmt.Sprint(c.want) {
			t.Errorf("%s: versions %s, want %v", c.name, got, c.want)
		}
	}
}

func testExpectedVersion(t *testing.T, newStore Factory) {
	s := newStore(t, Hooks{})
	existing := newStream("order")
	mustAppend(t, s, existing, eventstore.NoStream, event("e", 0), event("e", 1)) // at version 1

	cases := []struct {
		name     string
		stream   string // "" = a new stream
		expected eventstore.ExpectedVersion
		ok       bool
		actual   int64 // when !ok
		version  int64 // when ok
	}{
		{"NoStream on a new stream", "", eventstore.NoStream, true, 0, 0},
		{"NoStream on an existing stream", existing, eventstore.NoStream, false, 1, 0},
		{"StreamExists on a new stream", "", eventstore.StreamExists, false, eventstore.NoVersion, 0},
		{"StreamExists on an existing stream", existing, eventstore.StreamExists, true, 0, 2},
		{"Any on a new stream", "", eventstore.Any, true, 0, 0},
		{"Any on an existing stream", existing, eventstore.Any, true, 0, 3},
		{"exact current version", existing, eventstore.Exact(3), true, 0, 4},
		{"exact stale version", existing, eventstore.Exact(2), false, 4, 0},
		{"exact future version", existing, eventstore.Exact(9), false, 4, 0},
		{"exact version of a new stream", "", eventstore.Exact(0), false, eventstore.NoVersion, 0},
		{"Exact(NoVersion) is NoStream", "", eventstore.Exact(eventstore.NoVersion), true, 0, 0},
	}
	for _, c := range cases {
		stream := c.stream
		if stream == "" {
			stream = newStream("new")
		}
		res, err := s.Append(ctxT(t), stream, c.expected, event("e", c.name))
		if c.ok {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			} else if res.Version != c.version {
				t.Errorf("%s: version %d, want %d", c.name, res.Version, c.version)
			}
			continue
		}
		var wev *eventstore.WrongExpectedVersionError
		if !errors.As(err, &wev) || !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			t.Errorf("%s: got %v, want a wrong expected version error", c.name, err)
			continue
		}
		if wev.Actual != c.actual || wev.StreamID != stream || wev.Expected != c.expected {
			t.Errorf("%s: error %+v, want actual %d", c.name, wev, c.actual)
		}
	}
	// Failed appends wrote nothing.
	if n := len(readStream(t, s, existing)); n != 5 {
		t.Errorf("existing stream has %d events, want 5", n)
	}
}

func testIdempotentAppend(t *testing.T, s eventstore.Store, caps Capabilities) {
	ctx := ctxT(t)
	stream := newStream("order")
	a, b := event("a", 1), event("b", 2)
	first := mustAppend(t, s, stream, eventstore.NoStream, a, b)
	replayed := func(res eventstore.AppendResult) bool { return res.Replayed || !caps.ReportsReplayed }

	// The same ids at the same expected version: the original result.
	retries := []eventstore.ExpectedVersion{eventstore.NoStream}
	if caps.IdempotentAny {
		retries = append(retries, eventstore.Any, eventstore.StreamExists)
	}
	for _, exp := range retries {
		again, err := s.Append(ctx, stream, exp, a, b)
		if err != nil {
			t.Fatalf("retry with %s: %v", exp, err)
		}
		if again.Version != first.Version || again.Position != first.Position || !replayed(again) || first.Replayed {
			t.Fatalf("retry with %s returned %+v, want the original %+v, replayed", exp, again, first)
		}
	}
	// A retry of a prefix of the append is idempotent too.
	if res, err := s.Append(ctx, stream, eventstore.NoStream, a); err != nil || res.Version != 0 || !replayed(res) {
		t.Fatalf("retry of the first event: %+v, %v", res, err)
	}

	c := event("c", 3)
	second := mustAppend(t, s, stream, eventstore.Exact(1), c)
	if again, err := s.Append(ctx, stream, eventstore.Exact(1), c); err != nil || again.Position != second.Position || again.Version != second.Version || !replayed(again) {
		t.Fatalf("retry at Exact(1): %+v, %v; want %+v", again, err, second)
	}

	// Different events at a taken place: a conflict, not a retry.
	_, err := s.Append(ctx, stream, eventstore.Exact(1), event("d", 4))
	wantWrongVersion(t, err, 2)
	_, err = s.Append(ctx, stream, eventstore.NoStream, a, event("d", 4))
	wantWrongVersion(t, err, 2)
	// The same ids where they would not have been put: not a retry either.
	_, err = s.Append(ctx, stream, eventstore.Exact(0), a, b)
	wantWrongVersion(t, err, 2)
	// Stored ids anywhere else: refused only by a store that keeps ids
	// unique (elsewhere they are written again, so these are not tried).
	if caps.UniqueEventIDs {
		if _, err := s.Append(ctx, stream, eventstore.Any, a, c); !errors.Is(err, eventstore.ErrDuplicateEventID) {
			t.Fatalf("re-append of scattered ids with Any: %v, want ErrDuplicateEventID", err)
		}
		if _, err := s.Append(ctx, newStream("other"), eventstore.Any, a); !errors.Is(err, eventstore.ErrDuplicateEventID) {
			t.Fatalf("an event id in a second stream: %v, want ErrDuplicateEventID", err)
		}
		if _, err := s.Append(ctx, stream, eventstore.Exact(2), b); !errors.Is(err, eventstore.ErrDuplicateEventID) {
			t.Fatalf("an old event id at the next version: %v, want ErrDuplicateEventID", err)
		}
	}

	if got := readStream(t, s, stream); len(got) != 3 {
		t.Fatalf("stream has %d events after retries, want 3", len(got))
	}
	waitVisible(t, s, second.Position)
	if all := readAll(t, s, 100, eventstore.Filter{}); len(all) != 3 {
		t.Fatalf("log has %d events after retries, want 3", len(all))
	}
}

func testInvalidAppend(t *testing.T, s eventstore.Store) {
	ctx := ctxT(t)
	stream := newStream("order")
	id := uuid.New()
	cases := map[string]struct {
		stream string
		events []eventstore.EventData
		want   error
	}{
		"no events":          {stream, nil, eventstore.ErrInvalidEvent},
		"empty stream id":    {"", []eventstore.EventData{event("e", 1)}, eventstore.ErrInvalidEvent},
		"stream id too long": {strings.Repeat("s", eventstore.MaxStreamIDLength+1), []eventstore.EventData{event("e", 1)}, eventstore.ErrInvalidEvent},
		"empty type":         {stream, []eventstore.EventData{{Data: json.RawMessage(`{}`)}}, eventstore.ErrInvalidEvent},
		"invalid json":       {stream, []eventstore.EventData{{Type: "e", Data: json.RawMessage(`{"a":`)}}, eventstore.ErrInvalidEvent},
		"nil data":           {stream, []eventstore.EventData{{Type: "e"}}, eventstore.ErrInvalidEvent},
		"invalid utf-8":      {stream, []eventstore.EventData{{Type: "e", Data: json.RawMessage("\"\xff\"")}}, eventstore.ErrInvalidEvent},
		"NUL in stream id":   {"order-\x00", []eventstore.EventData{event("e", 1)}, eventstore.ErrInvalidEvent},
		"NUL in type":        {stream, []eventstore.EventData{{Type: "e\x00", Data: json.RawMessage(`{}`)}}, eventstore.ErrInvalidEvent},
		"id twice":           {stream, []eventstore.EventData{{ID: id, Type: "e", Data: json.RawMessage(`1`)}, {ID: id, Type: "e", Data: json.RawMessage(`2`)}}, eventstore.ErrDuplicateEventID},
	}
	for name, c := range cases {
		if _, err := s.Append(ctx, c.stream, eventstore.Any, c.events...); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if _, err := s.ReadStream(ctx, stream, eventstore.Forward, 0, 1); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("invalid appends wrote something: %v", err)
	}
	// A zero id is replaced with a fresh one.
	mustAppend(t, s, stream, eventstore.NoStream, eventstore.EventData{Type: "e", Data: json.RawMessage(`{}`)})
	if got := readStream(t, s, stream); got[0].ID == uuid.Nil {
		t.Errorf("event stored with the nil id")
	}
}

func testConcurrentSameVersion(t *testing.T, s eventstore.Store) {
	const writers = 24
	stream := newStream("product")
	mustAppend(t, s, stream, eventstore.NoStream, event("created", 0))

	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		mu       sync.Mutex
		wins     int
		failures []error
	)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := s.Append(ctxT(t), stream, eventstore.Exact(0), event("reserved", i), event("reserved-2", i))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			} else {
				failures = append(failures, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d appends at the same expected version succeeded, want exactly 1", wins)
	}
	for _, err := range failures {
		wantWrongVersion(t, err, 2)
	}
	got := readStream(t, s, stream)
	if len(got) != 3 || got[1].Data == nil || string(got[1].Data) != string(got[2].Data) {
		t.Fatalf("stream after the race: %d events, want the created event and one winner's two", len(got))
	}
}

func testGlobalOrder(t *testing.T, s eventstore.Store) {
	var appended []eventstore.AppendResult
	streams := []string{newStream("a"), newStream("b"), newStream("c")}
	for i := range 30 {
		st := streams[i%len(streams)]
		appended = append(appended, mustAppend(t, s, st, eventstore.Any, event("e", i), event("f", i)))
	}
	waitVisible(t, s, appended[len(appended)-1].Position)
	all := readAll(t, s, 1000, eventstore.Filter{})
	if len(all) != 60 {
		t.Fatalf("read %d events, want 60", len(all))
	}
	for i := 1; i < len(all); i++ {
		if !all[i-1].Position.Less(all[i].Position) {
			t.Fatalf("global order broken at %d: %s then %s", i, all[i-1].Position, all[i].Position)
		}
	}
	// Appends done one after another come out in that order.
	for i, r := range appended {
		if all[2*i+1].Position != r.Position {
			t.Fatalf("append %d returned %s; its last event is at %s", i, r.Position, all[2*i+1].Position)
		}
	}
	checkStreamOrder(t, all)
	// Small pages add up to the same log.
	paged := readAll(t, s, 7, eventstore.Filter{})
	if len(paged) != len(all) {
		t.Fatalf("paging by 7 read %d events, want %d", len(paged), len(all))
	}
	for i := range paged {
		if paged[i].ID != all[i].ID {
			t.Fatalf("paging by 7 differs at %d", i)
		}
	}
	head, err := s.Head(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if head != all[len(all)-1].Position {
		t.Fatalf("head %s, last event at %s", head, all[len(all)-1].Position)
	}
	// Reading from the head finds nothing; from an event's position, what follows it.
	p, err := s.ReadAll(ctxT(t), head, 10, eventstore.Filter{})
	if err != nil || len(p.Events) != 0 || !p.AtEnd {
		t.Fatalf("read from head: %d events, at end %v, err %v", len(p.Events), p.AtEnd, err)
	}
	p, err = s.ReadAll(ctxT(t), all[9].Position, 3, eventstore.Filter{})
	if err != nil || len(p.Events) != 3 || p.Events[0].ID != all[10].ID || p.Next != all[12].Position || p.AtEnd {
		t.Fatalf("read 3 after event 9: %+v, %v", p, err)
	}
}

// checkStreamOrder fails unless each stream's events appear in version order
// without holes.
// Backlog counts what follows a position (every stream, up to the limit)
// and says when the first of it was recorded.
func testBacklog(t *testing.T, s eventstore.Store) {
	empty, err := s.Backlog(ctxT(t), eventstore.Start, 10)
	if err != nil {
		t.Fatal(err)
	}
	if empty.Events != 0 || !empty.Oldest.IsZero() {
		t.Fatalf("backlog of an empty store: %+v", empty)
	}
	var last eventstore.AppendResult
	for i := range 5 {
		last = mustAppend(t, s, newStream(fmt.Sprint("bl", i%2)), eventstore.Any, event("e", i), event("f", i))
	}
	waitVisible(t, s, last.Position)
	all := readAll(t, s, 100, eventstore.Filter{})
	for _, c := range []struct {
		from  eventstore.Position
		limit int
		want  int64
		first int // index in all of the oldest pending event, -1 for none
	}{
		{eventstore.Start, 100, 10, 0},
		{eventstore.Start, 4, 4, 0},
		{all[2].Position, 100, 7, 3},
		{all[2].Position, 1, 1, 3},
		{all[9].Position, 100, 0, -1},
	} {
		b, err := s.Backlog(ctxT(t), c.from, c.limit)
		if err != nil {
			t.Fatalf("backlog after %s: %v", c.from, err)
		}
		if b.Events != c.want {
			t.Fatalf("backlog after %s (limit %d): %d events, want %d", c.from, c.limit, b.Events, c.want)
		}
		switch {
		case c.first < 0 && !b.Oldest.IsZero():
			t.Fatalf("backlog after %s: oldest %v, want none", c.from, b.Oldest)
		case c.first >= 0 && !b.Oldest.Equal(all[c.first].RecordedAt):
			t.Fatalf("backlog after %s: oldest %v, want %v", c.from, b.Oldest, all[c.first].RecordedAt)
		}
	}
	if _, err := s.Backlog(ctxT(t), eventstore.Start, 0); err == nil {
		t.Fatal("a limit of 0 was accepted")
	}
	// A position beyond everything the store holds is no reader's: the
	// store lost data or is another one. Not "nothing behind".
	beyond := eventstore.Position{Commit: math.MaxUint64, Prepare: math.MaxUint64}
	if b, err := s.Backlog(ctxT(t), beyond, 100); !errors.Is(err, eventstore.ErrPositionNotInStore) {
		t.Fatalf("backlog after %s: %+v, %v, want ErrPositionNotInStore", beyond, b, err)
	}
}

func checkStreamOrder(t *testing.T, events []eventstore.RecordedEvent) {
	t.Helper()
	next := map[string]int64{}
	for _, e := range events {
		if e.Version != next[e.StreamID] {
			t.Fatalf("stream %s: version %d delivered when %d was due", e.StreamID, e.Version, next[e.StreamID])
		}
		next[e.StreamID]++
	}
}

func testFilters(t *testing.T, s eventstore.Store) {
	o1, o2, p1 := newStream("order"), newStream("order"), newStream("product")
	mustAppend(t, s, o1, eventstore.NoStream, event("order.placed", 1), event("order.paid", 2))
	mustAppend(t, s, p1, eventstore.NoStream, event("product.created", 3), event("order.placed", 4))
	mustAppend(t, s, o2, eventstore.NoStream, event("order.placed", 5))
	odd := "odd_%\\-" + uuid.NewString()
	mustAppend(t, s, odd, eventstore.NoStream, event("x", 6))
	last := mustAppend(t, s, "oddX%\\-tail", eventstore.NoStream, event("x", 7))
	waitVisible(t, s, last.Position)

	count := func(f eventstore.Filter) int { return len(readAll(t, s, 2, f)) }
	cases := []struct {
		name string
		f    eventstore.Filter
		want int
	}{
		{"none", eventstore.Filter{}, 7},
		{"stream prefix", eventstore.Filter{StreamPrefixes: []string{"order-"}}, 3},
		{"two prefixes", eventstore.Filter{StreamPrefixes: []string{"order-", "product-"}}, 5},
		{"event type", eventstore.Filter{EventTypes: []string{"order.placed"}}, 3},
		{"two types", eventstore.Filter{EventTypes: []string{"order.placed", "order.paid"}}, 4},
		{"prefix and type", eventstore.Filter{StreamPrefixes: []string{"order-"}, EventTypes: []string{"order.placed"}}, 2},
		{"LIKE metacharacters are literal", eventstore.Filter{StreamPrefixes: []string{"odd_%\\-"}}, 1},
		{"no match", eventstore.Filter{EventTypes: []string{"nothing"}}, 0},
	}
	for _, c := range cases {
		if got := count(c.f); got != c.want {
			t.Errorf("filter %s: %d events, want %d", c.name, got, c.want)
		}
	}
	// Filtered events still move the page forward.
	p, err := s.ReadAll(ctxT(t), eventstore.Start, 3, eventstore.Filter{EventTypes: []string{"nothing"}})
	if err != nil || p.Scanned != 3 || len(p.Events) != 0 || p.Next == eventstore.Start {
		t.Fatalf("page of filtered-out events: %+v, %v", p, err)
	}
}

// collector gathers what a subscription delivers.
type collector struct {
	mu          sync.Mutex
	events      []eventstore.RecordedEvent
	checkpoint  eventstore.Position
	batches     int
	handed      time.Time // when the last batch arrived
	checkpoints []eventstore.Position
	changed     chan struct{}
}

func newCollector() *collector { return &collector{changed: make(chan struct{}, 1)} }

func (c *collector) handle(_ context.Context, b eventstore.Batch) error {
	c.mu.Lock()
	c.events = append(c.events, b.Events...)
	c.checkpoint = b.Checkpoint
	c.checkpoints = append(c.checkpoints, b.Checkpoint)
	c.batches++
	c.handed = time.Now()
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
	return nil
}

func (c *collector) snapshot() ([]eventstore.RecordedEvent, eventstore.Position) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]eventstore.RecordedEvent(nil), c.events...), c.checkpoint
}

// waitFor waits until cond holds for what c has collected, or fails t.
func (c *collector) waitFor(t *testing.T, what string, cond func(events []eventstore.RecordedEvent, cp eventstore.Position) bool) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		evs, cp := c.snapshot()
		if cond(evs, cp) {
			return
		}
		select {
		case <-c.changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s: %d events, checkpoint %s", what, len(evs), cp)
		}
	}
}

// subscribe runs a subscription in the background until the test ends and
// returns its collector and a channel with its result.
func subscribe(t *testing.T, s eventstore.Store, from eventstore.Position, opts eventstore.SubscribeOptions) (*collector, context.CancelFunc, <-chan error) {
	c := newCollector()
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
	return c, cancel, done
}

func testSubscribeLive(t *testing.T, s eventstore.Store) {
	stream := newStream("order")
	mustAppend(t, s, stream, eventstore.NoStream, event("before", 0))
	c, _, _ := subscribe(t, s, eventstore.Start, eventstore.SubscribeOptions{})
	c.waitFor(t, "the stored event", func(evs []eventstore.RecordedEvent, _ eventstore.Position) bool { return len(evs) == 1 })
	// Caught up and idle: new appends arrive live.
	for i := 1; i <= 3; i++ {
		mustAppend(t, s, stream, eventstore.Exact(int64(i-1)), event("live", i))
		c.waitFor(t, fmt.Sprintf("live event %d", i), func(evs []eventstore.RecordedEvent, _ eventstore.Position) bool { return len(evs) == i+1 })
	}
	evs, _ := c.snapshot()
	checkStreamOrder(t, evs)
}

// A caught-up subscription hands over the first event after a quiet spell
// at once, then at most one batch per delivery interval, with what
// arrived meanwhile: a trickle of appends costs its subscribers a batch per
// interval, not one per append.
func testPacedDelivery(t *testing.T, newStore Factory) {
	const interval = 2 * time.Second
	s := newStore(t, Hooks{DeliveryInterval: interval})
	stream := newStream("order")
	c, _, _ := subscribe(t, s, eventstore.Start, eventstore.SubscribeOptions{})
	received := func(n int) func([]eventstore.RecordedEvent, eventstore.Position) bool {
		return func(evs []eventstore.RecordedEvent, _ eventstore.Position) bool { return len(evs) == n }
	}
	// Live, then twice: quiet for more than an interval, and an event that
	// arrives at once. (Nothing may count as a wake-up meanwhile: the
	// PostgreSQL adapter hearing its own notification of the event before,
	// say, would put the next wake-up at the end of a second interval.)
	mustAppend(t, s, stream, eventstore.NoStream, event("warm-up", 0))
	c.waitFor(t, "the warm-up event", received(1))
	for i := 1; i <= 2; i++ {
		c.mu.Lock()
		last := c.handed
		c.mu.Unlock()
		time.Sleep(interval*5/4 - time.Since(last)) // the quiet spell the case is about
		start := time.Now()
		mustAppend(t, s, stream, eventstore.Exact(int64(i-1)), event("after a quiet spell", i))
		c.waitFor(t, "the event after the quiet spell", received(i+1))
		if took := time.Since(start); took >= interval/2 {
			t.Errorf("the event after quiet spell %d arrived after %v, want it at once (interval %v)", i, took, interval)
		}
	}

	c.mu.Lock()
	before := c.batches
	c.mu.Unlock()
	const n = 20
	began := time.Now()
	for i := 3; i < n+3; i++ {
		mustAppend(t, s, stream, eventstore.Exact(int64(i-1)), event("trickle", i))
	}
	appended := time.Now()
	appending := appended.Sub(began)
	c.waitFor(t, "the trickle", received(n+3))
	// The batch the last appends wait for comes at the end of its
	// interval, not at a poll.
	if took := time.Since(appended); took > interval+time.Second {
		t.Errorf("the trickle's last events arrived %v after they were appended, want within the interval (%v)", took, interval)
	}
	c.mu.Lock()
	got := c.batches - before
	c.mu.Unlock()
	// One batch per interval the appends spanned, and the last one's.
	if limit := int(appending/interval) + 2; got > limit {
		t.Errorf("%d appends over %v came in %d batches, want at most %d (one per %v)", n, appending, got, limit, interval)
	}
	evs, _ := c.snapshot()
	checkStreamOrder(t, evs)
}

func testResume(t *testing.T, s eventstore.Store) {
	stream := newStream("order")
	var last eventstore.AppendResult
	for i := range 10 {
		last = mustAppend(t, s, stream, eventstore.Any, event("e", i))
	}
	waitVisible(t, s, last.Position)
	// Stop after the first batch of 4 and keep its checkpoint.
	first := newCollector()
	ctx, cancel := context.WithCancel(ctxT(t))
	err := s.Subscribe(ctx, eventstore.Start, eventstore.SubscribeOptions{BatchSize: 4}, func(ctx context.Context, b eventstore.Batch) error {
		_ = first.handle(ctx, b)
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("subscription ended with %v, want context.Canceled", err)
	}
	got, cp := first.snapshot()
	if len(got) != 4 || cp != got[3].Position {
		t.Fatalf("first batch: %d events, checkpoint %s", len(got), cp)
	}
	for i := 10; i < 15; i++ {
		mustAppend(t, s, stream, eventstore.Any, event("e", i))
	}
	c, _, _ := subscribe(t, s, cp, eventstore.SubscribeOptions{BatchSize: 4})
	c.waitFor(t, "the rest", func(evs []eventstore.RecordedEvent, _ eventstore.Position) bool { return len(evs) >= 11 })
	rest, _ := c.snapshot()
	all := append(got, rest...)
	if len(all) != 15 {
		t.Fatalf("delivered %d events over two subscriptions, want 15", len(all))
	}
	checkStreamOrder(t, all)
}

func testFilteredCheckpoints(t *testing.T, s eventstore.Store) {
	var head eventstore.Position
	for i := range 20 {
		head = mustAppend(t, s, newStream("noise"), eventstore.NoStream, event("noise", i)).Position
	}
	c, _, _ := subscribe(t, s, eventstore.Start, eventstore.SubscribeOptions{
		BatchSize: 5,
		Filter:    eventstore.Filter{StreamPrefixes: []string{"signal-"}},
	})
	// Nothing matches, yet the checkpoint moves past the skipped events.
	c.waitFor(t, "the checkpoint to pass the skipped events", func(evs []eventstore.RecordedEvent, cp eventstore.Position) bool {
		return !cp.Less(head)
	})
	sig := newStream("signal")
	mustAppend(t, s, sig, eventstore.NoStream, event("signal", 1))
	mustAppend(t, s, newStream("noise"), eventstore.NoStream, event("noise", 99))
	mustAppend(t, s, sig, eventstore.Exact(0), event("signal", 2))
	c.waitFor(t, "the matching events", func(evs []eventstore.RecordedEvent, _ eventstore.Position) bool { return len(evs) == 2 })
	evs, _ := c.snapshot()
	for _, e := range evs {
		if e.StreamID != sig {
			t.Fatalf("filtered subscription delivered %s", e.StreamID)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := 1; i < len(c.checkpoints); i++ {
		if c.checkpoints[i].Less(c.checkpoints[i-1]) {
			t.Fatalf("checkpoint moved back from %s to %s", c.checkpoints[i-1], c.checkpoints[i])
		}
	}
}

func testHandlerError(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, newStream("order"), eventstore.NoStream, event("e", 1))
	boom := errors.New("boom")
	err := s.Subscribe(ctxT(t), eventstore.Start, eventstore.SubscribeOptions{}, func(context.Context, eventstore.Batch) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("subscription ended with %v, want the handler's error", err)
	}
}

func testCancellation(t *testing.T, s eventstore.Store) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	stream := newStream("order")
	if _, err := s.Append(canceled, stream, eventstore.NoStream, event("e", 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("append with a canceled context: %v", err)
	}
	if _, err := s.ReadStream(ctxT(t), stream, eventstore.Forward, 0, 10); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("canceled append wrote something: %v", err)
	}
	if _, err := s.ReadAll(canceled, eventstore.Start, 10, eventstore.Filter{}); !errors.Is(err, context.Canceled) {
		t.Errorf("read all with a canceled context: %v", err)
	}
	if _, err := s.ReadStream(canceled, stream, eventstore.Forward, 0, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("read stream with a canceled context: %v", err)
	}

	// A caught-up subscription returns promptly once its context ends.
	c, cancelSub, done := subscribe(t, s, eventstore.Start, eventstore.SubscribeOptions{})
	mustAppend(t, s, stream, eventstore.NoStream, event("e", 2))
	c.waitFor(t, "the event", func(evs []eventstore.RecordedEvent, _ eventstore.Position) bool { return len(evs) == 1 })
	cancelSub()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("subscription ended with %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("subscription did not return within 5s of cancellation")
	}
}

func testLargePayloads(t *testing.T, s eventstore.Store) {
	big := make([]byte, 0, 4<<20)
	big = append(big, `{"blob":"`...)
	for len(big) < 4<<20 {
		big = append(big, "0123456789abcdef"...)
	}
	big = append(big, `"}`...)
	stream := newStream("big")
	e := event("big", nil)
	e.Data = big
	mustAppend(t, s, stream, eventstore.NoStream, e)

	many := make([]eventstore.EventData, 1000)
	for i := range many {
		many[i] = event("many", map[string]string{"pad": strings.Repeat("x", 500)})
	}
	res := mustAppend(t, s, stream, eventstore.Exact(0), many...)
	if res.Version != 1000 {
		t.Fatalf("version after 1001 events = %d", res.Version)
	}
	got := readStream(t, s, stream)
	if len(got) != 1001 || string(got[0].Data) != string(big) {
		t.Fatalf("read back %d events; first payload intact: %v", len(got), len(got) > 0 && string(got[0].Data) == string(big))
	}
	waitVisible(t, s, res.Position)
	all := readAll(t, s, 64, eventstore.Filter{})
	if len(all) != 1001 || string(all[0].Data) != string(big) {
		t.Fatalf("read all returned %d events", len(all))
	}
}
