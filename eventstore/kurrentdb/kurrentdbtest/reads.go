package kurrentdbtest

import "errors"

// fromKind is the kind of a read's or subscription's starting point.
type fromKind int

const (
	fromStart fromKind = iota
	fromEnd
	fromAt // a stream revision or an $all position
)

// from is where a read or subscription starts: in a stream, at is a
// revision; in $all, a position with commit == at.commit and prepare ==
// at.prepare.
type from struct {
	kind   fromKind
	at     uint64 // revision, or prepare position
	commit uint64 // commit position, for $all
}

// errInvalidPosition reports an $all position that is not a record
// boundary of the log (notes §3).
var errInvalidPosition = errors.New("invalid position: not a record boundary with commit == prepare")

// streamRead is the result of reading a stream.
type streamRead struct {
	records  []*record
	notFound bool // the stream has no events
	deleted  bool // the stream is tombstoned
}

// readStream returns up to count events of the named stream from f,
// forwards or backwards. Forwards from a revision includes that revision;
// backwards from a revision includes it too, and a revision past the end
// starts at the last event. From the end forwards there is nothing; from
// the start backwards there is the first event only.
func (l *eventLog) readStream(name string, f from, backwards bool, count uint64) streamRead {
	l.mu.RLock()
	defer l.mu.RUnlock()
	st := l.streams[name]
	switch {
	case st != nil && st.tombstoned:
		return streamRead{deleted: true}
	case st == nil || len(st.records) == 0:
		return streamRead{notFound: true}
	}
	events := st.records
	last := uint64(len(events) - 1)
	var out []*record
	if backwards {
		start := last
		switch f.kind {
		case fromStart:
			start = 0
		case fromAt:
			start = min(f.at, last)
		}
		for i := int64(start); i >= 0 && uint64(len(out)) < count; i-- {
			out = append(out, events[i])
		}
		return streamRead{records: out}
	}
	start := uint64(0)
	switch f.kind {
	case fromEnd:
		return streamRead{}
	case fromAt:
		start = f.at
	}
	for i := start; i <= last && uint64(len(out)) < count; i++ {
		out = append(out, events[i])
	}
	return streamRead{records: out}
}

// readAll returns up to count events of $all from f that keep passes.
// Forwards from a position includes the event at that position; backwards
// from a position excludes it (so backwards from the log's end starts at
// the last event). Errors: errInvalidPosition.
func (l *eventLog) readAll(f from, backwards bool, count uint64, keep func(*record) bool) ([]*record, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	index := 0
	switch f.kind {
	case fromEnd:
		index = len(l.records)
	case fromAt:
		i, _, ok := l.locateLocked(f.commit, f.at)
		if !ok {
			return nil, errInvalidPosition
		}
		index = i
	}
	var out []*record
	if backwards {
		if f.kind == fromStart {
			return nil, nil
		}
		for i := index - 1; i >= 0 && uint64(len(out)) < count; i-- {
			if keep(l.records[i]) {
				out = append(out, l.records[i])
			}
		}
		return out, nil
	}
	for i := index; i < len(l.records) && uint64(len(out)) < count; i++ {
		if keep(l.records[i]) {
			out = append(out, l.records[i])
		}
	}
	return out, nil
}

// tombstone deletes the named stream for ever after checking exp like an
// append without idempotency, and returns the tombstone record. ok is
// false with the stream's head when exp does not hold; errStreamDeleted
// when it is already tombstoned.
func (l *eventLog) tombstone(name string, exp expectation) (r *record, head appendOutcome, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.streams[name]
	if st != nil && st.tombstoned {
		return nil, appendOutcome{}, errStreamDeleted{stream: name}
	}
	var events []*record
	if st != nil {
		events = st.records
	}
	head = emptyAppend(streamHead(events), exp)
	if !head.ok {
		return nil, head, nil
	}
	return l.tombstoneLocked(name), head, nil
}
