package kurrentdbtest_test

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	"github.com/orders-reference/orders/eventstore/kurrentdb/kurrentdbtest"
)

// The tests in this file use only the v4 client, so they run unchanged
// against a real node (see the package doc). Each names the rule it checks
// and where the rule comes from.

// Expected revision rules (notes §3): a new stream accepts any and
// no_stream and refuses stream_exists and an exact revision; an existing
// stream accepts its current revision, stream_exists and any, and refuses
// a revision above the current one. Refused appends write nothing.
func TestExpectedRevision(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})

	for _, c := range []struct {
		name string
		exp  esdb.ExpectedRevision
		ok   bool
	}{
		{"any", esdb.Any{}, true},
		{"nostream", esdb.NoStream{}, true},
		{"exists", esdb.StreamExists{}, false},
		{"rev0", esdb.Revision(0), false},
	} {
		res, err := tg.append(tg.stream("new-"+c.name), c.exp, newEvent("Tested"))
		if c.ok {
			if err != nil || res.NextExpectedVersion != 0 {
				t.Fatalf("%s on a new stream = %+v, %v; want revision 0", c.name, res, err)
			}
			continue
		}
		wantWrongExpectedVersion(t, err, "no_stream")
	}

	s := tg.stream("existing")
	if res := tg.mustAppend(s, esdb.NoStream{}, newEvents(2, "Tested")...); res.NextExpectedVersion != 1 {
		t.Fatalf("first append: revision %d, want 1", res.NextExpectedVersion)
	}
	if res := tg.mustAppend(s, esdb.Revision(1), newEvent("Tested")); res.NextExpectedVersion != 2 {
		t.Fatalf("append at the current revision: revision %d, want 2", res.NextExpectedVersion)
	}
	for _, above := range []uint64{3, 5} {
		_, err := tg.append(s, esdb.Revision(above), newEvent("Tested"))
		wantWrongExpectedVersion(t, err, "2")
	}
	if res := tg.mustAppend(s, esdb.StreamExists{}, newEvent("Tested")); res.NextExpectedVersion != 3 {
		t.Fatalf("stream_exists: revision %d, want 3", res.NextExpectedVersion)
	}
	if res := tg.mustAppend(s, esdb.Any{}, newEvent("Tested")); res.NextExpectedVersion != 4 {
		t.Fatalf("any: revision %d, want 4", res.NextExpectedVersion)
	}
	_, err := tg.append(s, esdb.NoStream{}, newEvent("Tested"))
	wantWrongExpectedVersion(t, err, "4")
	_, err = tg.append(s, esdb.Revision(2), newEvent("Tested"))
	wantWrongExpectedVersion(t, err, "4")

	if n := len(tg.mustReadStream(s, esdb.ReadStreamOptions{From: esdb.Start{}}, 100)); n != 5 {
		t.Fatalf("stream has %d events, want 5: a refused append wrote", n)
	}
}

// Strong idempotency (notes §3): a retry with no_stream on an existing
// stream, or with an exact revision below the current one, whose ids all
// equal the events from revision+1 on succeeds with the original revision
// and position and writes nothing; any other id makes it a wrong expected
// version.
func TestStrongIdempotency(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	s := tg.stream("strong")
	batch := newEvents(3, "Tested")
	first := tg.mustAppend(s, esdb.NoStream{}, batch...)

	again := tg.mustAppend(s, esdb.NoStream{}, batch...)
	if *again != *first {
		t.Fatalf("no_stream retry = %+v, want the original %+v", again, first)
	}
	tail := tg.mustAppend(s, esdb.Revision(0), batch[1:]...)
	if *tail != *first {
		t.Fatalf("retry of the tail from revision 0 = %+v, want the original %+v", tail, first)
	}
	if head := tg.mustAppend(s, esdb.NoStream{}, batch[0]); head.NextExpectedVersion != 0 {
		t.Fatalf("retry of the first event = revision %d, want 0", head.NextExpectedVersion)
	}

	_, err := tg.append(s, esdb.NoStream{}, newEvent("Tested"))
	wantWrongExpectedVersion(t, err, "2")
	_, err = tg.append(s, esdb.Revision(0), batch[1], newEvent("Tested"))
	wantWrongExpectedVersion(t, err, "2")
	_, err = tg.append(s, esdb.Revision(0), append(batch[1:], newEvent("Tested"))...)
	wantWrongExpectedVersion(t, err, "2")

	got := tg.mustReadStream(s, esdb.ReadStreamOptions{From: esdb.Start{}}, 100)
	if !equalIDs(idsOf(got), idsOfData(batch)) {
		t.Fatalf("stream ids = %v, want only the first batch %v", idsOf(got), idsOfData(batch))
	}
}

// Weak idempotency (notes §3): with any or stream_exists, a retry of
// recently committed ids in the same stream succeeds with the original
// revision and position and writes nothing; the same id in another stream
// is written again.
func TestWeakIdempotency(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	s := tg.stream("weak")
	e := newEvent("Tested")
	first := tg.mustAppend(s, esdb.Any{}, e)
	if again := tg.mustAppend(s, esdb.Any{}, e); *again != *first {
		t.Fatalf("any retry = %+v, want the original %+v", again, first)
	}
	if again := tg.mustAppend(s, esdb.StreamExists{}, e); *again != *first {
		t.Fatalf("stream_exists retry = %+v, want the original %+v", again, first)
	}
	batch := newEvents(2, "Tested")
	b := tg.mustAppend(s, esdb.Any{}, batch...)
	if again := tg.mustAppend(s, esdb.Any{}, batch...); *again != *b {
		t.Fatalf("any retry of a batch = %+v, want the original %+v", again, b)
	}
	if n := len(tg.mustReadStream(s, esdb.ReadStreamOptions{From: esdb.Start{}}, 100)); n != 3 {
		t.Fatalf("stream has %d events, want 3: a retry was written", n)
	}

	other := tg.stream("weak-other")
	res := tg.mustAppend(other, esdb.Any{}, e)
	if res.NextExpectedVersion != 0 || res.CommitPosition <= b.CommitPosition {
		t.Fatalf("same id in another stream = %+v, want a new event at revision 0 after %d", res, b.CommitPosition)
	}
	got := tg.mustReadStream(other, esdb.ReadStreamOptions{From: esdb.Start{}}, 100)
	if len(got) != 1 || got[0].EventID != e.EventID {
		t.Fatalf("other stream = %v, want the one event %s", idsOf(got), e.EventID)
	}
}

// No global event-id uniqueness (notes §3): appending at the next exact
// revision with an old id writes it again, and so does no_stream on
// another stream.
func TestEventIDsAreNotUnique(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	s := tg.stream("dup")
	e := newEvent("Tested")
	tg.mustAppend(s, esdb.NoStream{}, e)
	if res := tg.mustAppend(s, esdb.Revision(0), e); res.NextExpectedVersion != 1 {
		t.Fatalf("old id at the next revision: revision %d, want 1 (written again)", res.NextExpectedVersion)
	}
	tg.mustAppend(tg.stream("dup2"), esdb.NoStream{}, e)

	got := tg.mustReadStream(s, esdb.ReadStreamOptions{From: esdb.Start{}}, 100)
	if len(got) != 2 || got[0].EventID != e.EventID || got[1].EventID != e.EventID {
		t.Fatalf("stream = %v, want the id %s twice", idsOf(got), e.EventID)
	}
	all := tg.own(tg.mustReadAll(esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 200))
	n := 0
	for _, ev := range all {
		if ev.EventID == e.EventID {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("$all holds the id %d times, want 3", n)
	}
}

// $all positions (notes §3): commit == prepare for every event, strictly
// increasing and not contiguous; the append reply carries the position of
// the last event; reading forwards from P includes P, reading backwards
// from P excludes it, a subscription from P starts after P.
func TestPositions(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	s := tg.stream("pos")
	r1 := tg.mustAppend(s, esdb.NoStream{}, newEvent("Tested"))
	r2 := tg.mustAppend(s, esdb.Revision(0), newEvents(2, "Tested")...)
	events := tg.mustReadStream(s, esdb.ReadStreamOptions{From: esdb.Start{}}, 10)
	if len(events) != 3 {
		t.Fatalf("read %d events, want 3", len(events))
	}
	for i, e := range events {
		if e.Position.Commit != e.Position.Prepare {
			t.Fatalf("event %d at %+v: commit != prepare", i, e.Position)
		}
		if i > 0 && e.Position.Commit <= events[i-1].Position.Commit+1 {
			t.Fatalf("event %d at %d right after %d: positions must increase by a record's size", i, e.Position.Commit, events[i-1].Position.Commit)
		}
	}
	if r1.CommitPosition != events[0].Position.Commit || r1.PreparePosition != events[0].Position.Prepare {
		t.Fatalf("first append at %d/%d, want the event's %+v", r1.CommitPosition, r1.PreparePosition, events[0].Position)
	}
	if r2.CommitPosition != events[2].Position.Commit {
		t.Fatalf("second append at %d, want its last event's %d", r2.CommitPosition, events[2].Position.Commit)
	}

	mid := events[1].Position
	forward := tg.own(tg.mustReadAll(esdb.ReadAllOptions{From: mid}, 100))
	if len(forward) != 2 || forward[0].EventID != events[1].EventID {
		t.Fatalf("$all forwards from %+v = %v, want %v first (inclusive)", mid, idsOf(forward), events[1].EventID)
	}
	backward := tg.own(tg.mustReadAll(esdb.ReadAllOptions{Direction: esdb.Backwards, From: mid}, 100))
	if len(backward) == 0 || backward[0].EventID != events[0].EventID {
		t.Fatalf("$all backwards from %+v = %v, want %v first (exclusive)", mid, idsOf(backward), events[0].EventID)
	}
	latest := tg.own(tg.mustReadAll(esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 100))
	if len(latest) < 3 || latest[0].EventID != events[2].EventID || latest[2].EventID != events[0].EventID {
		t.Fatalf("$all backwards from the end = %v, want the stream reversed", idsOf(latest))
	}

	sub := tg.subscribeToAll(esdb.SubscribeToAllOptions{From: mid})
	if ev := sub.next(tg.ownEvent); ev.EventAppeared.Event.EventID != events[2].EventID {
		t.Fatalf("subscription from %+v starts at %v, want %v (exclusive)", mid, ev.EventAppeared.Event.EventID, events[2].EventID)
	}
}

// Stream reads: forwards and backwards from a revision, the start or the
// end, bounded by the count; a stream without events is not found.
func TestReadStream(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	s := tg.stream("read")
	tg.mustAppend(s, esdb.NoStream{}, newEvents(5, "Tested")...)
	revisions := func(events []*esdb.RecordedEvent) string {
		var b strings.Builder
		for _, e := range events {
			b.WriteString(strconv.FormatUint(e.EventNumber, 10))
		}
		return b.String()
	}
	for _, c := range []struct {
		name  string
		opts  esdb.ReadStreamOptions
		count uint64
		want  string
	}{
		{"forwards from 2", esdb.ReadStreamOptions{From: esdb.Revision(2)}, 2, "23"},
		{"forwards from the start", esdb.ReadStreamOptions{From: esdb.Start{}}, 100, "01234"},
		{"forwards from the end", esdb.ReadStreamOptions{From: esdb.End{}}, 100, ""},
		{"backwards from the end", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 2, "43"},
		{"backwards from 1", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.Revision(1)}, 100, "10"},
	} {
		if got := revisions(tg.mustReadStream(s, c.opts, c.count)); got != c.want {
			t.Errorf("%s: revisions %q, want %q", c.name, got, c.want)
		}
	}
	_, err := tg.readStream(tg.stream("missing"), esdb.ReadStreamOptions{From: esdb.Start{}}, 10)
	if esdbCode(err) != esdb.ErrorCodeResourceNotFound {
		t.Fatalf("reading a missing stream: %v, want not found", err)
	}
}

// Every read event carries its id, stream, revision, type, content type,
// data, user metadata and "created" (notes §2: 100-ns ticks since the
// Unix epoch; the client dies without it).
func TestReadEventFields(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	s := tg.stream("fields")
	before := time.Now().Add(-time.Second)
	e := esdb.EventData{EventID: uuid.New(), EventType: "FieldsTested", ContentType: esdb.ContentTypeBinary,
		Data: []byte{0, 1, 2}, Metadata: []byte(`{"by":"test"}`)}
	tg.mustAppend(s, esdb.NoStream{}, e)
	after := time.Now().Add(time.Second)

	got := tg.mustReadStream(s, esdb.ReadStreamOptions{From: esdb.Start{}}, 1)
	if len(got) != 1 {
		t.Fatalf("read %d events, want 1", len(got))
	}
	ev := got[0]
	if ev.EventID != e.EventID || ev.StreamID != s || ev.EventNumber != 0 || ev.EventType != e.EventType ||
		ev.ContentType != "application/octet-stream" || !bytes.Equal(ev.Data, e.Data) || !bytes.Equal(ev.UserMetadata, e.Metadata) {
		t.Fatalf("read %+v, want the appended %+v", ev, e)
	}
	if ev.CreatedDate.Before(before) || ev.CreatedDate.After(after) {
		t.Fatalf("created %v, want between %v and %v", ev.CreatedDate, before, after)
	}
	if ev.SystemMetadata["type"] != e.EventType || ev.SystemMetadata["content-type"] == "" || ev.SystemMetadata["created"] == "" {
		t.Fatalf("system metadata %v lacks type, content-type or created", ev.SystemMetadata)
	}
}

// System events are visible in $all (notes §3): the stream metadata the
// client writes lands in "$$" + stream with type "$metadata", and the node
// has "$" streams of its own.
func TestAllShowsSystemEvents(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	s := tg.stream("meta")
	var meta esdb.StreamMetadata
	meta.SetMaxCount(10)
	res, err := tg.client.SetStreamMetadata(tg.ctx(), s, esdb.AppendToStreamOptions{}, meta)
	if err != nil {
		t.Fatalf("set stream metadata: %v", err)
	}
	pos := esdb.Position{Commit: res.CommitPosition, Prepare: res.PreparePosition}
	got := tg.own(tg.mustReadAll(esdb.ReadAllOptions{From: pos}, 10))
	if len(got) == 0 || got[0].StreamID != "$$"+s || got[0].EventType != "$metadata" {
		t.Fatalf("$all at the metadata write = %v, want a $metadata event in $$%s", got, s)
	}

	system := map[string]bool{}
	for _, e := range tg.mustReadAll(esdb.ReadAllOptions{From: esdb.Start{}}, 1000) {
		if strings.HasPrefix(e.StreamID, "$") && !strings.Contains(e.StreamID, tg.ns) {
			system[e.StreamID] = true
		}
	}
	if len(system) == 0 {
		t.Fatal("$all from the start shows no system stream of the node")
	}
	if tg.double != nil && (!system["$settings"] || !system["$scavenges"]) {
		t.Fatalf("the double's system streams in $all = %v, want $settings and $scavenges", system)
	}
}

// Subscription order (notes §3): confirmation (SubscribeToAll fails
// without it), then the catch-up events, then caught_up, then live events.
func TestSubscribeToAllOrder(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	s := tg.stream("order")
	start := tg.mustAppend(s, esdb.NoStream{}, newEvent("Tested"))
	catchUp := newEvents(3, "Tested")
	tg.mustAppend(s, esdb.Revision(0), catchUp...)

	sub := tg.subscribeToAll(esdb.SubscribeToAllOptions{From: esdb.Position{Commit: start.CommitPosition, Prepare: start.PreparePosition}})
	if sub.sub.Id() == "" {
		t.Fatal("subscription confirmed without an id")
	}
	for _, want := range catchUp {
		ev := sub.next(tg.ownOrControl)
		if ev.EventAppeared == nil || ev.EventAppeared.Event.EventID != want.EventID {
			t.Fatalf("catch-up got %+v, want event %s", ev, want.EventID)
		}
	}
	if ev := sub.next(tg.ownOrControl); ev.CaughtUp == nil {
		t.Fatalf("after catch-up got %+v, want caught_up", ev)
	}
	live := newEvents(2, "Tested")
	tg.mustAppend(s, esdb.Revision(3), live...)
	for _, want := range live {
		if ev := sub.next(tg.ownEvent); ev.EventAppeared.Event.EventID != want.EventID {
			t.Fatalf("live got %s, want %s", ev.EventAppeared.Event.EventID, want.EventID)
		}
	}
}

// A stream subscription from revision r starts after r, catches up, then
// goes live.
func TestSubscribeToStream(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	s := tg.stream("sub")
	events := newEvents(3, "Tested")
	tg.mustAppend(s, esdb.NoStream{}, events...)
	sub := tg.subscribeToStream(s, esdb.SubscribeToStreamOptions{From: esdb.Revision(0)})
	for _, want := range events[1:] {
		ev := sub.next(func(*esdb.SubscriptionEvent) bool { return true })
		if ev.EventAppeared == nil || ev.EventAppeared.Event.EventID != want.EventID {
			t.Fatalf("catch-up got %+v, want event %s", ev, want.EventID)
		}
	}
	if ev := sub.next(func(e *esdb.SubscriptionEvent) bool { return e.CheckPointReached == nil }); ev.CaughtUp == nil {
		t.Fatalf("after catch-up got %+v, want caught_up", ev)
	}
	tg.mustAppend(tg.stream("sub-other"), esdb.NoStream{}, newEvent("Tested"))
	live := newEvent("Tested")
	tg.mustAppend(s, esdb.Revision(2), live)
	if ev := sub.next(func(e *esdb.SubscriptionEvent) bool { return e.EventAppeared != nil }); ev.EventAppeared.Event.EventID != live.EventID ||
		ev.EventAppeared.Event.EventNumber != 3 {
		t.Fatalf("live got %+v, want %s at revision 3", ev.EventAppeared.Event, live.EventID)
	}

	ahead := tg.subscribeToStream(s, esdb.SubscribeToStreamOptions{From: esdb.Revision(4)})
	if ev := ahead.next(func(e *esdb.SubscriptionEvent) bool { return e.CheckPointReached == nil }); ev.CaughtUp == nil {
		t.Fatalf("subscription from past the end got %+v, want caught_up", ev)
	}
	tg.mustAppend(s, esdb.Revision(3), newEvents(2, "Tested")...)
	if ev := ahead.next(func(e *esdb.SubscriptionEvent) bool { return e.EventAppeared != nil }); ev.EventAppeared.Event.EventNumber != 5 {
		t.Fatalf("subscription from revision 4 got revision %d first, want 5", ev.EventAppeared.Event.EventNumber)
	}
}

// Filtered subscriptions (notes §2, §3): by stream-name prefix, event-type
// prefix or regex; a checkpoint comes at least every window × multiplier
// considered events, at positions that never go back and never pass an
// event not yet delivered; resuming from a checkpoint loses nothing.
func TestFilteredSubscription(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	match, other := tg.stream("match"), tg.stream("other")
	start := tg.mustAppend(other, esdb.NoStream{}, newEvent("Tested"))
	from := esdb.Position{Commit: start.CommitPosition, Prepare: start.PreparePosition}
	tg.mustAppend(other, esdb.Revision(0), newEvents(9, "Tested")...)
	m := tg.mustAppend(match, esdb.NoStream{}, newEvent("Tested"))
	opts := esdb.SubscribeToAllOptions{
		From:               from,
		Filter:             &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{match}},
		MaxSearchWindow:    2,
		CheckpointInterval: 1,
	}

	sub := tg.subscribeToAll(opts)
	var checkpoints []esdb.Position
	all := func(*esdb.SubscriptionEvent) bool { return true }
	for {
		ev := sub.next(all)
		if ev.CheckPointReached != nil {
			checkpoints = append(checkpoints, *ev.CheckPointReached)
			continue
		}
		if ev.EventAppeared == nil {
			t.Fatalf("before the matching event got %+v", ev)
		}
		if got := ev.EventAppeared.Event; got.StreamID != match || got.Position.Commit != m.CommitPosition {
			t.Fatalf("filtered subscription sent %s@%d, want %s@%d", got.StreamID, got.Position.Commit, match, m.CommitPosition)
		}
		break
	}
	if len(checkpoints) == 0 {
		t.Fatal("no checkpoint across 9 skipped events with window 2 × multiplier 1")
	}
	for i, c := range checkpoints {
		if c.Commit <= from.Commit || c.Commit > m.CommitPosition || (i > 0 && c.Commit < checkpoints[i-1].Commit) {
			t.Fatalf("checkpoints %v: want non-decreasing positions after %d and not past %d", checkpoints, from.Commit, m.CommitPosition)
		}
	}
	for ev := sub.next(all); ev.CaughtUp == nil; ev = sub.next(all) {
		if ev.EventAppeared != nil {
			t.Fatalf("unexpected event %s before caught_up", ev.EventAppeared.Event.StreamID)
		}
	}
	tg.mustAppend(other, esdb.Revision(9), newEvents(4, "Tested")...)
	live := newEvent("Tested")
	tg.mustAppend(match, esdb.Revision(0), live)
	if ev := sub.next(func(e *esdb.SubscriptionEvent) bool { return e.EventAppeared != nil }); ev.EventAppeared.Event.EventID != live.EventID {
		t.Fatalf("live filtered event %s in %s, want %s", ev.EventAppeared.Event.EventID, ev.EventAppeared.Event.StreamID, live.EventID)
	}

	resume := opts
	resume.From = checkpoints[len(checkpoints)-1]
	again := tg.subscribeToAll(resume)
	if ev := again.next(func(e *esdb.SubscriptionEvent) bool { return e.EventAppeared != nil }); ev.EventAppeared.Event.Position.Commit != m.CommitPosition {
		t.Fatalf("resumed from checkpoint %+v at %d, want the first match at %d", resume.From, ev.EventAppeared.Event.Position.Commit, m.CommitPosition)
	}
}

// Event-type filters match by prefix (notes §3) and regex filters by
// regular expression; both skip every other event.
func TestFilterKinds(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	start := tg.mustAppend(tg.stream("a"), esdb.NoStream{}, newEvent(tg.ns+"-Beta"))
	from := esdb.Position{Commit: start.CommitPosition, Prepare: start.PreparePosition}
	alpha1, beta, alpha2 := newEvent(tg.ns+"-Alpha1"), newEvent(tg.ns+"-Beta"), newEvent(tg.ns+"-Alpha2")
	tg.mustAppend(tg.stream("a"), esdb.Revision(0), alpha1, beta)
	tg.mustAppend(tg.stream("b"), esdb.NoStream{}, alpha2)
	cEvent := newEvent("Tested")
	tg.mustAppend(tg.stream("c"), esdb.NoStream{}, cEvent)

	for _, c := range []struct {
		name   string
		filter *esdb.SubscriptionFilter
		want   []uuid.UUID
	}{
		{"event type prefix", &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: []string{tg.ns + "-Al"}},
			[]uuid.UUID{alpha1.EventID, alpha2.EventID}},
		{"stream regex", &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Regex: "^" + tg.ns + "-(b|c)$"},
			[]uuid.UUID{alpha2.EventID, cEvent.EventID}},
	} {
		sub := tg.subscribeToAll(esdb.SubscribeToAllOptions{From: from, Filter: c.filter})
		var got []uuid.UUID
		for ev := sub.next(func(e *esdb.SubscriptionEvent) bool { return e.CheckPointReached == nil }); ev.CaughtUp == nil; ev = sub.next(func(e *esdb.SubscriptionEvent) bool { return e.CheckPointReached == nil }) {
			got = append(got, ev.EventAppeared.Event.EventID)
		}
		if !equalIDs(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

// An append larger than the max append size fails with InvalidArgument
// and writes nothing (notes §3: 1 MiB by default up to v25.0; set
// KURRENTDB_MAX_APPEND_SIZE for other nodes).
func TestAppendSizeLimit(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	limit := kurrentdbtest.DefaultMaxAppendSize
	if v := os.Getenv(maxAppendSizeEnv); v != "" && tg.double == nil {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", maxAppendSizeEnv, v, err)
		}
		limit = n
	}
	s := tg.stream("size")
	big := esdb.EventData{EventID: uuid.New(), EventType: "Big", ContentType: esdb.ContentTypeBinary, Data: make([]byte, limit+1)}
	_, err := tg.append(s, esdb.Any{}, big)
	if grpcCode(err) != codes.InvalidArgument {
		t.Fatalf("append of %d bytes: %v, want InvalidArgument", limit+1, err)
	}
	if _, err := tg.readStream(s, esdb.ReadStreamOptions{From: esdb.Start{}}, 1); esdbCode(err) != esdb.ErrorCodeResourceNotFound {
		t.Fatalf("after a refused append the stream reads %v, want not found", err)
	}
	half := esdb.EventData{EventID: uuid.New(), EventType: "Half", ContentType: esdb.ContentTypeBinary, Data: make([]byte, limit/2)}
	tg.mustAppend(s, esdb.NoStream{}, half)
}

// Cancelling the context of a call or a subscription surfaces as a gRPC
// Canceled status (notes §2), for the adapter to map.
func TestCancellation(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	ctx, cancel := context.WithCancel(tg.ctx())
	sub, err := tg.client.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.End{}})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer sub.Close()
	cancel()
	ev := sub.Recv()
	for ev.SubscriptionDropped == nil { // caught_up may already be on its way
		ev = sub.Recv()
	}
	if ev.SubscriptionDropped == nil || grpcCode(ev.SubscriptionDropped.Error) != codes.Canceled {
		t.Fatalf("cancelled subscription got %+v, want a drop with Canceled", ev)
	}
	_, err = tg.client.AppendToStream(ctx, tg.stream("cancel"), esdb.AppendToStreamOptions{}, newEvent("Tested"))
	if grpcCode(err) != codes.Canceled {
		t.Fatalf("append with a cancelled context: %v, want Canceled", err)
	}
}

// Tombstoning deletes a stream for ever: reads and appends fail with
// stream deleted (notes §3), and the $streamDeleted record shows in $all.
// A tombstone with a wrong expected revision fails and deletes nothing.
func TestTombstone(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	s := tg.stream("gone")
	tg.mustAppend(s, esdb.NoStream{}, newEvents(2, "Tested")...)
	if _, err := tg.client.TombstoneStream(tg.ctx(), s, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Revision(5)}); err == nil {
		t.Fatal("tombstone at revision 5 of a stream at 1 succeeded")
	}
	if n := len(tg.mustReadStream(s, esdb.ReadStreamOptions{From: esdb.Start{}}, 10)); n != 2 {
		t.Fatalf("after a refused tombstone the stream has %d events, want 2", n)
	}
	res, err := tg.client.TombstoneStream(tg.ctx(), s, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Revision(1)})
	if err != nil {
		t.Fatalf("tombstone: %v", err)
	}
	if _, err := tg.readStream(s, esdb.ReadStreamOptions{From: esdb.Start{}}, 10); esdbCode(err) != esdb.ErrorCodeStreamDeleted {
		t.Fatalf("reading a tombstoned stream: %v, want stream deleted", err)
	}
	if _, err := tg.append(s, esdb.Any{}, newEvent("Tested")); esdbCode(err) != esdb.ErrorCodeStreamDeleted {
		t.Fatalf("appending to a tombstoned stream: %v, want stream deleted", err)
	}
	got := tg.own(tg.mustReadAll(esdb.ReadAllOptions{From: res.Position}, 10))
	if len(got) == 0 || got[0].StreamID != s || got[0].EventType != "$streamDeleted" {
		t.Fatalf("$all at the tombstone = %v, want a $streamDeleted record of %s", got, s)
	}
}

// esdb+discover:// reads the gossip first (notes §2) and then works as a
// single-node connection.
func TestDiscovery(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	discover := strings.Replace(tg.url, "esdb://", "esdb+discover://", 1)
	c := connect(t, discover)
	s := tg.stream("discover")
	if _, err := c.AppendToStream(tg.ctx(), s, esdb.AppendToStreamOptions{}, newEvent("Tested")); err != nil {
		t.Fatalf("append through %s: %v", discover, err)
	}
	if n := len(tg.mustReadStream(s, esdb.ReadStreamOptions{From: esdb.Start{}}, 10)); n != 1 {
		t.Fatalf("stream has %d events, want 1", n)
	}
}

// The server version parses as numeric major.minor.patch (notes §2).
func TestServerVersion(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{ServerVersion: "23.10.4"})
	tg.mustAppend(tg.stream("version"), esdb.Any{}, newEvent("Tested")) // connects
	v, err := tg.client.GetServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if v.Major < 20 {
		t.Fatalf("server version %+v, want a major version of at least 20", v)
	}
	if tg.double != nil && (v.Major != 23 || v.Minor != 10 || v.Patch != 4) {
		t.Fatalf("server version %+v, want the configured 23.10.4", v)
	}
}

// A node that requires credentials refuses a call with a wrong password
// (Unauthenticated, which the client reports as ErrorCodeUnauthenticated)
// and serves one with the right one. Against a real node, KURRENTDB_URL
// must carry credentials (and TLS) for the test to run.
func TestWrongPasswordRefused(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, kurrentdbtest.Options{TLS: true, Username: "admin", Password: "s3cret-conf"})
	u, err := url.Parse(tg.url)
	if err != nil {
		t.Fatal(err)
	}
	password, ok := u.User.Password()
	if !ok || password == "" {
		t.Skip(urlEnv + " has no credentials")
	}
	u.User = url.UserPassword(u.User.Username(), password+"-wrong")
	wrong := connect(t, u.String())
	_, err = wrong.AppendToStream(tg.ctx(), tg.stream("creds"), esdb.AppendToStreamOptions{}, newEvent("Tested"))
	if esdbCode(err) != esdb.ErrorCodeUnauthenticated && grpcCode(err) != codes.Unauthenticated {
		t.Fatalf("append with a wrong password: %v, want unauthenticated", err)
	}
	tg.mustAppend(tg.stream("creds"), esdb.Any{}, newEvent("Tested"))
}
