package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/orders-reference/orders/internal/httpx"
)

// pprofRole serves Go's profiler (net/http/pprof) on its own admin address,
// apart from the API, until ctx ends. It is opt-in (PPROF_ADDR): profiles
// reveal internals and cost CPU, so the address belongs on loopback or a
// private network.
func pprofRole(addr string, log *slog.Logger) (part, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return part{}, fmt.Errorf("PPROF_ADDR=%s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: httpx.MaxHeaderBytes}
	return part{run: []func(context.Context) error{func(ctx context.Context) error {
		log.Info("profiler listening", "addr", ln.Addr().String())
		go func() {
			<-ctx.Done()
			shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdown)
		}()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("profiler: %w", err)
		}
		return nil
	}}, close: func() { _ = ln.Close() }}, nil
}
