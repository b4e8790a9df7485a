package kurrentdbtest

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
)

// Metadata keys of an event on the wire (notes §2).
const (
	metaType        = "type"
	metaContentType = "content-type"
	metaCreated     = "created"
)

// parseUUID reads a wire UUID in either form: structured (two big-endian
// int64 halves) or string.
func parseUUID(u *shared.UUID) (uuid.UUID, error) {
	if s := u.GetStructured(); s != nil {
		var id uuid.UUID
		binary.BigEndian.PutUint64(id[:8], uint64(s.GetMostSignificantBits()))
		binary.BigEndian.PutUint64(id[8:], uint64(s.GetLeastSignificantBits()))
		return id, nil
	}
	if u.GetString_() != "" {
		id, err := uuid.Parse(u.GetString_())
		if err != nil {
			return uuid.Nil, fmt.Errorf("event id %q: %w", u.GetString_(), err)
		}
		return id, nil
	}
	return uuid.Nil, fmt.Errorf("event id missing")
}

// wireUUID writes id in the form the read asked for.
func wireUUID(id uuid.UUID, asString bool) *shared.UUID {
	if asString {
		return &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}}
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(binary.BigEndian.Uint64(id[:8])),
		LeastSignificantBits: int64(binary.BigEndian.Uint64(id[8:])),
	}}}
}

// parseProposal reads one proposed event. Its metadata must carry "type"
// and "content-type" (notes §3); "created" and other keys are ignored.
func parseProposal(m *api.AppendReq_ProposedMessage) (proposal, error) {
	id, err := parseUUID(m.GetId())
	if err != nil {
		return proposal{}, err
	}
	eventType, ok := m.GetMetadata()[metaType]
	if !ok {
		return proposal{}, fmt.Errorf("event %s: required metadata %q missing", id, metaType)
	}
	contentType, ok := m.GetMetadata()[metaContentType]
	if !ok {
		return proposal{}, fmt.Errorf("event %s: required metadata %q missing", id, metaContentType)
	}
	return proposal{id: id, eventType: eventType, contentType: contentType,
		data: nonNil(m.GetData()), meta: nonNil(m.GetCustomMetadata())}, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// parseExpectation reads an append's expected revision; an absent option
// means any.
func parseExpectation(o *api.AppendReq_Options) expectation {
	switch v := o.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Revision:
		return expectation{kind: expectRevision, revision: v.Revision}
	case *api.AppendReq_Options_NoStream:
		return expectation{kind: expectNoStream}
	case *api.AppendReq_Options_StreamExists:
		return expectation{kind: expectStreamExists}
	}
	return expectation{kind: expectAny}
}

// parseTombstoneExpectation reads a tombstone's expected revision.
func parseTombstoneExpectation(o *api.TombstoneReq_Options) expectation {
	switch v := o.GetExpectedStreamRevision().(type) {
	case *api.TombstoneReq_Options_Revision:
		return expectation{kind: expectRevision, revision: v.Revision}
	case *api.TombstoneReq_Options_NoStream:
		return expectation{kind: expectNoStream}
	case *api.TombstoneReq_Options_StreamExists:
		return expectation{kind: expectStreamExists}
	}
	return expectation{kind: expectAny}
}

// streamFrom reads where a stream read or subscription starts.
func streamFrom(o *api.ReadReq_Options_StreamOptions) from {
	switch v := o.GetRevisionOption().(type) {
	case *api.ReadReq_Options_StreamOptions_Revision:
		return from{kind: fromAt, at: v.Revision}
	case *api.ReadReq_Options_StreamOptions_End:
		return from{kind: fromEnd}
	}
	return from{kind: fromStart}
}

// allFrom reads where an $all read or subscription starts.
func allFrom(o *api.ReadReq_Options_AllOptions) from {
	switch v := o.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Position:
		return from{kind: fromAt, at: v.Position.GetPreparePosition(), commit: v.Position.GetCommitPosition()}
	case *api.ReadReq_Options_AllOptions_End:
		return from{kind: fromEnd}
	}
	return from{kind: fromStart}
}

// eventResponse is the read reply carrying r. Its metadata always holds
// "type", "content-type" and "created" (notes §2: the v4 client calls
// log.Fatalf on an event without "created").
func eventResponse(r *record, uuidAsString bool) *api.ReadResp {
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               wireUUID(r.id, uuidAsString),
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
			StreamRevision:   r.revision,
			PreparePosition:  r.position,
			CommitPosition:   r.position,
			Metadata: map[string]string{
				metaType:        r.eventType,
				metaContentType: r.contentType,
				metaCreated:     strconv.FormatInt(r.created, 10),
			},
			CustomMetadata: r.meta,
			Data:           r.data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.position},
	}}}
}

// appendResponse is the Append reply for out: success or wrong expected
// version, both normal responses (notes §2).
func appendResponse(out appendOutcome, exp expectation) *api.AppendResp {
	if out.ok {
		s := &api.AppendResp_Success{}
		if out.noStream {
			s.CurrentRevisionOption = &api.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
		} else {
			s.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: out.current}
		}
		if out.hasPosition {
			s.PositionOption = &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{
				CommitPosition: out.position, PreparePosition: out.position}}
		} else {
			s.PositionOption = &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}
		}
		return &api.AppendResp{Result: &api.AppendResp_Success_{Success: s}}
	}
	return &api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: wrongExpectedVersion(out, exp)}}
}

// wrongExpectedVersion fills both the current fields and the legacy
// 20.6.0 ones, as a node does.
func wrongExpectedVersion(out appendOutcome, exp expectation) *api.AppendResp_WrongExpectedVersion {
	w := &api.AppendResp_WrongExpectedVersion{}
	if out.noStream {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: &shared.Empty{}}
	} else {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: out.current}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: out.current}
	}
	switch exp.kind {
	case expectAny:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_Any_20_6_0{Any_20_6_0: &shared.Empty{}}
	case expectStreamExists:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_StreamExists_20_6_0{StreamExists_20_6_0: &shared.Empty{}}
	case expectNoStream:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
	case expectRevision:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: exp.revision}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: exp.revision}
	}
	return w
}
