package kurrentdbtest

import (
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc/keepalive"
)

// The double tolerates the v4 client's pings: every 10 s, also without
// open streams (notes §2). The end-to-end tests below shorten the policy
// so that they take well under a second.

func TestDefaultKeepalivePolicy(t *testing.T) {
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	want := keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}
	if got := enforcementPolicy(o); got != want {
		t.Fatalf("policy %+v, want %+v", got, want)
	}
}

// Pings slower than KeepaliveMinTime on a connection without streams are
// answered, never with GOAWAY.
func TestIdlePingsTolerated(t *testing.T) {
	s := Start(t, Options{KeepaliveMinTime: 20 * time.Millisecond})
	acks, goAway := ping(t, s.Addr(), 5, 60*time.Millisecond)
	if goAway != nil || acks != 5 {
		t.Fatalf("5 idle pings 60 ms apart: %d acks, GOAWAY %v; want 5 acks and no GOAWAY", acks, goAway)
	}
}

// The control: pings faster than KeepaliveMinTime are refused with GOAWAY
// too_many_pings, as grpc-go's default policy refuses the client's.
func TestFastPingsRefused(t *testing.T) {
	s := Start(t, Options{KeepaliveMinTime: time.Hour})
	_, goAway := ping(t, s.Addr(), 5, 0)
	if goAway == nil || goAway.ErrCode != http2.ErrCodeEnhanceYourCalm || string(goAway.DebugData()) != "too_many_pings" {
		t.Fatalf("GOAWAY %v, want ENHANCE_YOUR_CALM too_many_pings", goAway)
	}
}

// ping opens a bare HTTP/2 connection to addr, sends n pings spaced by gap
// without opening a stream, and returns how many were acknowledged and the
// GOAWAY frame, if the server sent one.
func ping(t *testing.T, addr string, n int, gap time.Duration) (acks int, goAway *http2.GoAwayFrame) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatalf("preface: %v", err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatalf("settings: %v", err)
	}
	for i := range n {
		if i > 0 {
			time.Sleep(gap) // pacing the pings is what the test is about
		}
		data := [8]byte{byte(i + 1)}
		if err := fr.WritePing(false, data); err != nil {
			return acks, goAway // the server closed after GOAWAY
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return acks, goAway
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					_ = fr.WriteSettingsAck()
				}
				continue
			case *http2.GoAwayFrame:
				return acks, f
			case *http2.PingFrame:
				if !f.IsAck() || f.Data != data {
					continue
				}
				acks++
			default:
				continue
			}
			break
		}
	}
	return acks, goAway
}
