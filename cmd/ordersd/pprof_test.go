package main

import (
	"net"
	"net/http"
	"testing"

	"github.com/orders-reference/orders/internal/eventually"
)

// PPROF_ADDR serves the profiler on its own address, never on the API's.
func TestProfilerIsOptInOnItsOwnAddress(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := startServer(t, "PPROF_ADDR="+addr)
	eventually.True(t, "the profiler to answer", func() bool {
		resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if r := s.do(t, "GET", "/debug/pprof/cmdline", ""); r.Status != http.StatusNotFound {
		t.Fatalf("the API serves the profiler: %d", r.Status)
	}
}
