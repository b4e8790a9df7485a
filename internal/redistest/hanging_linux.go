package redistest

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// Hanging returns an address whose connects hang until the client's dial
// timeout (a host that is gone, or a firewall that drops packets): a
// listener with a backlog of 0 that never accepts, its accept queue
// filled, so that the kernel drops further SYNs. The test is skipped if
// the queue cannot be filled.
func Hanging(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		t.Fatalf("redistest: %v", err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		syscall.Close(fd)
		t.Fatalf("redistest: %v", err)
	}
	f := os.NewFile(uintptr(fd), "backlog")
	l, err := net.FileListener(f) // never Accepted: it only keeps the socket open
	f.Close()
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	addr := l.Addr().String()
	for range 16 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return addr // the queue is full: this connect hung
		}
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("redistest: could not fill the listen backlog")
	return ""
}
