package tracing

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/orders-reference/orders/eventstore"
)

// The attributes of event store spans.
const (
	AttrStream = attribute.Key("eventstore.stream")
	// AttrExpected is the kind of an append's expected version: "any",
	// "no_stream", "stream_exists" or "exact"; AttrExpectedVersion, an
	// int, the version an exact one names.
	AttrExpected        = attribute.Key("eventstore.expected")
	AttrExpectedVersion = attribute.Key("eventstore.expected_version")
	// AttrConflict is true on an append refused by its expected version
	// (ErrWrongExpectedVersion): an answer the caller acts on (it reads
	// and decides again), not a failure; AttrActualVersion is the
	// stream's version then (-1: no stream).
	AttrConflict      = attribute.Key("eventstore.conflict")
	AttrActualVersion = attribute.Key("eventstore.actual_version")
	AttrEvents        = attribute.Key("eventstore.events") // appended, or read
	AttrVersion       = attribute.Key("eventstore.version")
	AttrPosition      = attribute.Key("eventstore.position")
	AttrReplayed      = attribute.Key("eventstore.replayed")
	AttrFrom          = attribute.Key("eventstore.from")
	AttrLimit         = attribute.Key("eventstore.limit")
	AttrDirection     = attribute.Key("eventstore.direction")
	AttrFound         = attribute.Key("eventstore.found")
)

// Span names of the event store.
const (
	SpanAppend     = "eventstore.append"
	SpanReadStream = "eventstore.read_stream"
	SpanReadAll    = "eventstore.read_all"
)

// Store returns s with a span for every append and read made in a traced
// context (a request, a step, a projection's batch), a child of the
// caller's span, with the stream, the expected version and the number of
// events as attributes. Whatever the adapter (PostgreSQL, KurrentDB,
// memory), it is wrapped once here. Calls in a context without a span
// (background polls, tracing off) go straight to s, and so do
// subscriptions (their batches get spans of their own) and the position
// and backlog questions. tp nil returns s itself.
func Store(s eventstore.Store, tp trace.TracerProvider) eventstore.Store {
	if tp == nil {
		return s
	}
	return tracedStore{Store: s, tracer: Tracer(tp)}
}

type tracedStore struct {
	eventstore.Store
	tracer trace.Tracer
}

func traced(ctx context.Context) bool { return trace.SpanContextFromContext(ctx).IsValid() }

func (s tracedStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if !traced(ctx) {
		return s.Store.Append(ctx, stream, expected, events...)
	}
	ctx, span := s.tracer.Start(ctx, SpanAppend, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		append(expectedAttrs(expected), AttrStream.String(stream), AttrEvents.Int(len(events)))...))
	res, err := s.Store.Append(ctx, stream, expected, events...)
	var conflict *eventstore.WrongExpectedVersionError
	switch {
	case err == nil:
		span.SetAttributes(AttrVersion.Int64(res.Version), AttrPosition.String(res.Position.String()), AttrReplayed.Bool(res.Replayed))
	case errors.As(err, &conflict):
		// An expected outcome of optimistic concurrency: an event, not an error status.
		span.SetAttributes(AttrConflict.Bool(true), AttrActualVersion.Int64(conflict.Actual))
		span.AddEvent("wrong expected version", trace.WithAttributes(AttrActualVersion.Int64(conflict.Actual)))
		span.End()
		return res, err
	case errors.Is(err, eventstore.ErrWrongExpectedVersion):
		span.SetAttributes(AttrConflict.Bool(true))
		span.AddEvent("wrong expected version")
		span.End()
		return res, err
	}
	End(span, err)
	return res, err
}

// expectedAttrs describes an expected version: its kind and, when exact,
// the version as an int.
func expectedAttrs(e eventstore.ExpectedVersion) []attribute.KeyValue {
	switch {
	case e.IsAny():
		return []attribute.KeyValue{AttrExpected.String("any")}
	case e.IsNoStream():
		return []attribute.KeyValue{AttrExpected.String("no_stream")}
	case e.IsStreamExists():
		return []attribute.KeyValue{AttrExpected.String("stream_exists")}
	}
	v, _ := e.ExactVersion()
	return []attribute.KeyValue{AttrExpected.String("exact"), AttrExpectedVersion.Int64(v)}
}

func (s tracedStore) ReadStream(ctx context.Context, stream string, dir eventstore.Direction, from int64, limit int) ([]eventstore.RecordedEvent, error) {
	if !traced(ctx) {
		return s.Store.ReadStream(ctx, stream, dir, from, limit)
	}
	direction := "forward"
	if dir == eventstore.Backward {
		direction = "backward"
	}
	ctx, span := s.tracer.Start(ctx, SpanReadStream, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		AttrStream.String(stream), AttrDirection.String(direction), AttrFrom.Int64(from), AttrLimit.Int(limit)))
	events, err := s.Store.ReadStream(ctx, stream, dir, from, limit)
	span.SetAttributes(AttrEvents.Int(len(events)))
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		// An answer, not a failure: a new order's stream, say.
		span.SetAttributes(AttrFound.Bool(false))
		span.End()
		return events, err
	}
	End(span, err)
	return events, err
}

func (s tracedStore) ReadAll(ctx context.Context, from eventstore.Position, limit int, filter eventstore.Filter) (eventstore.Page, error) {
	if !traced(ctx) {
		return s.Store.ReadAll(ctx, from, limit, filter)
	}
	ctx, span := s.tracer.Start(ctx, SpanReadAll, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		AttrFrom.String(from.String()), AttrLimit.Int(limit)))
	page, err := s.Store.ReadAll(ctx, from, limit, filter)
	span.SetAttributes(AttrEvents.Int(len(page.Events)))
	End(span, err)
	return page, err
}
