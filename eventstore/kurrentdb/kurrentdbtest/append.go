package kurrentdbtest

// expectKind is the kind of an append's expected revision.
type expectKind int

const (
	expectAny expectKind = iota
	expectNoStream
	expectStreamExists
	expectRevision
)

// expectation is an append's expected stream revision.
type expectation struct {
	kind     expectKind
	revision uint64 // for expectRevision
}

// appendOutcome is the result of an append: success or wrong expected
// version (notes §2: both are normal responses).
type appendOutcome struct {
	ok bool
	// current is the stream's last revision after a successful append
	// (on an idempotent retry: the revision of the retried batch's last
	// event), or before a failed one; noStream means the stream has no
	// events.
	current  uint64
	noStream bool
	// position is the position of the last event written (or matched by
	// an idempotent retry); hasPosition is false for an empty append.
	position    uint64
	hasPosition bool
}

// errStreamDeleted reports an append to a tombstoned stream.
type errStreamDeleted struct{ stream string }

func (e errStreamDeleted) Error() string { return "stream '" + e.stream + "' is deleted" }

// appendEvents applies the expected-revision and idempotency rules of notes §3
// and writes ps when they allow it:
//
//   - new stream: any and no_stream write; stream_exists and an exact
//     revision fail;
//   - existing stream: any and stream_exists write; an exact revision
//     equal to the current one writes, above it fails;
//   - strong idempotency (an exact revision below the current one, or
//     no_stream on an existing stream): ps's ids are compared with the
//     events at revision+1…; all equal → success with the original
//     revision and position, nothing written; any differs → wrong
//     expected version;
//   - weak idempotency (any, stream_exists): when the first id is in the
//     recent-ids cache for the same stream, the batch is compared the same
//     way from that event; otherwise it is written. Ids are never checked
//     against other streams: ids are not unique in the log.
//
// It returns errStreamDeleted for a tombstoned stream.
func (l *eventLog) appendEvents(name string, exp expectation, ps []proposal) (appendOutcome, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.streams[name]
	if st != nil && st.tombstoned {
		return appendOutcome{}, errStreamDeleted{stream: name}
	}
	var events []*record
	if st != nil {
		events = st.records
	}
	state := streamHead(events)
	if len(ps) == 0 {
		return emptyAppend(state, exp), nil
	}
	switch exp.kind {
	case expectAny:
		if out, matched := l.weakRetry(name, events, ps); matched {
			return out, nil
		}
	case expectStreamExists:
		if state.noStream {
			return state, nil
		}
		if out, matched := l.weakRetry(name, events, ps); matched {
			return out, nil
		}
	case expectNoStream:
		if !state.noStream {
			return strongRetry(events, 0, ps, state), nil
		}
	case expectRevision:
		switch {
		case state.noStream || exp.revision > state.current:
			return state, nil
		case exp.revision < state.current:
			return strongRetry(events, exp.revision+1, ps, state), nil
		}
	}
	written := l.writeLocked(name, ps)
	last := written[len(written)-1]
	return appendOutcome{ok: true, current: last.revision, position: last.position, hasPosition: true}, nil
}

// streamHead is the failed outcome that reports a stream's current
// revision; its ok field is false.
func streamHead(events []*record) appendOutcome {
	if len(events) == 0 {
		return appendOutcome{noStream: true}
	}
	return appendOutcome{current: events[len(events)-1].revision}
}

// emptyAppend checks an append without events: it writes nothing and
// succeeds with the current revision when the expectation holds.
func emptyAppend(state appendOutcome, exp expectation) appendOutcome {
	switch exp.kind {
	case expectAny:
		state.ok = true
	case expectNoStream:
		state.ok = state.noStream
	case expectStreamExists:
		state.ok = !state.noStream
	case expectRevision:
		state.ok = !state.noStream && exp.revision == state.current
	}
	return state
}

// strongRetry compares ps's ids with the events from revision from on: all
// equal is an idempotent success reporting the last matched event, else
// the append fails with the stream's current revision.
func strongRetry(events []*record, from uint64, ps []proposal, state appendOutcome) appendOutcome {
	if from+uint64(len(ps)) > uint64(len(events)) {
		return state
	}
	for i, p := range ps {
		if events[from+uint64(i)].id != p.id {
			return state
		}
	}
	last := events[from+uint64(len(ps))-1]
	return appendOutcome{ok: true, current: last.revision, position: last.position, hasPosition: true}
}

// weakRetry looks ps's first id up in the recent-ids cache. matched is
// false when it is not cached for this stream (the batch is then written);
// otherwise out is the strong comparison from the cached event on.
func (l *eventLog) weakRetry(name string, events []*record, ps []proposal) (out appendOutcome, matched bool) {
	at, ok := l.recent.lookup(ps[0].id)
	if !ok || at.stream != name {
		return appendOutcome{}, false
	}
	return strongRetry(events, at.revision, ps, streamHead(events)), true
}
