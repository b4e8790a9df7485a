package eventstore

import "strconv"

// NoVersion is the version of a stream that has no events.
const NoVersion int64 = -1

// ExpectedVersion is the condition on a stream's current version under
// which Append writes. Build one with Any, NoStream, StreamExists or Exact.
type ExpectedVersion struct {
	kind    expectedKind
	version int64
}

type expectedKind uint8

const (
	expectAny expectedKind = iota
	expectNoStream
	expectStreamExists
	expectExact
)

var (
	// Any appends whatever the stream's state.
	Any = ExpectedVersion{kind: expectAny}
	// NoStream appends only if the stream has no events.
	NoStream = ExpectedVersion{kind: expectNoStream}
	// StreamExists appends only if the stream has at least one event.
	StreamExists = ExpectedVersion{kind: expectStreamExists}
)

// Exact appends only if the stream's last event has version v. Exact of
// NoVersion is the same as NoStream.
func Exact(v int64) ExpectedVersion {
	if v < 0 {
		return NoStream
	}
	return ExpectedVersion{kind: expectExact, version: v}
}

// IsAny reports whether e is Any.
func (e ExpectedVersion) IsAny() bool { return e.kind == expectAny }

// IsNoStream reports whether e is NoStream.
func (e ExpectedVersion) IsNoStream() bool { return e.kind == expectNoStream }

// IsStreamExists reports whether e is StreamExists.
func (e ExpectedVersion) IsStreamExists() bool { return e.kind == expectStreamExists }

// ExactVersion returns the version e expects and true if e is Exact.
func (e ExpectedVersion) ExactVersion() (int64, bool) {
	return e.version, e.kind == expectExact
}

// Satisfied reports whether a stream whose last version is current (NoVersion
// for a missing stream) meets e.
func (e ExpectedVersion) Satisfied(current int64) bool {
	switch e.kind {
	case expectNoStream:
		return current == NoVersion
	case expectStreamExists:
		return current != NoVersion
	case expectExact:
		return current == e.version
	}
	return true
}

// String describes e, e.g. "any", "no stream" or "version 4".
func (e ExpectedVersion) String() string {
	switch e.kind {
	case expectNoStream:
		return "no stream"
	case expectStreamExists:
		return "stream exists"
	case expectExact:
		return "version " + strconv.FormatInt(e.version, 10)
	}
	return "any"
}
