package kurrentdbtest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// ErrClosed is returned by Restart after Close.
var ErrClosed = errors.New("kurrentdbtest: server closed")

// Server is a running double: one in-memory KurrentDB node speaking the
// client gRPC protocol on a TCP address. Its log outlives Restart; Close
// ends it. All methods are safe for concurrent use.
type Server struct {
	opts   Options
	log    *eventLog
	faults *faults
	cert   *tls.Certificate // nil when plaintext

	mu     sync.Mutex
	addr   string        // host:port, fixed by the first listen
	grpc   *grpc.Server  // nil once closed
	served chan struct{} // closed when the current grpc.Server stops serving
	closed bool
}

// Start runs a double on 127.0.0.1 on a free port and closes it when tb
// ends. It fails tb when the options are invalid or nothing can listen.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := Listen("127.0.0.1:0", opts)
	if err != nil {
		tb.Fatalf("start KurrentDB double: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Listen runs a double on addr ("host:port"; port 0 picks a free one). It
// writes the node's start-up system events (see the package doc) before it
// accepts connections. Errors: invalid options, or addr cannot be listened
// on.
func Listen(addr string, opts Options) (*Server, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: newEventLog(opts.RecentIDs), faults: newFaults()}
	if opts.TLS {
		cert, err := selfSignedCertificate()
		if err != nil {
			return nil, err
		}
		s.cert = &cert
	}
	s.log.writeStartupEvents()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kurrentdbtest: listen on %s: %w", addr, err)
	}
	s.addr = lis.Addr().String()
	s.serve(lis)
	return s, nil
}

// Addr returns the "host:port" the double listens on; it stays the same
// across Restart.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL returns a v4 connection string for the double, such as
// "esdb://127.0.0.1:41234?tls=false", or with TLS
// "esdb://user:pass@127.0.0.1:41234?tls=true&tlsVerifyCert=false".
func (s *Server) URL() string {
	u := url.URL{Scheme: "esdb", Host: s.Addr(), RawQuery: "tls=false"}
	if s.opts.TLS {
		u.RawQuery = "tls=true&tlsVerifyCert=false"
	}
	if s.opts.Username != "" {
		u.User = url.UserPassword(s.opts.Username, s.opts.Password)
	}
	return u.String()
}

// Close stops the double: it drops every connection and open call and
// releases the address. Calling it again does nothing.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
	s.closed = true
}

// Restart simulates a node restart: it drops every connection and open
// call, forgets the weak-idempotency cache (notes §3: it is not rebuilt on
// restart) and listens again on the same address. The log, streams and
// strong idempotency survive. As after a real restart, calls on a
// connection the client has not yet seen close may fail with Unavailable
// ("error reading from server: EOF"); the v4 client reconnects after it.
// Errors: ErrClosed, or the address cannot be listened on again (the
// double is then closed).
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.stopLocked()
	s.log.forgetRecentIDs()
	lis, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.closed = true
		return fmt.Errorf("kurrentdbtest: listen again on %s: %w", s.addr, err)
	}
	s.serve(lis)
	return nil
}

// Down takes the node down until Up, keeping its log: it drops every
// connection and open call and releases the address, so the client finds
// nothing listening there (an outage, a node stopped for maintenance).
// Errors: ErrClosed.
func (s *Server) Down() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.stopLocked()
	return nil
}

// Up brings a node taken Down back on the same address, with its log and
// streams; like Restart it forgets the weak-idempotency cache. It does
// nothing if the node is up. Errors: ErrClosed, or the address cannot be
// listened on again (the double is then closed).
func (s *Server) Up() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.grpc != nil {
		return nil
	}
	s.log.forgetRecentIDs()
	lis, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.closed = true
		return fmt.Errorf("kurrentdbtest: listen again on %s: %w", s.addr, err)
	}
	s.serve(lis)
	return nil
}

// serve starts a fresh grpc.Server on lis. The caller holds s.mu or owns s.
func (s *Server) serve(lis net.Listener) {
	gs := grpc.NewServer(s.serverOptions()...)
	api.RegisterStreamsServer(gs, &streamsService{log: s.log, faults: s.faults, maxAppendSize: s.opts.MaxAppendSize})
	serverfeatures.RegisterServerFeaturesServer(gs, &featuresService{version: s.opts.ServerVersion})
	gossip.RegisterGossipServer(gs, newGossipService(s.addr, s.faults))
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis) // returns when gs stops; nothing to report
	}()
	s.grpc, s.served = gs, served
}

// stopLocked stops the current grpc.Server, if any, and waits until it no
// longer serves. The caller holds s.mu.
func (s *Server) stopLocked() {
	if s.grpc == nil {
		return
	}
	s.grpc.Stop()
	<-s.served
	s.grpc, s.served = nil, nil
}

// serverOptions returns the grpc.Server options: the keepalive policy, the
// node's receive limit, TLS and the gate that applies credentials and
// injected faults.
func (s *Server) serverOptions() []grpc.ServerOption {
	g := gate{faults: s.faults, username: s.opts.Username, password: s.opts.Password}
	opts := []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(enforcementPolicy(s.opts)),
		grpc.MaxRecvMsgSize(maxReceiveSize),
		grpc.ChainUnaryInterceptor(g.unary),
		grpc.ChainStreamInterceptor(g.stream),
	}
	if s.cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{
			Certificates: []tls.Certificate{*s.cert},
			MinVersion:   tls.VersionTLS12,
		})))
	}
	return opts
}

// enforcementPolicy is the keepalive policy the double enforces: pings at
// most every KeepaliveMinTime, also without open streams (notes §2).
func enforcementPolicy(o Options) keepalive.EnforcementPolicy {
	return keepalive.EnforcementPolicy{MinTime: o.KeepaliveMinTime, PermitWithoutStream: true}
}
