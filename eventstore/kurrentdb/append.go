package kurrentdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/orders-reference/orders/eventstore"
)

// Append implements eventstore.Store.
//
// The events are stored with content type application/json, their
// Metadata as JSON user metadata and their ids as event ids. The server
// checks expected against the stream's last revision: Any, NoStream,
// StreamExists and an exact version map to the client's kinds of the same
// names. A retry it recognises (the same ids where the first attempt put
// them; for Any and StreamExists only while they are in its cache of
// recent writes) returns the original version and position.
//
// The reply carries no time, and the client answers a recognised retry
// exactly as it answers a write, so Append reads the last appended event
// back (one more round trip, on the leader, which answers an append only
// once it is indexed). The last event of every append carries a mark of
// that append's own in its stored metadata (appendMetadata; readers
// ignore it), and the server compares ids only: an event read back with
// this append's mark was written by it (RecordedAt is its time), one
// without was written by an earlier append that this one repeated
// (Replayed, RecordedAt zero), as the PostgreSQL store reports. The read
// also supplies the position, should the reply lack it. If the read fails,
// the append still succeeded but neither is known: Replayed is false and
// RecordedAt zero (the caller uses its own clock).
//
// Errors: ErrInvalidEvent for input the port rejects, a system stream id
// or an append the server finds too large; a *WrongExpectedVersionError
// with the stream's actual version; ctx.Err() (wrapped) when ctx ends. An
// append that failed for another reason (the connection, a timeout) may
// have been stored: retry it only with an exact or NoStream expected
// version and the same ids.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	events, err := eventstore.PrepareAppend(stream, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if isSystemStream(stream) {
		return eventstore.AppendResult{}, fmt.Errorf("%w: %q is a KurrentDB system stream id (ids starting with $ are reserved)", eventstore.ErrInvalidEvent, stream)
	}
	mark := uuid.NewString()
	proposed := make([]esdb.EventData, len(events))
	for i, e := range events {
		md := appendMetadata{Metadata: e.Metadata}
		if i == len(events)-1 {
			md.Append = mark
		}
		meta, err := json.Marshal(md)
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("%w: metadata of event %d of %q: %w", eventstore.ErrInvalidEvent, i, stream, err)
		}
		proposed[i] = esdb.EventData{
			EventID:     e.ID,
			EventType:   e.Type,
			ContentType: esdb.ContentTypeJson,
			Data:        e.Data,
			Metadata:    meta,
		}
	}
	opts := esdb.AppendToStreamOptions{ExpectedRevision: revision(expected)}
	res, err := call(ctx, s.conn, false, func(ctx context.Context, c *esdb.Client) (*esdb.WriteResult, error) {
		return c.AppendToStream(ctx, stream, opts, proposed...)
	})
	if err != nil {
		return eventstore.AppendResult{}, s.appendError(ctx, stream, expected, err)
	}
	out := eventstore.AppendResult{
		Version:  int64(res.NextExpectedVersion),
		Position: eventstore.Position{Commit: res.CommitPosition, Prepare: res.PreparePosition},
	}
	if last, lastMark, ok := s.readBack(ctx, stream, out.Version, events[len(events)-1].ID); ok {
		if lastMark == mark {
			out.RecordedAt = last.RecordedAt
		} else {
			out.Replayed = true
		}
		if out.Position == eventstore.Start {
			out.Position = last.Position
		}
	}
	return out, nil
}

// revision maps an expected version to the client's expected revision.
func revision(e eventstore.ExpectedVersion) esdb.ExpectedRevision {
	switch {
	case e.IsNoStream():
		return esdb.NoStream{}
	case e.IsStreamExists():
		return esdb.StreamExists{}
	}
	if v, ok := e.ExactVersion(); ok {
		return esdb.Revision(uint64(v))
	}
	return esdb.Any{}
}

// appendMetadata is an event's user metadata as Append stores it: the
// port's envelope, and on the last event of an append that append's mark.
type appendMetadata struct {
	eventstore.Metadata
	// Append is a random id of the append that wrote the event, on its
	// last event only. An idempotent retry writes nothing, so the event it
	// reads back carries the mark of the append that did (or none, if an
	// older version of the adapter wrote it, or the event was not last in
	// its append).
	Append string `json:"append_id,omitempty"`
}

// readBack reads the event at version of stream, the last one an append
// wrote, and reports whether it is the event with id last, and which
// append's mark it carries.
func (s *Store) readBack(ctx context.Context, stream string, version int64, last uuid.UUID) (eventstore.RecordedEvent, string, bool) {
	evs, err := s.readRecords(ctx, stream, esdb.Backwards, esdb.Revision(uint64(version)), 1)
	if err != nil || len(evs) != 1 || evs[0].EventID != last {
		return eventstore.RecordedEvent{}, "", false
	}
	var md appendMetadata
	_ = json.Unmarshal(evs[0].UserMetadata, &md) // not ours: no mark
	return recorded(evs[0]), md.Append, true
}

// appendError maps a failed append.
func (s *Store) appendError(ctx context.Context, stream string, expected eventstore.ExpectedVersion, err error) error {
	var e *esdb.Error
	if errors.As(err, &e) && e.Code() == esdb.ErrorCodeWrongExpectedVersion {
		actual, ok := parseActual(err.Error())
		if !ok {
			var lookupErr error
			if actual, lookupErr = s.lastVersion(ctx, stream); lookupErr != nil {
				return fmt.Errorf("append to %q: %w; reading its actual version: %w", stream, eventstore.ErrWrongExpectedVersion, lookupErr)
			}
		}
		return &eventstore.WrongExpectedVersionError{StreamID: stream, Expected: expected, Actual: actual}
	}
	if status.Code(err) == codes.InvalidArgument {
		// Also the server's answer to an append above its maximum append
		// size (1 MiB by default up to v25.0, 256 MiB from v25.1).
		return fmt.Errorf("append to %q: %w: the server refused it: %w", stream, eventstore.ErrInvalidEvent, err)
	}
	return fmt.Errorf("append to %q: %w", stream, mapErr(ctx, err))
}

// parseActual reads the stream's actual version from the v4 client's wrong
// expected version error. The client reports it only as text, which it
// formats itself from the server's reply (so the server's version does not
// change it): "wrong expected version: expecting 'E' but got 'A'", A being
// "no_stream" or a revision.
func parseActual(msg string) (int64, bool) {
	const marker = "but got '"
	i := strings.LastIndex(msg, marker)
	if i < 0 {
		return 0, false
	}
	got, _, ok := strings.Cut(msg[i+len(marker):], "'")
	if !ok {
		return 0, false
	}
	if got == "no_stream" {
		return eventstore.NoVersion, true
	}
	v, err := strconv.ParseInt(got, 10, 64)
	if err != nil {
		return 0, false
	}
	return max(v, eventstore.NoVersion), true
}

// lastVersion reads the version of stream's last event, NoVersion if it
// has none.
func (s *Store) lastVersion(ctx context.Context, stream string) (int64, error) {
	evs, err := s.readStream(ctx, stream, esdb.Backwards, esdb.End{}, 1)
	switch {
	case errors.Is(err, eventstore.ErrStreamNotFound):
		return eventstore.NoVersion, nil
	case err != nil:
		return 0, err
	case len(evs) == 0:
		return eventstore.NoVersion, nil
	}
	return evs[0].Version, nil
}

// readStream reads up to count events of stream; a missing or deleted
// stream is ErrStreamNotFound.
func (s *Store) readStream(ctx context.Context, stream string, dir esdb.Direction, from esdb.StreamPosition, count uint64) ([]eventstore.RecordedEvent, error) {
	evs, err := s.readRecords(ctx, stream, dir, from, count)
	if err != nil {
		return nil, err
	}
	out := make([]eventstore.RecordedEvent, len(evs))
	for i, e := range evs {
		out[i] = recorded(e)
	}
	return out, nil
}

// readRecords is readStream with the client's events, as stored.
func (s *Store) readRecords(ctx context.Context, stream string, dir esdb.Direction, from esdb.StreamPosition, count uint64) ([]*esdb.RecordedEvent, error) {
	opts := esdb.ReadStreamOptions{Direction: dir, From: from}
	evs, err := call(ctx, s.conn, true, func(ctx context.Context, c *esdb.Client) ([]*esdb.RecordedEvent, error) {
		rs, err := c.ReadStream(ctx, stream, opts, count)
		if err != nil {
			return nil, err
		}
		defer rs.Close()
		var out []*esdb.RecordedEvent
		for {
			ev, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return out, err
			}
			if e := ev.OriginalEvent(); e != nil {
				out = append(out, e)
			}
		}
	})
	if err != nil {
		if streamMissing(err) {
			return nil, fmt.Errorf("read %q: %w", stream, eventstore.ErrStreamNotFound)
		}
		return nil, fmt.Errorf("read %q: %w", stream, mapErr(ctx, err))
	}
	return evs, nil
}

// streamMissing reports whether a stream read failed because the stream
// does not exist (the server's stream-not-found reply, which the client
// turns into a resource-not-found error that wraps no gRPC status) or was
// deleted.
func streamMissing(err error) bool {
	var e *esdb.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() {
	case esdb.ErrorCodeStreamDeleted:
		return true
	case esdb.ErrorCodeResourceNotFound:
		_, isStatus := status.FromError(e.Err())
		return !isStatus
	}
	return false
}

// recorded converts a client event. Its time is the server's created
// time (100 ns ticks since the Unix epoch, in UTC). User metadata that is
// not the port's JSON envelope (an event written by another program) is
// left zero rather than failing every reader of it.
func recorded(e *esdb.RecordedEvent) eventstore.RecordedEvent {
	var md eventstore.Metadata
	if len(e.UserMetadata) > 0 {
		_ = json.Unmarshal(e.UserMetadata, &md)
	}
	return eventstore.RecordedEvent{
		ID:         e.EventID,
		StreamID:   e.StreamID,
		Version:    int64(e.EventNumber),
		Position:   position(e.Position),
		Type:       e.EventType,
		Data:       e.Data,
		Metadata:   md,
		RecordedAt: e.CreatedDate,
	}
}

// position converts a client $all position.
func position(p esdb.Position) eventstore.Position {
	return eventstore.Position{Commit: p.Commit, Prepare: p.Prepare}
}
