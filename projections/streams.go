package projections

import (
	"github.com/google/uuid"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
)

// StreamIDs returns the distinct ids of the streams named prefix+<uuid> in
// evs, in order of first appearance: the rows a batch touches, for a
// projector that folds a batch in memory (read the rows once, apply every
// event in Go, write them back with one statement).
func StreamIDs(evs []eventstore.RecordedEvent, prefix string) []uuid.UUID {
	seen := map[uuid.UUID]bool{}
	var out []uuid.UUID
	for _, r := range evs {
		if id, ok := events.StreamID(r.StreamID, prefix); ok && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
