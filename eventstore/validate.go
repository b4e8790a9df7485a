package eventstore

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/internal/storable"
)

// MaxStreamIDLength is the longest stream id a store accepts.
const MaxStreamIDLength = 255

// text reports whether s is valid UTF-8 without NUL bytes, which
// PostgreSQL text and json cannot hold (storable.Is).
func text(s string) bool {
	return storable.Is(s)
}

// PrepareAppend validates an append before any adapter touches storage and
// returns the events with a fresh ID for each zero one. Adapters call it first
// so that every store rejects the same input the same way. Empty metadata is
// stored as an empty JSON object.
func PrepareAppend(stream string, events []EventData) ([]EventData, error) {
	if stream == "" || len(stream) > MaxStreamIDLength || !text(stream) {
		return nil, fmt.Errorf("%w: stream id must be 1-%d bytes of UTF-8 without NUL", ErrInvalidEvent, MaxStreamIDLength)
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("%w: append to %q has no events", ErrInvalidEvent, stream)
	}
	out := make([]EventData, len(events))
	seen := make(map[uuid.UUID]struct{}, len(events))
	for i, e := range events {
		if e.Type == "" || !text(e.Type) {
			return nil, fmt.Errorf("%w: event %d of %q needs a type of UTF-8 without NUL", ErrInvalidEvent, i, stream)
		}
		if !json.Valid(e.Data) || !text(string(e.Data)) {
			return nil, fmt.Errorf("%w: event %d (%s) of %q: data is not valid UTF-8 JSON", ErrInvalidEvent, i, e.Type, stream)
		}
		// The caller may reuse its buffer once Append returns, even when
		// the append is still queued (its context ended first).
		e.Data = bytes.Clone(e.Data)
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
