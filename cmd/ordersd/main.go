// Command ordersd is the Orders server. By default it runs every role in
// one process: the command API (with the payment webhook), the query API,
// the projections, the process manager and, when
// FAKE_PAYMENT_ENABLED, the fake payment provider; --roles (or
// ORDERS_ROLES) runs any subset, so each can be scaled on its own. Every
// process serves /healthz, /readyz and /metrics on HTTP_ADDR.
//
// It prepares the database (creates it if missing, migrates it unless
// MIGRATE_ON_START=false) and stops gracefully on SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/orders-reference/orders/internal/config"
	"github.com/orders-reference/orders/internal/logging"
	"github.com/orders-reference/orders/internal/tracing/otlp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the process at once
	}()
	os.Exit(start(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// start parses the command line and the environment, then runs the server
// until ctx ends; it returns the exit code.
func start(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("ordersd", flag.ContinueOnError)
	flags.SetOutput(stderr)
	roles := flags.String("roles", "", "comma-separated roles to run: "+fmt.Sprint(config.AllRoles)+" or all (default: ORDERS_ROLES, else all)")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if *roles != "" {
		environ = append(environ, "ORDERS_ROLES="+*roles)
	}
	cfg, err := config.Load(environ)
	if err != nil {
		fmt.Fprintln(stderr, "ordersd:", err)
		return 2
	}
	tracingCfg, err := otlp.Load(environ)
	if err != nil {
		fmt.Fprintln(stderr, "ordersd:", err)
		return 2
	}
	logger := logging.New(stdout, cfg.LogLevel)
	// go-redis prints its own lines to stderr past the JSON logs; route
	// them through slog (its API is a process-wide setting).
	redis.SetLogger(redisLogger{logger})
	tel, stopTracing, err := startTracing(ctx, tracingCfg, logger)
	if err != nil {
		logger.Error("cannot set up tracing", "error", err)
		return 1
	}
	defer stopTracing()
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		logger.Error("cannot listen", "addr", cfg.HTTPAddr, "error", err)
		return 1
	}
	if err := run(ctx, cfg, logger, ln, tel); err != nil {
		logger.Error("ordersd stopped", "error", err)
		return 1
	}
	logger.Info("ordersd stopped")
	return 0
}

// redisLogger is go-redis's logger as slog records, at DEBUG: it logs
// failed dials and pool trouble, without the request's ids, and the rate
// limiter already logs each failure it meets, with them (and /readyz
// reports Redis). Its lines mostly begin with "redis: " already.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if !strings.HasPrefix(msg, "redis: ") {
		msg = "redis: " + msg
	}
	l.log.DebugContext(ctx, msg)
}
