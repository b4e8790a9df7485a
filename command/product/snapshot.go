package product

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/money"
)

// SnapshotSchema is the version of the encoding MarshalSnapshot writes.
// Change it whenever State changes what it holds: a snapshot of another
// schema is refused by RestoreSnapshot, and the caller folds the stream
// from its first event instead.
const SnapshotSchema = 2

// Errors of RestoreSnapshot; on either the caller folds the stream.
var (
	// ErrSnapshotSchema: a snapshot was written with another schema.
	ErrSnapshotSchema = errors.New("snapshot of another schema")
	// ErrSnapshotInvalid: a snapshot does not decode, is of another
	// product, or does not add up (reserved stock other than the sum of
	// the open reservations, a negative version or quantity).
	ErrSnapshotInvalid = errors.New("invalid product snapshot")
)

// snapshotV2 is schema 2: every field of State, and the open reservations
// with where each stands in the global order (schema 1 lacked that, and is
// refused).
type snapshotV2 struct {
	ID          uuid.UUID    `json:"id"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Price       money.Amount `json:"price"`
	IsActive    bool         `json:"is_active"`
	Available   int64        `json:"available"`
	Reserved    int64        `json:"reserved"`
	CreatedAt   time.Time    `json:"created_at"`
	UpdatedAt   time.Time    `json:"updated_at"`
	Version     int64        `json:"version"`
	Open        []openV2     `json:"open"`
}

type openV2 struct {
	Order    uuid.UUID `json:"order"`
	Quantity int64     `json:"quantity"`
	// Commit and Prepare are the reservation's position (zero: unknown).
	Commit  uint64 `json:"commit,omitempty"`
	Prepare uint64 `json:"prepare,omitempty"`
}

// MarshalSnapshot encodes the state (schema SnapshotSchema) as JSON, times
// in UTC and open reservations ordered by order id, so equal states encode
// to equal bytes. Its size is that of the open reservations, never the
// history. It refuses a state inside a savepoint (decisions not yet kept).
func (s *State) MarshalSnapshot() ([]byte, error) {
	if s.undo != nil {
		return nil, fmt.Errorf("product %s: snapshot inside a savepoint", s.ID)
	}
	v := snapshotV2{
		ID: s.ID, Name: s.Name, Description: s.Description, Price: s.Price, IsActive: s.IsActive,
		Available: s.Available, Reserved: s.Reserved, CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC(), Version: s.Version,
		Open: make([]openV2, 0, len(s.open)),
	}
	for order, q := range s.open {
		at := s.at[order]
		v.Open = append(v.Open, openV2{Order: order, Quantity: q, Commit: at.Commit, Prepare: at.Prepare})
	}
	slices.SortFunc(v.Open, func(a, b openV2) int { return bytes.Compare(a.Order[:], b.Order[:]) })
	return json.Marshal(v)
}

// Clone returns a copy of the state that shares nothing with it (outside a
// savepoint: the copy has none). It costs the open reservations, which is
// what a snapshot taken under a product's lock should cost, the encoding
// happening later on the copy.
func (s *State) Clone() *State {
	c := *s
	c.undo = nil
	c.open = maps.Clone(s.open)
	c.at = maps.Clone(s.at)
	return &c
}

// RestoreSnapshot returns the state a snapshot of product id holds. A
// snapshot of another schema is ErrSnapshotSchema; one that does not
// decode, or is of another product, is an error too: either way the caller
// folds the stream instead.
func RestoreSnapshot(id uuid.UUID, schema int, data []byte) (*State, error) {
	if schema != SnapshotSchema {
		return nil, fmt.Errorf("%w: %d, want %d", ErrSnapshotSchema, schema, SnapshotSchema)
	}
	var v snapshotV2
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%w: product %s: %w", ErrSnapshotInvalid, id, err)
	}
	if v.ID != id {
		return nil, fmt.Errorf("%w: product %s's holds product %s", ErrSnapshotInvalid, id, v.ID)
	}
	var held int64
	for _, o := range v.Open {
		if o.Quantity <= 0 {
			return nil, fmt.Errorf("%w: product %s: order %s holds %d", ErrSnapshotInvalid, id, o.Order, o.Quantity)
		}
		held += o.Quantity
	}
	if v.Version < 0 || held != v.Reserved {
		return nil, fmt.Errorf("%w: product %s: version %d, reserved %d, open reservations hold %d", ErrSnapshotInvalid, id, v.Version, v.Reserved, held)
	}
	s := &State{
		ID: v.ID, Name: v.Name, Description: v.Description, Price: v.Price, IsActive: v.IsActive,
		Available: v.Available, Reserved: v.Reserved, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, Version: v.Version,
	}
	if len(v.Open) > 0 {
		s.open = make(map[uuid.UUID]int64, len(v.Open))
		for _, o := range v.Open {
			s.open[o.Order] = o.Quantity
			if o.Commit != 0 || o.Prepare != 0 {
				if s.at == nil {
					s.at = map[uuid.UUID]eventstore.Position{}
				}
				s.at[o.Order] = eventstore.Position{Commit: o.Commit, Prepare: o.Prepare}
			}
		}
	}
	return s, nil
}
