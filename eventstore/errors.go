package eventstore

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrWrongExpectedVersion: the stream's version did not match the
	// expected one. The concrete error is a *WrongExpectedVersionError.
	ErrWrongExpectedVersion = errors.New("wrong expected version")
	// ErrStreamNotFound: the stream has no events.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrDuplicateEventID: an event id is already stored somewhere other than
	// where an idempotent retry would have put it.
	ErrDuplicateEventID = errors.New("duplicate event id")
	// ErrInvalidEvent: the append was rejected before reaching storage
	// (empty stream id or type, invalid JSON, no events).
	ErrInvalidEvent = errors.New("invalid event")
	// ErrInvalidPosition: a position could not be parsed.
	ErrInvalidPosition = errors.New("invalid position")
	// ErrPositionNotInStore: a position (a reader's checkpoint) is not in
	// the store's log: it lies beyond the store's head, or (KurrentDB)
	// between two records. The store lost data (a node restarted empty, a
	// database restored from an older backup) or is another store than
	// the one the position was taken in. A reader must not carry on from
	// it: it would skip the events written up to it, or fail forever.
	// ReadAll, Backlog and Subscribe report it, for Subscribe at the start
	// and on every resubscription.
	ErrPositionNotInStore = errors.New("position not in the event store's log")
	// ErrUnavailable: the event store could not be reached, or did not
	// answer in time (a node down, a lost connection). An append that
	// failed so may or may not have been stored (see Store.Append on
	// which retries are safe); a caller may retry later.
	ErrUnavailable = errors.New("event store unavailable")
)

// WrongExpectedVersionError reports a failed optimistic concurrency check.
type WrongExpectedVersionError struct {
	StreamID string
	Expected ExpectedVersion
	// Actual is the stream's version at the time of the check, NoVersion if
	// the stream did not exist.
	Actual int64
}

// Error implements error.
func (e *WrongExpectedVersionError) Error() string {
	actual := "no stream"
	if e.Actual != NoVersion {
		actual = "version " + strconv.FormatInt(e.Actual, 10)
	}
	return fmt.Sprintf("append to %q: expected %s, stream is at %s", e.StreamID, e.Expected, actual)
}

// Is makes errors.Is(err, ErrWrongExpectedVersion) true.
func (e *WrongExpectedVersionError) Is(target error) bool {
	return target == ErrWrongExpectedVersion
}
