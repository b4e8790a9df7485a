package kurrentdbtest

import (
	"errors"

	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// pageSize is how many records a subscription takes from the log at once.
const pageSize = 64

// subscription is one catch-up subscription, to $all or to a stream. It
// pulls records from the log at its own pace, so a subscriber that falls
// behind live events just catches up again; fell_behind is never sent
// (notes §3).
type subscription struct {
	srv      api.Streams_ReadServer
	asString bool
	cursor   int     // index in $all of the next record to consider
	filter   *filter // $all only; nil sends every event and no checkpoints
	stream   string  // "" for $all
	after    int64   // stream subscriptions: send revisions above this

	considered int     // filtered: records considered since the last checkpoint
	last       *record // filtered: the last record considered
}

// subscribe serves a subscription (notes §3): confirmation first, then the
// catch-up events, then caught_up, then live events. A subscription from
// a position or revision starts after it. With a filter, a checkpoint
// carrying the position of the last considered event follows every
// window × multiplier considered events and, if events were considered
// since the last one, precedes caught_up. Ends: Unavailable after
// DropSubscriptions or a restart, the client's cancellation, or
// FailedPrecondition "stream-deleted" when the stream is tombstoned.
func (s *streamsService) subscribe(o *api.ReadReq_Options, srv api.Streams_ReadServer) error {
	sub := &subscription{srv: srv, asString: o.GetUuidOption().GetString_() != nil, after: -1}
	switch so := o.GetStreamOption().(type) {
	case *api.ReadReq_Options_All:
		f, err := newFilter(o.GetFilter())
		if err != nil {
			return err
		}
		sub.filter = f
		cursor, err := s.log.allCursor(allFrom(so.All))
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		sub.cursor = cursor
	case *api.ReadReq_Options_Stream:
		sub.stream = string(so.Stream.GetStreamIdentifier().GetStreamName())
		cursor, after, err := s.log.streamCursor(sub.stream, streamFrom(so.Stream))
		if errors.As(err, new(errStreamDeleted)) {
			return streamDeletedError(srv, sub.stream)
		}
		sub.cursor, sub.after = cursor, after
	default:
		return status.Error(codes.InvalidArgument, "subscription needs a stream or $all")
	}
	dropped := s.faults.dropSignal()
	confirm := &api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{
		SubscriptionId: uuid.NewString()}}}
	if err := srv.Send(confirm); err != nil {
		return err
	}
	return sub.run(s.log, dropped)
}

// run sends the subscription's events until it ends.
func (sub *subscription) run(log *eventLog, dropped <-chan struct{}) error {
	caughtUp := false
	for {
		batch, changed := log.page(sub.cursor, pageSize)
		if err := sub.sendPage(batch); err != nil {
			return err
		}
		if len(batch) > 0 {
			changed = nil // do not wait: more records may be there
		} else if !caughtUp {
			if err := sub.catchUp(); err != nil {
				return err
			}
			caughtUp = true
		}
		if err := sub.wait(dropped, changed); err != nil {
			return err
		}
	}
}

// sendPage sends the records of batch the subscriber keeps, and the
// checkpoints they are due.
func (sub *subscription) sendPage(batch []*record) error {
	for _, r := range batch {
		sub.cursor++
		if sub.stream != "" && r.stream == sub.stream && r.revision == tombstoneRevision {
			return streamDeletedError(sub.srv, sub.stream)
		}
		if sub.keep(r) {
			if err := sub.srv.Send(eventResponse(r, sub.asString)); err != nil {
				return err
			}
		}
		if sub.filter == nil {
			continue
		}
		sub.considered, sub.last = sub.considered+1, r
		if sub.considered >= sub.filter.checkpointEvery {
			if err := sub.checkpoint(); err != nil {
				return err
			}
		}
	}
	return nil
}

// catchUp sends the checkpoint still due, if any, then caught_up.
func (sub *subscription) catchUp() error {
	if sub.considered > 0 {
		if err := sub.checkpoint(); err != nil {
			return err
		}
	}
	return sub.srv.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: &api.ReadResp_CaughtUp{}}})
}

// wait returns nil when changed is closed (at once when it is nil), or the
// error that ends the subscription when it is dropped or cancelled first.
func (sub *subscription) wait(dropped, changed <-chan struct{}) error {
	ctx := sub.srv.Context()
	if changed == nil {
		select {
		case <-dropped:
		case <-ctx.Done():
		default:
			return nil
		}
	} else {
		select {
		case <-dropped:
		case <-ctx.Done():
		case <-changed:
			return nil
		}
	}
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	return status.Error(codes.Unavailable, "subscription dropped by the KurrentDB double")
}

// keep reports whether r is sent to the subscriber.
func (sub *subscription) keep(r *record) bool {
	if sub.stream == "" {
		return sub.filter.match(r)
	}
	return r.stream == sub.stream && int64(r.revision) > sub.after && r.revision != tombstoneRevision
}

// checkpoint sends a checkpoint at the position of the last considered
// record and restarts the count.
func (sub *subscription) checkpoint() error {
	sub.considered = 0
	p := sub.last.position
	return sub.srv.Send(&api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{
		CommitPosition: p, PreparePosition: p}}})
}

// allCursor returns the index in $all where a subscription from f starts:
// after the record at f's position (notes §3). Errors: errInvalidPosition.
func (l *eventLog) allCursor(f from) (int, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	switch f.kind {
	case fromEnd:
		return len(l.records), nil
	case fromAt:
		i, exact, ok := l.locateLocked(f.commit, f.at)
		if !ok {
			return 0, errInvalidPosition
		}
		if exact {
			i++
		}
		return i, nil
	}
	return 0, nil
}

// streamCursor returns the index in $all where a subscription to the named
// stream from f starts, and the revision after which it sends events (-1
// for all). Errors: errStreamDeleted.
func (l *eventLog) streamCursor(name string, f from) (cursor int, after int64, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	st := l.streams[name]
	if st != nil && st.tombstoned {
		return 0, 0, errStreamDeleted{stream: name}
	}
	var events []*record
	if st != nil {
		events = st.records
	}
	switch f.kind {
	case fromEnd:
		return len(l.records), int64(len(events)) - 1, nil
	case fromAt:
		if f.at >= uint64(len(events)) {
			return len(l.records), int64(f.at), nil
		}
		i, _, _ := l.locateLocked(events[f.at].position, events[f.at].position)
		return i + 1, int64(f.at), nil
	}
	return 0, -1, nil
}
