package kurrentdbtest

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"

	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// streamsPrefix prefixes the full names of the Streams service's methods.
const streamsPrefix = "/event_store.client.streams.Streams/"

// gate stands in front of the Streams service: it checks credentials when
// they are configured, then applies an injected NotLeader redirect or
// failure. Gossip and ServerFeatures pass untouched, so that the client
// can always discover and connect.
type gate struct {
	faults             *faults
	username, password string
}

func (g gate) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !strings.HasPrefix(info.FullMethod, streamsPrefix) {
		return handler(ctx, req)
	}
	if trailer, err := g.refuse(ctx); err != nil {
		if trailer != nil {
			_ = grpc.SetTrailer(ctx, trailer) // fails only after the call ended
		}
		return nil, err
	}
	return handler(ctx, req)
}

func (g gate) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !strings.HasPrefix(info.FullMethod, streamsPrefix) {
		return handler(srv, ss)
	}
	trailer, err := g.refuse(ss.Context())
	if err == nil {
		return handler(srv, ss)
	}
	if info.IsClientStream {
		if derr := drain(ss); derr != nil {
			return derr
		}
	}
	if trailer != nil {
		ss.SetTrailer(trailer)
	}
	return err
}

// refuse returns the trailer and error a Streams call ends with, or a nil
// error to let the call through.
func (g gate) refuse(ctx context.Context) (metadata.MD, error) {
	if g.username != "" && !g.authorized(ctx) {
		return nil, status.Error(codes.Unauthenticated, "bad or missing credentials")
	}
	if leader := g.faults.leaderAddr(); leader != "" {
		return notLeader(leader)
	}
	if code, ok := g.faults.takeFailure(); ok {
		return nil, status.Error(code, "failure injected by the KurrentDB double")
	}
	return nil, nil
}

// authorized reports whether the call carries the configured HTTP basic
// credentials.
func (g gate) authorized(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(g.username+":"+g.password))
	for _, got := range md.Get("authorization") {
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 {
			return true
		}
	}
	return false
}

// notLeader is a follower's answer to a call that needs the leader: NotFound
// with the leader's endpoint in the trailers (notes §3).
func notLeader(leader string) (metadata.MD, error) {
	host, port, err := net.SplitHostPort(leader)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "double: bad leader address %q: %v", leader, err)
	}
	return metadata.Pairs(
		"exception", "not-leader",
		"leader-endpoint-host", host,
		"leader-endpoint-port", port,
	), status.Error(codes.NotFound, "Leader info available")
}

// drain reads a client stream to its end, so that the client's sends all
// succeed and it reads the final status.
func drain(ss grpc.ServerStream) error {
	for {
		err := ss.RecvMsg(new(api.AppendReq))
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
