package kurrentdbtest_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"

	"github.com/orders-reference/orders/eventstore/kurrentdb/kurrentdbtest"
)

// The tests in this file drive the double's fault injection through the
// v4 client; they skip against a real node.

// DropSubscriptions ends every open subscription with Unavailable; a new
// subscription works.
func TestDropSubscriptions(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	d := tg.doubleOnly()
	toAll := tg.subscribeToAll(esdb.SubscribeToAllOptions{From: esdb.End{}})
	toStream := tg.subscribeToStream(tg.stream("drop"), esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	for _, sub := range []*subscriber{toAll, toStream} {
		if ev := sub.next(func(*esdb.SubscriptionEvent) bool { return true }); ev.CaughtUp == nil {
			t.Fatalf("got %+v, want caught_up", ev)
		}
	}
	d.DropSubscriptions()
	for _, sub := range []*subscriber{toAll, toStream} {
		if err := sub.dropped(); grpcCode(err) != codes.Unavailable {
			t.Fatalf("dropped subscription ended with %v, want Unavailable", err)
		}
	}

	again := tg.subscribeToAll(esdb.SubscribeToAllOptions{From: esdb.End{}})
	e := newEvent("Tested")
	tg.mustAppend(tg.stream("drop"), esdb.Any{}, e)
	if ev := again.next(tg.ownEvent); ev.EventAppeared.Event.EventID != e.EventID {
		t.Fatalf("new subscription got %s, want %s", ev.EventAppeared.Event.EventID, e.EventID)
	}
}

// FailNext fails the next n Streams calls with the given code and writes
// nothing; the client reconnects after Unavailable and the call after them
// succeeds.
func TestFailNext(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	d := tg.doubleOnly()
	s := tg.stream("fail")

	d.FailNext(1, codes.Unavailable)
	if _, err := tg.append(s, esdb.Any{}, newEvent("Tested")); esdbCode(err) != esdb.ErrorUnavailable {
		t.Fatalf("append under FailNext(Unavailable): %v, want unavailable", err)
	}
	tg.mustAppend(s, esdb.NoStream{}, newEvent("Tested"))

	d.FailNext(2, codes.Aborted)
	for i := range 2 {
		if _, err := tg.readStream(s, esdb.ReadStreamOptions{From: esdb.Start{}}, 10); esdbCode(err) != esdb.ErrorAborted {
			t.Fatalf("read %d under FailNext(2, Aborted): %v, want aborted", i, err)
		}
	}
	if n := len(tg.mustReadStream(s, esdb.ReadStreamOptions{From: esdb.Start{}}, 10)); n != 1 {
		t.Fatalf("stream has %d events, want 1: a failed append wrote", n)
	}
}

// RedirectToLeader answers NotLeader with the leader's endpoint; the client
// reports it once, reconnects to the leader and the retry lands there.
// Gossip names the leader too, so esdb+discover:// goes straight to it.
func TestRedirectToLeader(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	follower := tg.doubleOnly()
	leader := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	follower.RedirectToLeader(leader.Addr())
	s := tg.stream("redirect")

	if _, err := tg.append(s, esdb.Any{}, newEvent("Tested")); esdbCode(err) != esdb.ErrorCodeNotLeader {
		t.Fatalf("append on a follower: %v, want not leader", err)
	}
	tg.mustAppend(s, esdb.NoStream{}, newEvent("Tested"))

	discover := connect(t, strings.Replace(follower.URL(), "esdb://", "esdb+discover://", 1))
	if _, err := discover.AppendToStream(tg.ctx(), s, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(0)}, newEvent("Tested")); err != nil {
		t.Fatalf("append through gossip: %v", err)
	}

	onLeader := &target{t: t, client: connect(t, leader.URL()), ns: tg.ns}
	if n := len(onLeader.mustReadStream(s, esdb.ReadStreamOptions{From: esdb.Start{}}, 10)); n != 2 {
		t.Fatalf("leader has %d events, want both appends", n)
	}
	follower.RedirectToLeader("")
	onFollower := &target{t: t, client: connect(t, follower.URL()), ns: tg.ns}
	if _, err := onFollower.readStream(s, esdb.ReadStreamOptions{From: esdb.Start{}}, 10); esdbCode(err) != esdb.ErrorCodeResourceNotFound {
		t.Fatalf("follower read: %v, want not found: nothing was written there", err)
	}
}

// Restart drops connections and subscriptions but keeps the log and the
// strong idempotency; it loses the weak-idempotency cache (notes §3).
func TestRestart(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	d := tg.doubleOnly()
	weak, strong := tg.stream("weak"), tg.stream("strong")
	e := newEvent("Tested")
	tg.mustAppend(weak, esdb.Any{}, e)
	batch := newEvents(2, "Tested")
	first := tg.mustAppend(strong, esdb.NoStream{}, batch...)
	sub := tg.subscribeToAll(esdb.SubscribeToAllOptions{From: esdb.End{}})
	if ev := sub.next(func(*esdb.SubscriptionEvent) bool { return true }); ev.CaughtUp == nil {
		t.Fatalf("got %+v, want caught_up", ev)
	}

	if err := d.Restart(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if err := sub.dropped(); err == nil {
		t.Fatal("subscription survived the restart")
	}
	if again := tg.mustAppend(strong, esdb.NoStream{}, batch...); *again != *first {
		t.Fatalf("strong retry after restart = %+v, want the original %+v", again, first)
	}
	if res := tg.mustAppend(weak, esdb.Any{}, e); res.NextExpectedVersion != 1 {
		t.Fatalf("weak retry after restart: revision %d, want 1 (the cache is lost)", res.NextExpectedVersion)
	}
	if got := tg.mustReadStream(weak, esdb.ReadStreamOptions{From: esdb.Start{}}, 10); len(got) != 2 {
		t.Fatalf("weak stream has %d events after restart, want 2", len(got))
	}

	d.Close()
	if err := d.Restart(); !errors.Is(err, kurrentdbtest.ErrClosed) {
		t.Fatalf("restart after close: %v, want ErrClosed", err)
	}
}

// Without the restart, the weak retry of TestRestart is idempotent: the
// control that shows the restart made the difference.
func TestWeakRetryWithoutRestart(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	tg.doubleOnly()
	e := newEvent("Tested")
	first := tg.mustAppend(tg.stream("weak"), esdb.Any{}, e)
	if again := tg.mustAppend(tg.stream("weak"), esdb.Any{}, e); *again != *first {
		t.Fatalf("weak retry = %+v, want the original %+v", again, first)
	}
}

// A small cache forgets old ids: a retry of an evicted id is written again.
func TestRecentIDsEviction(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{RecentIDs: 2})
	tg.doubleOnly()
	s := tg.stream("evict")
	old := newEvent("Tested")
	tg.mustAppend(s, esdb.Any{}, old)
	tg.mustAppend(s, esdb.Any{}, newEvents(2, "Tested")...)
	if res := tg.mustAppend(s, esdb.Any{}, old); res.NextExpectedVersion != 3 {
		t.Fatalf("retry of an evicted id: revision %d, want 3 (written again)", res.NextExpectedVersion)
	}
}

// With TLS and credentials, the client connects with tlsVerifyCert=false
// and the configured user; a wrong password is Unauthenticated.
func TestTLSAndCredentials(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	tg.doubleOnly()
	d := kurrentdbtest.Start(t, kurrentdbtest.Options{TLS: true, Username: "admin", Password: "changeit"})
	if !strings.Contains(d.URL(), "tls=true") || !strings.HasPrefix(d.URL(), "esdb://admin:changeit@") {
		t.Fatalf("URL %q, want credentials and tls=true", d.URL())
	}
	secure := &target{t: t, client: connect(t, d.URL()), ns: tg.ns}
	secure.mustAppend(tg.stream("tls"), esdb.NoStream{}, newEvent("Tested"))

	wrong := &target{t: t, client: connect(t, strings.Replace(d.URL(), "changeit", "wrong", 1)), ns: tg.ns}
	if _, err := wrong.append(tg.stream("tls"), esdb.Any{}, newEvent("Tested")); esdbCode(err) != esdb.ErrorCodeUnauthenticated {
		t.Fatalf("append with a wrong password: %v, want unauthenticated", err)
	}
	plain := &target{t: t, client: connect(t, strings.Replace(d.URL(), "tls=true", "tls=false", 1)+"&maxDiscoverAttempts=1"), ns: tg.ns}
	if _, err := plain.append(tg.stream("tls"), esdb.Any{}, newEvent("Tested")); err == nil {
		t.Fatal("a plaintext client talked to the TLS double")
	}
}

// Options are checked: credentials need TLS, the version must be numeric.
func TestListenRejectsBadOptions(t *testing.T) {
	for _, o := range []kurrentdbtest.Options{
		{Username: "admin", Password: "changeit"},
		{ServerVersion: "24.10"},
		{ServerVersion: "v24.10.0"},
		{MaxAppendSize: -1},
	} {
		if s, err := kurrentdbtest.Listen("127.0.0.1:0", o); err == nil {
			s.Close()
			t.Errorf("Listen(%+v) succeeded, want an error", o)
		}
	}
}
