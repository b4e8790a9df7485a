package kurrentdbtest

import (
	"sync"

	"google.golang.org/grpc/codes"
)

// faults holds the failures injected into a double. They survive Restart.
type faults struct {
	mu       sync.Mutex
	failN    int
	failCode codes.Code
	leader   string        // "host:port" of the leader to redirect to; "" for none
	dropped  chan struct{} // closed by DropSubscriptions
}

func newFaults() *faults {
	return &faults{dropped: make(chan struct{})}
}

// FailNext makes the next n calls to the Streams service (Read — reads and
// subscriptions —, Append, Tombstone) fail with a gRPC status of the given
// code, as a node that is not ready answers Unavailable (notes §3). An
// Append is read to its end before it fails, so the v4 client sees the
// status rather than an EOF from Send. The v4 client reconnects after an
// Unavailable. n ≤ 0 clears the failures still pending.
func (s *Server) FailNext(n int, code codes.Code) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.failN, s.faults.failCode = max(n, 0), code
}

// RedirectToLeader makes the double a follower whose leader is at addr
// ("host:port"): every Streams call fails with NotFound and the trailers
// "exception: not-leader", "leader-endpoint-host" and
// "leader-endpoint-port" (notes §3), on which the v4 client reconnects to
// addr; Gossip.Read reports this node as a follower and addr as the
// leader. "" makes the double the leader again.
func (s *Server) RedirectToLeader(addr string) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.leader = addr
}

// DropSubscriptions ends every open subscription, to $all or to a stream,
// with the gRPC status Unavailable. Subscriptions opened afterwards are not
// affected.
func (s *Server) DropSubscriptions() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	close(s.faults.dropped)
	s.faults.dropped = make(chan struct{})
}

// dropSignal returns the channel the next DropSubscriptions closes.
func (f *faults) dropSignal() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dropped
}

// leaderAddr returns the leader to redirect to, or "".
func (f *faults) leaderAddr() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader
}

// takeFailure consumes one pending failure and returns its code.
func (f *faults) takeFailure() (codes.Code, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failN == 0 {
		return codes.OK, false
	}
	f.failN--
	return f.failCode, true
}
