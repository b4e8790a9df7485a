// Package snapshot is the port for snapshots of long streams. A snapshot is
// an aggregate's state as of a stream version, so that loading it reads the
// snapshot plus the events after it instead of the whole stream (the
// established pattern: Marten, Eventuous and Axon snapshot every N events
// and keep the snapshot beside the stream; KurrentDB users keep a snapshot
// stream per aggregate).
//
// Snapshots are a cache: deleting every one changes nothing but speed. Each
// carries the schema version of the state it encodes; a reader ignores a
// snapshot of a schema it does not know and folds the stream from the
// start.
package snapshot

import (
	"context"
	"errors"
	"time"

	"github.com/orders-reference/orders/eventstore"
)

// ErrNotFound: the stream has no snapshot.
var ErrNotFound = errors.New("no snapshot")

// Snapshot is an aggregate's state as of a version of its stream.
type Snapshot struct {
	// Stream is the stream the state was folded from.
	Stream string
	// Version is the stream version of the last event the state covers.
	Version int64
	// Schema is the version of the state's encoding in Data.
	Schema int
	// Position is the global position of that last event.
	Position eventstore.Position
	// Data is the encoded state.
	Data []byte
	// TakenAt is when the snapshot was saved (set by the store).
	TakenAt time.Time
}

// Store keeps the latest snapshot of each stream.
type Store interface {
	// Load returns the stream's snapshot, or ErrNotFound.
	Load(ctx context.Context, stream string) (Snapshot, error)
	// Save keeps s as the stream's snapshot if it covers a later version
	// than the one kept, or the same version in another schema or with
	// other data (after an upgrade, or over a snapshot its reader found
	// unusable, a stream at rest gets one its readers can use);
	// otherwise it does nothing and returns nil. A snapshot never goes
	// backwards, and of concurrent saves of one stream the latest version
	// stays. Errors are the store's (and the context's).
	Save(ctx context.Context, s Snapshot) error
}
