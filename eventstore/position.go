package eventstore

import (
	"fmt"
	"math"
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

// MaxPositionPart is the largest commit or prepare any store produces:
// PostgreSQL's are bigints (a transaction id, a sequence number), and
// KurrentDB's log positions, uint64 on the wire, are the server's
// non-negative int64 offsets into its log.
const MaxPositionPart = math.MaxInt64

// ParsePosition parses the "commit/prepare" form produced by String, and
// only that form: each part the decimal digits String writes (no sign,
// space or leading zero: "01/0" is not how any position is written), at
// most MaxPositionPart (a position no store can produce is not one to
// wait for).
func ParsePosition(s string) (Position, error) {
	c, pr, ok := strings.Cut(s, "/")
	if !ok {
		return Position{}, fmt.Errorf("%w: not commit/prepare", ErrInvalidPosition)
	}
	commit, ok := positionPart(c)
	if !ok {
		return Position{}, fmt.Errorf("%w: the commit must be 0-%d, written as String writes it", ErrInvalidPosition, uint64(MaxPositionPart))
	}
	prepare, ok := positionPart(pr)
	if !ok {
		return Position{}, fmt.Errorf("%w: the prepare must be 0-%d, written as String writes it", ErrInvalidPosition, uint64(MaxPositionPart))
	}
	return Position{Commit: commit, Prepare: prepare}, nil
}

// positionPart reads one part of a position in its canonical form.
func positionPart(s string) (uint64, bool) {
	if s == "" || (s[0] == '0' && len(s) > 1) || strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' }) {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil && n <= MaxPositionPart
}

// MaxPosition returns the later of p and q.
func MaxPosition(p, q Position) Position {
	if p.Less(q) {
		return q
	}
	return p
}
