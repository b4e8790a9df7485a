package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/orders-reference/orders/eventstore/kurrentdb/kurrentdbtest"
	"github.com/orders-reference/orders/internal/redact"
)

func TestParseFlags(t *testing.T) {
	env := map[string]string{"KURRENTDB_DOUBLE_ADDR": "127.0.0.1:3113", "KURRENTDB_DOUBLE_TLS": "true"}
	addr, opts, err := parseFlags([]string{"-max-append-size", "2048"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if addr != "127.0.0.1:3113" || opts.MaxAppendSize != 2048 || !opts.TLS {
		t.Fatalf("parsed %s %+v, want the environment's address and TLS and the flag's size", addr, opts)
	}
	addr, opts, err = parseFlags(nil, func(string) string { return "" })
	if err != nil || addr != "127.0.0.1:2113" || opts != (kurrentdbtest.Options{MaxAppendSize: kurrentdbtest.DefaultMaxAppendSize}) {
		t.Fatalf("defaults: %s %+v %v", addr, opts, err)
	}
	if _, _, err := parseFlags([]string{"-tls", "maybe"}, func(string) string { return "" }); err == nil {
		t.Fatal("-tls maybe parsed")
	}
}

// The command prints a URL the v4 client can use and stops on SIGTERM.
func TestRunServesUntilSIGTERM(t *testing.T) {
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run([]string{"-addr", "127.0.0.1:0"}, func(string) string { return "" }, w) }()

	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("read URL: %v", err)
	}
	url := strings.TrimSpace(line)
	if !strings.HasPrefix(url, "esdb://127.0.0.1:") || !strings.HasSuffix(url, "?tls=false") {
		t.Fatalf("printed %q, want an esdb:// URL with tls=false", url)
	}
	cfg, err := esdb.ParseConnectionString(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdb.NoopLogging()
	client, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	event := esdb.EventData{EventID: uuid.New(), EventType: "Tested", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)}
	if _, err := client.AppendToStream(ctx, "cmd-test", esdb.AppendToStreamOptions{}, event); err != nil {
		t.Fatalf("append: %v", err)
	}

	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("run did not stop on SIGTERM")
	}
}

// Credentials: from the flags or the environment, refused without -tls,
// and never printed: the connection string shows the password as xxxxx.
func TestCredentials(t *testing.T) {
	env := map[string]string{"KURRENTDB_DOUBLE_USERNAME": "admin", "KURRENTDB_DOUBLE_PASSWORD": "env-s3cret"}
	_, opts, err := parseFlags([]string{"-tls", "true"}, func(k string) string { return env[k] })
	if err != nil || opts.Username != "admin" || opts.Password != "env-s3cret" {
		t.Fatalf("from the environment: %+v %v", opts, err)
	}
	_, opts, err = parseFlags([]string{"-tls", "true", "-username", "ops", "-password", "flag-s3cret"}, func(k string) string { return env[k] })
	if err != nil || opts.Username != "ops" || opts.Password != "flag-s3cret" {
		t.Fatalf("from the flags: %+v %v", opts, err)
	}
	if _, _, err := parseFlags([]string{"-password", "x"}, func(string) string { return "" }); err == nil {
		t.Fatal("-password without -username parsed")
	}
	if _, _, err := parseFlags([]string{"-tls", "true", "-username", "admin"}, func(string) string { return "" }); err == nil {
		t.Fatal("-username without -password parsed")
	}
	if err := run([]string{"-addr", "127.0.0.1:0", "-username", "admin", "-password", "s3cret"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("credentials without TLS served")
	}
	got := redact.URL("esdb://admin:s3cret@127.0.0.1:2113?tls=true&tlsVerifyCert=false") // what run prints
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "admin:xxxxx@127.0.0.1:2113") {
		t.Fatalf("printed %q", got)
	}
}
