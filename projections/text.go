package projections

import (
	"context"
	"log/slog"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/logging"
	"github.com/orders-reference/orders/internal/storable"
)

// Text in events written by earlier versions may be text a read model
// cannot store: their API accepted NUL (U+0000), which PostgreSQL's text
// and jsonb cannot hold, and the event store (json, not jsonb) keeps it as
// the escape \u0000. A projection that wrote it as it is would fail on
// that event for good, and a rebuild would fail on it again. Nothing the
// event store holds may stop a projection, so every text a projector
// takes from an event into a read-model column goes through StorableText.

// StorableText returns s as text every read-model column can hold
// (storable.Text: each NUL and each invalid UTF-8 sequence is replaced
// with U+FFFD; other characters, control characters included, are kept).
// When it changes anything, it logs a warning naming the event (stream,
// version, global position, type) and field, and the projection carries
// on; the event store keeps the original. Projectors call it with the
// context their Apply was given (the runner's or the rebuild's, which
// carries its logger).
func StorableText(ctx context.Context, rec eventstore.RecordedEvent, field, s string) string {
	if storable.Is(s) {
		return s
	}
	ctx = logging.With(ctx, "correlation_id", rec.Metadata.CorrelationID) // the event's: its order's story
	loggerFrom(ctx).WarnContext(ctx, "projection stored an event's text with U+FFFD for what a read model cannot hold (NUL or invalid UTF-8); the event store keeps the original",
		"stream", rec.StreamID, "version", rec.Version, "position", rec.Position.String(), "event_type", rec.Type, "event_id", rec.ID.String(),
		"field", field)
	return storable.Text(s)
}

type loggerKey struct{}

// withLogger gives the projectors applying a batch under ctx the logger
// of the runner or rebuild that applies it.
func withLogger(ctx context.Context, log *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, log)
}

func loggerFrom(ctx context.Context) *slog.Logger {
	if log, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok && log != nil {
		return log
	}
	return slog.Default()
}
