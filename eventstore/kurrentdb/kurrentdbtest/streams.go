package kurrentdbtest

import (
	"context"
	"errors"
	"io"
	"strconv"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// streamsService implements the Streams service: Append, Read (reads and
// subscriptions) and Tombstone. Delete (soft delete) and BatchAppend,
// which the v4 client never uses for appends (notes §2), answer
// Unimplemented.
type streamsService struct {
	api.UnimplementedStreamsServer
	log           *eventLog
	faults        *faults
	maxAppendSize int
}

// Append reads the options message and then the proposed events, and
// replies success or wrong expected version (notes §2). Errors:
// InvalidArgument for a malformed request, an event without "type" or
// "content-type", or an append larger than MaxAppendSize (with the
// trailer "exception: maximum-append-size-exceeded"); FailedPrecondition
// with "exception: stream-deleted" for a tombstoned stream (notes §3).
// The request is read to its end before any reply.
func (s *streamsService) Append(srv api.Streams_AppendServer) error {
	name, exp, ps, err := s.readAppend(srv)
	if err != nil {
		return err
	}
	out, err := s.log.appendEvents(name, exp, ps)
	var deleted errStreamDeleted
	if errors.As(err, &deleted) {
		return streamDeletedError(srv, deleted.stream)
	}
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	return srv.SendAndClose(appendResponse(out, exp))
}

// readAppend reads a whole Append request: the stream, the expected
// revision and the proposed events.
func (s *streamsService) readAppend(srv api.Streams_AppendServer) (string, expectation, []proposal, error) {
	var (
		opts *api.AppendReq_Options
		ps   []proposal
		size int
		bad  error
	)
	for {
		msg, err := srv.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", expectation{}, nil, err
		}
		if o := msg.GetOptions(); o != nil {
			if opts != nil && bad == nil {
				bad = status.Error(codes.InvalidArgument, "append options sent twice")
			}
			opts = o
			continue
		}
		m := msg.GetProposedMessage()
		size += proto.Size(m)
		if bad != nil || size > s.maxAppendSize {
			continue // keep reading so that the client's sends succeed
		}
		if opts == nil {
			bad = status.Error(codes.InvalidArgument, "an append must start with its options")
			continue
		}
		p, err := parseProposal(m)
		if err != nil {
			bad = status.Error(codes.InvalidArgument, err.Error())
			continue
		}
		ps = append(ps, p)
	}
	switch {
	case size > s.maxAppendSize:
		srv.SetTrailer(metadata.Pairs("exception", "maximum-append-size-exceeded",
			"maximum-append-size", strconv.Itoa(s.maxAppendSize)))
		return "", expectation{}, nil, status.Errorf(codes.InvalidArgument,
			"Maximum Append Size of %d Exceeded.", s.maxAppendSize)
	case bad != nil:
		return "", expectation{}, nil, bad
	case opts == nil:
		return "", expectation{}, nil, status.Error(codes.InvalidArgument, "an append must start with its options")
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	if name == "" || name == "$all" {
		return "", expectation{}, nil, status.Errorf(codes.InvalidArgument, "cannot append to stream %q", name)
	}
	return name, parseExpectation(opts), ps, nil
}

// Read serves reads with a count and subscriptions (notes §2). Errors:
// InvalidArgument for malformed options or an $all position that is not a
// record boundary; FailedPrecondition with "exception: stream-deleted" for
// a tombstoned stream. A stream without events is a stream_not_found
// reply, not an error.
func (s *streamsService) Read(req *api.ReadReq, srv api.Streams_ReadServer) error {
	o := req.GetOptions()
	if o == nil {
		return status.Error(codes.InvalidArgument, "read options missing")
	}
	if o.GetSubscription() != nil {
		return s.subscribe(o, srv)
	}
	if _, ok := o.GetCountOption().(*api.ReadReq_Options_Count); !ok {
		return status.Error(codes.InvalidArgument, "read needs a count or a subscription")
	}
	asString := o.GetUuidOption().GetString_() != nil
	backwards := o.GetReadDirection() == api.ReadReq_Options_Backwards
	var records []*record
	switch so := o.GetStreamOption().(type) {
	case *api.ReadReq_Options_Stream:
		name := string(so.Stream.GetStreamIdentifier().GetStreamName())
		res := s.log.readStream(name, streamFrom(so.Stream), backwards, o.GetCount())
		switch {
		case res.deleted:
			return streamDeletedError(srv, name)
		case res.notFound:
			return srv.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
				StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(name)}}}})
		}
		records = res.records
	case *api.ReadReq_Options_All:
		f, err := newFilter(o.GetFilter())
		if err != nil {
			return err
		}
		records, err = s.log.readAll(allFrom(so.All), backwards, o.GetCount(), f.match)
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
	default:
		return status.Error(codes.InvalidArgument, "read needs a stream or $all")
	}
	for _, r := range records {
		if err := srv.Send(eventResponse(r, asString)); err != nil {
			return err
		}
	}
	return nil
}

// Tombstone deletes a stream for ever: it writes a $streamDeleted record
// and from then on reads, subscriptions and appends of the stream fail
// with stream-deleted. The expected revision is checked as for an append;
// when it does not hold the call fails with FailedPrecondition and the
// trailers "exception: wrong-expected-version", "actual-version" and
// "expected-version" (the double's reading of notes §3; see §5).
func (s *streamsService) Tombstone(ctx context.Context, req *api.TombstoneReq) (*api.TombstoneResp, error) {
	name := string(req.GetOptions().GetStreamIdentifier().GetStreamName())
	if name == "" || name == "$all" {
		return nil, status.Errorf(codes.InvalidArgument, "cannot tombstone stream %q", name)
	}
	exp := parseTombstoneExpectation(req.GetOptions())
	r, head, err := s.log.tombstone(name, exp)
	if errors.As(err, new(errStreamDeleted)) {
		return nil, streamDeletedError(unaryTrailer{ctx}, name)
	}
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if r == nil {
		_ = grpc.SetTrailer(ctx, metadata.Pairs(
			"exception", "wrong-expected-version",
			"actual-version", revisionText(head.current, head.noStream),
			"expected-version", expectationText(exp),
		)) // fails only once the call has ended
		return nil, status.Error(codes.FailedPrecondition, "wrong expected version")
	}
	return &api.TombstoneResp{PositionOption: &api.TombstoneResp_Position_{Position: &api.TombstoneResp_Position{
		CommitPosition: r.position, PreparePosition: r.position}}}, nil
}

// trailerSetter is where an error's trailer goes: a server stream, or the
// context of a unary call.
type trailerSetter interface{ SetTrailer(metadata.MD) }

type unaryTrailer struct{ ctx context.Context }

func (u unaryTrailer) SetTrailer(md metadata.MD) { _ = grpc.SetTrailer(u.ctx, md) }

// streamDeletedError is a node's answer for a tombstoned stream:
// FailedPrecondition with "exception: stream-deleted" and the stream's
// name (notes §3; the v4 client reads "stream-name" unconditionally).
func streamDeletedError(t trailerSetter, name string) error {
	t.SetTrailer(metadata.Pairs("exception", "stream-deleted", "stream-name", name))
	return status.Errorf(codes.FailedPrecondition, "Event stream '%s' is deleted.", name)
}

// revisionText renders a stream revision for a trailer; -1 is no stream.
func revisionText(rev uint64, noStream bool) string {
	if noStream {
		return "-1"
	}
	return strconv.FormatUint(rev, 10)
}

// expectationText renders an expected revision as a node's trailer does:
// -2 any, -1 no stream, -4 stream exists, else the revision.
func expectationText(exp expectation) string {
	switch exp.kind {
	case expectAny:
		return "-2"
	case expectNoStream:
		return "-1"
	case expectStreamExists:
		return "-4"
	}
	return strconv.FormatUint(exp.revision, 10)
}
