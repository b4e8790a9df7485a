package eventstore

import (
	"fmt"
	"strconv"
	"strings"
)

// Position is an event's place in the global order. It has the shape of an
// EventStoreDB $all position: positions compare by Commit first, then by
// Prepare. In the PostgreSQL store Commit is the id of the transaction that
// appended the event and Prepare the event's sequence number; in
// EventStoreDB they are the commit and prepare log positions.
type Position struct {
	Commit  uint64
	Prepare uint64
}

// Start is the position before the first event: reading or subscribing from
// Start yields every event.
var Start = Position{}

// Compare returns -1, 0 or +1 as p sorts before, equal to or after q.
func (p Position) Compare(q Position) int {
	switch {
	case p.Commit < q.Commit:
		return -1
	case p.Commit > q.Commit:
		return 1
	case p.Prepare < q.Prepare:
		return -1
	case p.Prepare > q.Prepare:
		return 1
	}
	return 0
}

// Less reports whether p sorts before q.
func (p Position) Less(q Position) bool { return p.Compare(q) < 0 }

// String formats p as "commit/prepare", the form ParsePosition reads.
func (p Position) String() string {
	return strconv.FormatUint(p.Commit, 10) + "/" + strconv.FormatUint(p.Prepare, 10)
}

// ParsePosition parses the "commit/prepare" form produced by String.
func ParsePosition(s string) (Position, error) {
	c, pr, ok := strings.Cut(s, "/")
	if !ok {
		return Position{}, fmt.Errorf("%w: %q is not commit/prepare", ErrInvalidPosition, s)
	}
	commit, err := strconv.ParseUint(c, 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("%w: commit in %q: %w", ErrInvalidPosition, s, err)
	}
	prepare, err := strconv.ParseUint(pr, 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("%w: prepare in %q: %w", ErrInvalidPosition, s, err)
	}
	return Position{Commit: commit, Prepare: prepare}, nil
}

// MaxPosition returns the later of p and q.
func MaxPosition(p, q Position) Position {
	if p.Less(q) {
		return q
	}
	return p
}
