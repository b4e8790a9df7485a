package redistest

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// The addresses below stand for a Redis that is down, each in one of the
// ways an outage looks to a client.

// Refusing returns an address where nothing listens: every connect is
// refused at once (Redis shut down).
func Refusing(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Silent returns an address that accepts connections and never answers
// (a hung Redis, or a proxy that never forwards), and the number of
// connections it accepted so far: one per dial.
func Silent(t testing.TB) (string, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	var (
		accepted atomic.Int32
		mu       sync.Mutex
		conns    []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String(), &accepted
}
