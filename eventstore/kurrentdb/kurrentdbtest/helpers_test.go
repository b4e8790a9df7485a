package kurrentdbtest_test

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/orders-reference/orders/eventstore/kurrentdb/kurrentdbtest"
)

// urlEnv names the environment variable with a real node's connection
// string; when it is set the conformance tests run against that node.
const urlEnv = "KURRENTDB_URL"

// maxAppendSizeEnv overrides the max append size expected of a real node
// (1 MiB up to v25.0, 256 MiB from v25.1).
const maxAppendSizeEnv = "KURRENTDB_MAX_APPEND_SIZE"

// callTimeout bounds every call and subscription of a test.
const callTimeout = 10 * time.Second

// target is what a conformance test runs against: a real node when
// KURRENTDB_URL is set, else a fresh double. Every stream a test uses is
// in its own namespace, so tests against a shared node do not meet.
type target struct {
	t      *testing.T
	url    string
	double *kurrentdbtest.Server // nil against a real node
	client *esdb.Client
	ns     string
}

func newTarget(t *testing.T, opts kurrentdbtest.Options) *target {
	t.Helper()
	tg := &target{t: t, ns: "conf" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]}
	if u := os.Getenv(urlEnv); u != "" {
		tg.url = u
	} else {
		tg.double = kurrentdbtest.Start(t, opts)
		tg.url = tg.double.URL()
	}
	tg.client = connect(t, tg.url)
	return tg
}

// doubleOnly skips a test of the double's fault injection on a real node
// and returns the double.
func (tg *target) doubleOnly() *kurrentdbtest.Server {
	tg.t.Helper()
	if tg.double == nil {
		tg.t.Skip("fault injection needs the double; " + urlEnv + " is set")
	}
	return tg.double
}

// connect returns a v4 client for url, closed when t ends.
func connect(t *testing.T, url string) *esdb.Client {
	t.Helper()
	cfg, err := esdb.ParseConnectionString(url)
	if err != nil {
		t.Fatalf("parse %q: %v", url, err)
	}
	cfg.Logger = esdb.NoopLogging()
	c, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatalf("client for %q: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// stream returns the name of the test's stream called name.
func (tg *target) stream(name string) string { return tg.ns + "-" + name }

// ctx returns a context bounded by callTimeout, cancelled when t ends.
func (tg *target) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	tg.t.Cleanup(cancel)
	return ctx
}

// newEvent returns a JSON event of the given type with a fresh id.
func newEvent(eventType string) esdb.EventData {
	return esdb.EventData{EventID: uuid.New(), EventType: eventType, ContentType: esdb.ContentTypeJson, Data: []byte(`{"n":1}`)}
}

func newEvents(n int, eventType string) []esdb.EventData {
	out := make([]esdb.EventData, n)
	for i := range out {
		out[i] = newEvent(eventType)
	}
	return out
}

func (tg *target) append(stream string, exp esdb.ExpectedRevision, events ...esdb.EventData) (*esdb.WriteResult, error) {
	return tg.client.AppendToStream(tg.ctx(), stream, esdb.AppendToStreamOptions{ExpectedRevision: exp}, events...)
}

func (tg *target) mustAppend(stream string, exp esdb.ExpectedRevision, events ...esdb.EventData) *esdb.WriteResult {
	tg.t.Helper()
	res, err := tg.append(stream, exp, events...)
	if err != nil {
		tg.t.Fatalf("append to %s: %v", stream, err)
	}
	return res
}

// readStream reads up to count events of stream; a missing stream is an
// error with esdb.ErrorCodeResourceNotFound.
func (tg *target) readStream(stream string, opts esdb.ReadStreamOptions, count uint64) ([]*esdb.RecordedEvent, error) {
	rs, err := tg.client.ReadStream(tg.ctx(), stream, opts, count)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	return drain(rs)
}

func (tg *target) mustReadStream(stream string, opts esdb.ReadStreamOptions, count uint64) []*esdb.RecordedEvent {
	tg.t.Helper()
	events, err := tg.readStream(stream, opts, count)
	if err != nil {
		tg.t.Fatalf("read %s: %v", stream, err)
	}
	return events
}

func (tg *target) mustReadAll(opts esdb.ReadAllOptions, count uint64) []*esdb.RecordedEvent {
	tg.t.Helper()
	rs, err := tg.client.ReadAll(tg.ctx(), opts, count)
	if err != nil {
		tg.t.Fatalf("read $all: %v", err)
	}
	defer rs.Close()
	events, err := drain(rs)
	if err != nil {
		tg.t.Fatalf("read $all: %v", err)
	}
	return events
}

func drain(rs *esdb.ReadStream) ([]*esdb.RecordedEvent, error) {
	var out []*esdb.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev.Event)
	}
}

// own keeps the events of the test's namespace, including its metadata
// streams ("$$" + name).
func (tg *target) own(events []*esdb.RecordedEvent) []*esdb.RecordedEvent {
	var out []*esdb.RecordedEvent
	for _, e := range events {
		if strings.HasPrefix(strings.TrimPrefix(e.StreamID, "$$"), tg.ns) {
			out = append(out, e)
		}
	}
	return out
}

func idsOf(events []*esdb.RecordedEvent) []uuid.UUID {
	out := make([]uuid.UUID, len(events))
	for i, e := range events {
		out[i] = e.EventID
	}
	return out
}

func idsOfData(events []esdb.EventData) []uuid.UUID {
	out := make([]uuid.UUID, len(events))
	for i, e := range events {
		out[i] = e.EventID
	}
	return out
}

func equalIDs(a, b []uuid.UUID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// esdbCode returns the v4 client's error code of err, or -1 when err is
// not a client error.
func esdbCode(err error) esdb.ErrorCode {
	var e *esdb.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return -1
}

// grpcCode returns the gRPC status code err wraps (codes.Unknown when it
// wraps none, codes.OK for nil).
func grpcCode(err error) codes.Code {
	s, _ := status.FromError(err)
	return s.Code()
}

// wantWrongExpectedVersion fails t unless err is a wrong-expected-version
// error reporting current as the stream's actual revision.
func wantWrongExpectedVersion(t *testing.T, err error, current string) {
	t.Helper()
	if esdbCode(err) != esdb.ErrorCodeWrongExpectedVersion {
		t.Fatalf("error = %v, want wrong expected version", err)
	}
	if want := "but got '" + current + "'"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error = %v, want it to contain %q", err, want)
	}
}

// subscriber reads a subscription opened with a bounded context, so a
// missing message ends the test rather than hanging it.
type subscriber struct {
	t   *testing.T
	sub *esdb.Subscription
}

func (tg *target) subscribeToAll(opts esdb.SubscribeToAllOptions) *subscriber {
	tg.t.Helper()
	sub, err := tg.client.SubscribeToAll(tg.ctx(), opts)
	if err != nil {
		tg.t.Fatalf("subscribe to $all: %v", err)
	}
	tg.t.Cleanup(func() { _ = sub.Close() })
	return &subscriber{t: tg.t, sub: sub}
}

func (tg *target) subscribeToStream(stream string, opts esdb.SubscribeToStreamOptions) *subscriber {
	tg.t.Helper()
	sub, err := tg.client.SubscribeToStream(tg.ctx(), stream, opts)
	if err != nil {
		tg.t.Fatalf("subscribe to %s: %v", stream, err)
	}
	tg.t.Cleanup(func() { _ = sub.Close() })
	return &subscriber{t: tg.t, sub: sub}
}

// next returns the next message that keep accepts; a drop fails t.
func (s *subscriber) next(keep func(*esdb.SubscriptionEvent) bool) *esdb.SubscriptionEvent {
	s.t.Helper()
	for {
		ev := s.sub.Recv()
		if ev.SubscriptionDropped != nil {
			s.t.Fatalf("subscription dropped: %v", ev.SubscriptionDropped.Error)
		}
		if keep(ev) {
			return ev
		}
	}
}

// dropped waits for the subscription to end and returns why.
func (s *subscriber) dropped() error {
	s.t.Helper()
	for {
		ev := s.sub.Recv()
		if ev.SubscriptionDropped != nil {
			return ev.SubscriptionDropped.Error
		}
	}
}

// ownOrControl accepts the test's events and every non-event message
// (caught_up, checkpoints), and skips other tests' and the node's events.
func (tg *target) ownOrControl(ev *esdb.SubscriptionEvent) bool {
	if ev.EventAppeared == nil {
		return true
	}
	return len(tg.own([]*esdb.RecordedEvent{ev.EventAppeared.Event})) == 1
}

// ownEvent accepts only the test's events.
func (tg *target) ownEvent(ev *esdb.SubscriptionEvent) bool {
	return ev.EventAppeared != nil && tg.ownOrControl(ev)
}
