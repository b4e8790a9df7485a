package eventstore

import (
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
)

// MaxStreamIDLength is the longest stream id a store accepts.
const MaxStreamIDLength = 255

// PrepareAppend validates an append before any adapter touches storage and
// returns the events with a fresh ID for each zero one. Adapters call it first
// so that every store rejects the same input the same way. Empty metadata is
// stored as an empty JSON object.
func PrepareAppend(stream string, events []EventData) ([]EventData, error) {
	if stream == "" || len(stream) > MaxStreamIDLength {
		return nil, fmt.Errorf("%w: stream id must be 1-%d bytes", ErrInvalidEvent, MaxStreamIDLength)
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("%w: append to %q has no events", ErrInvalidEvent, stream)
	}
	out := make([]EventData, len(events))
	seen := make(map[uuid.UUID]struct{}, len(events))
	for i, e := range events {
		if e.Type == "" {
			return nil, fmt.Errorf("%w: event %d of %q has no type", ErrInvalidEvent, i, stream)
		}
		if !json.Valid(e.Data) {
			return nil, fmt.Errorf("%w: event %d (%s) of %q: data is not valid JSON", ErrInvalidEvent, i, e.Type, stream)
		}
		if e.ID == uuid.Nil {
			id, err := uuid.NewV7()
			if err != nil {
				return nil, fmt.Errorf("new event id: %w", err)
			}
			e.ID = id
		}
		if _, dup := seen[e.ID]; dup {
			return nil, fmt.Errorf("%w: event id %s appears twice in one append", ErrDuplicateEventID, e.ID)
		}
		seen[e.ID] = struct{}{}
		out[i] = e
	}
	return out, nil
}
