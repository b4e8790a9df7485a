// Command kurrentdbdouble runs the KurrentDB protocol double
// (eventstore/kurrentdb/kurrentdbtest) as a process, so that ordersd or
// any v4 client can be pointed at it by hand:
//
//	go run ./internal/tools/kurrentdbdouble &
//	EVENTSTORE_URL='esdb://127.0.0.1:2113?tls=false' go run ./cmd/ordersd
//
// It prints the connection string on standard output once it listens and
// stops on SIGINT or SIGTERM. The log is in memory: it is lost on exit.
//
// Flags, each with an environment variable as its default:
//
//	-addr             KURRENTDB_DOUBLE_ADDR             listen address (127.0.0.1:2113)
//	-max-append-size  KURRENTDB_DOUBLE_MAX_APPEND_SIZE  max append size in bytes (1 MiB)
//	-tls              KURRENTDB_DOUBLE_TLS              serve TLS with a self-signed certificate (false)
//	-username         KURRENTDB_DOUBLE_USERNAME         require these credentials on every call (none; needs -tls)
//	-password         KURRENTDB_DOUBLE_PASSWORD         the password for -username
//
// With credentials, the printed connection string shows the password as
// xxxxx: the caller knows it, and logs should not.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/orders-reference/orders/eventstore/kurrentdb/kurrentdbtest"
	"github.com/orders-reference/orders/internal/redact"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kurrentdbdouble:", err)
		os.Exit(1)
	}
}

// run parses args, starts the double, prints its URL on out and serves
// until SIGINT or SIGTERM.
func run(args []string, getenv func(string) string, out io.Writer) error {
	addr, opts, err := parseFlags(args, getenv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := kurrentdbtest.Listen(addr, opts)
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintln(out, redact.URL(s.URL()))
	<-ctx.Done()
	return nil
}

// parseFlags reads the listen address and the double's options from args,
// defaulting to the environment.
func parseFlags(args []string, getenv func(string) string) (string, kurrentdbtest.Options, error) {
	fs := flag.NewFlagSet("kurrentdbdouble", flag.ContinueOnError)
	addr := fs.String("addr", envOr(getenv, "KURRENTDB_DOUBLE_ADDR", "127.0.0.1:2113"), "listen address")
	maxAppend := fs.String("max-append-size", envOr(getenv, "KURRENTDB_DOUBLE_MAX_APPEND_SIZE",
		strconv.Itoa(kurrentdbtest.DefaultMaxAppendSize)), "max append size in bytes")
	useTLS := fs.String("tls", envOr(getenv, "KURRENTDB_DOUBLE_TLS", "false"), "serve TLS with a self-signed certificate")
	username := fs.String("username", getenv("KURRENTDB_DOUBLE_USERNAME"), "require these credentials on every call (needs -tls)")
	password := fs.String("password", "", "the password for -username (default $KURRENTDB_DOUBLE_PASSWORD)")
	if err := fs.Parse(args); err != nil {
		return "", kurrentdbtest.Options{}, err
	}
	size, err := strconv.Atoi(*maxAppend)
	if err != nil {
		return "", kurrentdbtest.Options{}, fmt.Errorf("max append size %q: %w", *maxAppend, err)
	}
	tlsOn, err := strconv.ParseBool(*useTLS)
	if err != nil {
		return "", kurrentdbtest.Options{}, fmt.Errorf("tls %q: %w", *useTLS, err)
	}
	// The password's default is read here, not shown in -help.
	if *password == "" {
		*password = getenv("KURRENTDB_DOUBLE_PASSWORD")
	}
	if *password != "" && *username == "" {
		return "", kurrentdbtest.Options{}, errors.New("-password without -username")
	}
	if *username != "" && *password == "" {
		return "", kurrentdbtest.Options{}, errors.New("-username without -password (an empty password would let anyone in)")
	}
	return *addr, kurrentdbtest.Options{MaxAppendSize: size, TLS: tlsOn, Username: *username, Password: *password}, nil
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
