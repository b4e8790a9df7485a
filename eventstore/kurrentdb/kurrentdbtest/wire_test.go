package kurrentdbtest_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"strconv"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/orders-reference/orders/eventstore/kurrentdb/kurrentdbtest"
)

// The tests in this file speak raw gRPC, to check what the v4 client
// hides: trailers, required metadata, the shape of read replies. They run
// against a real node too, except the NotLeader one.

// rawStreams returns a Streams client on the target's address.
func (tg *target) rawStreams() api.StreamsClient {
	tg.t.Helper()
	cfg, err := esdb.ParseConnectionString(tg.url)
	if err != nil || cfg.Address == "" {
		tg.t.Skipf("raw gRPC needs a single-host connection string: %v", err)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if !cfg.DisableTLS {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
			InsecureSkipVerify: cfg.SkipCertificateVerification, RootCAs: cfg.RootCAs}))}
		if cfg.Username != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(basicAuth(cfg.Username+":"+cfg.Password)))
		}
	}
	conn, err := grpc.NewClient(cfg.Address, opts...)
	if err != nil {
		tg.t.Fatalf("dial %s: %v", cfg.Address, err)
	}
	tg.t.Cleanup(func() { _ = conn.Close() })
	return api.NewStreamsClient(conn)
}

type basicAuth string

func (b basicAuth) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(b))}, nil
}

func (basicAuth) RequireTransportSecurity() bool { return true }

// proposed returns a proposed message with the given metadata.
func proposed(md map[string]string, data []byte) *api.AppendReq_ProposedMessage {
	return &api.AppendReq_ProposedMessage{
		Id:       &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}},
		Metadata: md, Data: data, CustomMetadata: []byte{},
	}
}

// rawAppend appends msgs to stream expecting any and returns the reply or
// the status, with the call's trailer.
func (tg *target) rawAppend(stream string, msgs ...*api.AppendReq_ProposedMessage) (*api.AppendResp, metadata.MD, error) {
	var trailer metadata.MD
	call, err := tg.rawStreams().Append(tg.ctx(), grpc.Trailer(&trailer))
	if err != nil {
		return nil, trailer, err
	}
	reqs := []*api.AppendReq{{Content: &api.AppendReq_Options_{Options: &api.AppendReq_Options{
		StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte(stream)},
		ExpectedStreamRevision: &api.AppendReq_Options_Any{Any: &shared.Empty{}},
	}}}}
	for _, m := range msgs {
		reqs = append(reqs, &api.AppendReq{Content: &api.AppendReq_ProposedMessage_{ProposedMessage: m}})
	}
	for _, r := range reqs {
		if err := call.Send(r); err != nil {
			break // the status comes with CloseAndRecv
		}
	}
	resp, err := call.CloseAndRecv()
	return resp, trailer, err
}

// rawRead reads up to 100 events with the options the v4 client sends and
// returns every reply, the trailer and the final error.
func (tg *target) rawRead(o *api.ReadReq_Options) ([]*api.ReadResp, metadata.MD, error) {
	var trailer metadata.MD
	o.CountOption = &api.ReadReq_Options_Count{Count: 100}
	o.FilterOption = &api.ReadReq_Options_NoFilter{NoFilter: &shared.Empty{}}
	call, err := tg.rawStreams().Read(tg.ctx(), &api.ReadReq{Options: o}, grpc.Trailer(&trailer))
	if err != nil {
		return nil, trailer, err
	}
	var out []*api.ReadResp
	for {
		resp, err := call.Recv()
		if errors.Is(err, io.EOF) {
			return out, trailer, nil
		}
		if err != nil {
			return out, trailer, err
		}
		out = append(out, resp)
	}
}

func streamOptions(stream string) *api.ReadReq_Options_Stream {
	return &api.ReadReq_Options_Stream{Stream: &api.ReadReq_Options_StreamOptions{
		StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)},
		RevisionOption:   &api.ReadReq_Options_StreamOptions_Start{Start: &shared.Empty{}},
	}}
}

// An event without "type" or "content-type" metadata is invalid (notes
// §3); with both it is written.
func TestWireRequiredMetadata(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	s := tg.stream("wire-md")
	for _, md := range []map[string]string{
		{"content-type": "application/json"},
		{"type": "Tested"},
	} {
		if _, _, err := tg.rawAppend(s, proposed(md, []byte(`{}`))); grpcCode(err) != codes.InvalidArgument {
			t.Fatalf("append with metadata %v: %v, want InvalidArgument", md, err)
		}
	}
	resp, _, err := tg.rawAppend(s, proposed(map[string]string{"type": "Tested", "content-type": "application/json"}, []byte(`{}`)))
	if err != nil || resp.GetSuccess() == nil {
		t.Fatalf("append with both keys = %v, %v; want success", resp, err)
	}
}

// Too large an append fails with InvalidArgument and the trailer
// "exception: maximum-append-size-exceeded" (notes §3).
func TestWireAppendTooLarge(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{MaxAppendSize: 4096})
	limit := 4096
	if tg.double == nil {
		limit = kurrentdbtest.DefaultMaxAppendSize
	}
	md := map[string]string{"type": "Big", "content-type": "application/octet-stream"}
	_, trailer, err := tg.rawAppend(tg.stream("wire-big"), proposed(md, make([]byte, limit+1)))
	if grpcCode(err) != codes.InvalidArgument {
		t.Fatalf("append of %d bytes: %v, want InvalidArgument", limit+1, err)
	}
	if got := trailer.Get("exception"); len(got) != 1 || got[0] != "maximum-append-size-exceeded" {
		t.Fatalf("trailer exception = %v, want maximum-append-size-exceeded", got)
	}
}

// A tombstoned stream answers reads and appends with FailedPrecondition
// and the trailers "exception: stream-deleted" and "stream-name" (notes
// §3; the v4 client reads "stream-name" unconditionally).
func TestWireStreamDeleted(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	s := tg.stream("wire-gone")
	tg.mustAppend(s, esdb.NoStream{}, newEvent("Tested"))
	if _, err := tg.client.TombstoneStream(tg.ctx(), s, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Any{}}); err != nil {
		t.Fatalf("tombstone: %v", err)
	}
	_, readTrailer, readErr := tg.rawRead(&api.ReadReq_Options{StreamOption: streamOptions(s)})
	_, appendTrailer, appendErr := tg.rawAppend(s, proposed(map[string]string{"type": "T", "content-type": "application/json"}, nil))
	for name, c := range map[string]struct {
		err     error
		trailer metadata.MD
	}{"read": {readErr, readTrailer}, "append": {appendErr, appendTrailer}} {
		if grpcCode(c.err) != codes.FailedPrecondition {
			t.Fatalf("%s of a tombstoned stream: %v, want FailedPrecondition", name, c.err)
		}
		if ex, sn := c.trailer.Get("exception"), c.trailer.Get("stream-name"); len(ex) != 1 || ex[0] != "stream-deleted" || len(sn) != 1 || sn[0] != s {
			t.Fatalf("%s trailer = %v, want exception stream-deleted and stream-name %s", name, c.trailer, s)
		}
	}
}

// Read replies to the v4 client's read options are only events or
// stream_not_found (notes §2: anything else makes the client panic), and
// every event carries "type", "content-type" and a numeric "created".
// The id comes back in the form the read asked for.
func TestWireReadReplies(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	s := tg.stream("wire-read")
	e := newEvent("Tested")
	res := tg.mustAppend(s, esdb.NoStream{}, e)

	missing, _, err := tg.rawRead(&api.ReadReq_Options{StreamOption: streamOptions(tg.stream("wire-missing"))})
	if err != nil || len(missing) != 1 || missing[0].GetStreamNotFound() == nil {
		t.Fatalf("read of a missing stream = %v, %v; want one stream_not_found", missing, err)
	}
	byStream, _, err := tg.rawRead(&api.ReadReq_Options{StreamOption: streamOptions(s),
		UuidOption: &api.ReadReq_Options_UUIDOption{Content: &api.ReadReq_Options_UUIDOption_String_{String_: &shared.Empty{}}}})
	if err != nil || len(byStream) != 1 || byStream[0].GetEvent().GetEvent().GetId().GetString_() != e.EventID.String() {
		t.Fatalf("read of the stream = %v, %v; want the event with its id as a string", byStream, err)
	}
	byAll, _, err := tg.rawRead(&api.ReadReq_Options{StreamOption: &api.ReadReq_Options_All{All: &api.ReadReq_Options_AllOptions{
		AllOption: &api.ReadReq_Options_AllOptions_Position{Position: &api.ReadReq_Options_Position{
			CommitPosition: res.CommitPosition, PreparePosition: res.PreparePosition}}}}})
	if err != nil || len(byAll) == 0 {
		t.Fatalf("read of $all = %v, %v; want events", byAll, err)
	}
	for _, r := range append(byStream, byAll...) {
		ev := r.GetEvent().GetEvent()
		if ev == nil {
			t.Fatalf("read reply %v is not an event", r)
		}
		md := ev.GetMetadata()
		if _, err := strconv.ParseInt(md["created"], 10, 64); err != nil || md["type"] == "" || md["content-type"] == "" {
			t.Fatalf("event metadata %v: want type, content-type and numeric created", md)
		}
	}
}

// A follower answers NotFound with "exception: not-leader" and the
// leader's endpoint in the trailers (notes §3), on reads and appends.
func TestWireNotLeader(t *testing.T) {
	tg := newTarget(t, kurrentdbtest.Options{})
	tg.doubleOnly().RedirectToLeader("127.0.0.1:2113")
	_, readTrailer, readErr := tg.rawRead(&api.ReadReq_Options{StreamOption: streamOptions(tg.stream("wire-nl"))})
	_, appendTrailer, appendErr := tg.rawAppend(tg.stream("wire-nl"), proposed(map[string]string{"type": "T", "content-type": "application/json"}, nil))
	for name, c := range map[string]struct {
		err     error
		trailer metadata.MD
	}{"read": {readErr, readTrailer}, "append": {appendErr, appendTrailer}} {
		if grpcCode(c.err) != codes.NotFound {
			t.Fatalf("%s on a follower: %v, want NotFound", name, c.err)
		}
		want := metadata.Pairs("exception", "not-leader", "leader-endpoint-host", "127.0.0.1", "leader-endpoint-port", "2113")
		for k, v := range want {
			if got := c.trailer.Get(k); len(got) != 1 || got[0] != v[0] {
				t.Fatalf("%s trailer %s = %v, want %v", name, k, got, v)
			}
		}
	}
}
