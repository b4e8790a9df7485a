// Package eventstore is the port between Orders and the event store that
// backs it: the event envelope, expected-version semantics, global positions,
// subscriptions and the Store interface that every adapter implements.
//
// The semantics follow EventStoreDB so that its adapter can sit behind the
// same interface as the PostgreSQL and in-memory ones:
//
//   - a stream is an ordered list of events; the first event has version 0;
//   - Append writes one or more events to one stream atomically, guarded by an
//     ExpectedVersion (Any, NoStream, StreamExists or an exact version);
//   - re-appending the same event ids at the same expected version is a no-op
//     that returns the original result, so callers can retry safely (see
//     Store.Append for which retries are safe on every backend);
//   - every event also has a global Position; reading or subscribing to all
//     events yields them in one total order that respects each stream's order
//     and never skips an event that committed earlier than one it delivered.
package eventstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Store is the event store port. Implementations must be safe for concurrent
// use; the acceptance suite in package storetest defines the contract.
type Store interface {
	// Append writes events to the end of stream in one atomic step if the
	// stream's current version satisfies expected. It returns the version of
	// the last event and its global position. A mismatch returns a
	// *WrongExpectedVersionError (errors.Is ErrWrongExpectedVersion).
	//
	// Retries. An append whose outcome is unknown (a timeout, a lost
	// connection) may be retried safely on every backend only with an
	// exact or NoStream expected version and the same event ids: the
	// store finds the ids where the first attempt put them and returns
	// the original result without writing. Retries with Any or
	// StreamExists are recognised by the PostgreSQL and in-memory stores,
	// but on KurrentDB only while the ids are in the server's in-memory
	// cache of recent writes to that stream, so they may write the events
	// twice. Likewise only the PostgreSQL and in-memory stores keep event
	// ids unique across the store (ErrDuplicateEventID); KurrentDB stores
	// an old id again wherever it is not recognised as a retry. The
	// capabilities of storetest record what each adapter promises.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events ...EventData) (AppendResult, error)

	// ReadStream returns up to limit events of stream starting at version from
	// (inclusive) in the given direction. Use FromEnd with Backward to start at
	// the last event. A stream without events returns ErrStreamNotFound.
	ReadStream(ctx context.Context, stream string, dir Direction, from int64, limit int) ([]RecordedEvent, error)

	// ReadAll returns up to limit events that come after position from in the
	// global order and match filter, together with the position to continue
	// from. Only events whose order is final are returned: an event never
	// appears before an event that sorts ahead of it.
	ReadAll(ctx context.Context, from Position, limit int, filter Filter) (Page, error)

	// Subscribe delivers every event after position from that matches the
	// options' filter, in global order: first the stored ones (catch-up), then
	// new ones as they are appended (live). It blocks until ctx is done, in
	// which case it returns ctx.Err(), or handle returns an error, which it
	// returns wrapped.
	Subscribe(ctx context.Context, from Position, opts SubscribeOptions, handle BatchHandler) error

	// Head returns the position of the last event whose order is final, or
	// Start if the store is empty.
	Head(ctx context.Context) (Position, error)

	// Backlog describes the events after position from in the global order
	// (of every stream; a filtered reader may skip some): how many there are,
	// counted up to limit so that the question costs the same however far
	// behind the reader is, and when the first of them was recorded. It
	// answers "how far behind is a reader at from" for lag metrics,
	// readiness and rebuild progress. limit must be positive.
	Backlog(ctx context.Context, from Position, limit int) (Backlog, error)
}

// Backlog is what lies after a position in the global order.
type Backlog struct {
	// Events is how many events follow the position, at most the limit
	// asked for.
	Events int64
	// Oldest is when the first of them was recorded; zero if there is none.
	Oldest time.Time
}

// EventData is an event to append.
type EventData struct {
	// ID identifies the event; appending the same ID twice at the same place
	// is idempotent. A zero ID is replaced by a new random one.
	ID uuid.UUID
	// Type is the event's stable type name, e.g. "order.placed.v1".
	Type string
	// Data is the event payload as a JSON document.
	Data json.RawMessage
	// Metadata describes who caused the event and why.
	Metadata Metadata
}

// Metadata is the envelope information stored with every event.
type Metadata struct {
	// CorrelationID ties together everything caused by one request.
	CorrelationID string `json:"correlation_id,omitempty"`
	// CausationID is the id of the message (command, event or webhook) that
	// caused this event.
	CausationID string `json:"causation_id,omitempty"`
	// Actor is who caused it: "admin", "customer", "provider" or "system".
	Actor string `json:"actor,omitempty"`
	// Traceparent and Tracestate are the W3C trace context of the work
	// that wrote the event (a request, a process manager step), so that
	// the work the event causes elsewhere continues its trace. Empty when
	// that work was not traced (and in events stored before tracing).
	Traceparent string `json:"traceparent,omitempty"`
	Tracestate  string `json:"tracestate,omitempty"`
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	ID         uuid.UUID
	StreamID   string
	Version    int64
	Position   Position
	Type       string
	Data       json.RawMessage
	Metadata   Metadata
	RecordedAt time.Time
}

// AppendResult is what a successful Append returns.
type AppendResult struct {
	// Version is the stream version of the last appended event.
	Version int64
	// Position is the global position of the last appended event.
	Position Position
	// Replayed reports an idempotent retry: the same events were stored by
	// an earlier append and nothing was written now. (An adapter that
	// cannot tell reports false.)
	Replayed bool
	// RecordedAt is the time the store recorded the appended events (their
	// RecordedAt, the store's clock), so that an answer built from the
	// append shows the same time as a later read; zero when Replayed.
	RecordedAt time.Time
}

// Direction is the order of a stream read.
type Direction int

const (
	// Forward reads from older to newer events.
	Forward Direction = iota
	// Backward reads from newer to older events.
	Backward
)

// FromEnd, as the from version of a backward stream read, starts at the
// stream's last event.
const FromEnd int64 = -1

// DefaultDeliveryInterval is the adapters' default pace of a subscription
// that has caught up with new events (their Options.DeliveryInterval). A
// subscriber's batch costs about the same whatever its size (for a
// projection, a transaction), so under a steady trickle of events the
// adapters hand over what arrived in an interval as one batch rather than
// one batch per append; the first event after a quiet interval goes at
// once. The PostgreSQL adapter paces its subscriptions' wake-ups (it reads
// again at once while pages are full, or while a transaction holds events
// back); the KurrentDB adapter paces a live subscription's batches (a full
// batch or a server checkpoint goes at once, and a server before 24.2,
// which never says the subscription is live, is not paced). At 100
// orders/s with the payment saga running, 20 ms cut the database's
// statements per order from 233 to 70 and the two cores' load from 73 % to
// 32 % (docs/benchmarks.md); it adds at most that much to how soon a read
// model or the process manager sees an event.
const DefaultDeliveryInterval = 20 * time.Millisecond

// Page is one slice of the global event log returned by ReadAll.
type Page struct {
	// Events are the matching events, in global order.
	Events []RecordedEvent
	// Next is the position to pass to the next ReadAll. It may be past the
	// last returned event when events were filtered out.
	Next Position
	// Scanned is the number of events read, matching or not.
	Scanned int
	// AtEnd reports that no further event was readable when the page was
	// read (the reader has caught up).
	AtEnd bool
}

// Batch is what a subscription hands to its handler: events in global order
// and the checkpoint to store once they are processed.
type Batch struct {
	// Events may be empty when the batch only moves the checkpoint past
	// events that did not match the filter.
	Events []RecordedEvent
	// Checkpoint is the position to resume from after this batch.
	Checkpoint Position
}

// BatchHandler processes a batch of a subscription.
type BatchHandler func(ctx context.Context, batch Batch) error

// SubscribeOptions configures Subscribe.
type SubscribeOptions struct {
	// Filter selects the events to deliver. The zero Filter selects all.
	Filter Filter
	// BatchSize caps the events per batch; zero means the adapter's default.
	BatchSize int
}
