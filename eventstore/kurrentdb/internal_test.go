package kurrentdb

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/orders-reference/orders/eventstore"
)

// The v4 client tells the actual version only in its error text, which it
// formats itself: "wrong expected version: expecting 'E' but got 'A'".
func TestParseActual(t *testing.T) {
	cases := []struct {
		msg  string
		want int64
		ok   bool
	}{
		{"[ErrorCodeWrongExpectedVersion] an append request failed the optimistic concurrency on the server: wrong expected version: expecting '3' but got '7'", 7, true},
		{"wrong expected version: expecting 'no_stream' but got '0'", 0, true},
		{"wrong expected version: expecting 'stream_exists' but got 'no_stream'", eventstore.NoVersion, true},
		{"wrong expected version: expecting 'any' but got '-1'", eventstore.NoVersion, true},
		{"wrong expected version: expecting '9223372036854775806' but got '9223372036854775807'", 9223372036854775807, true},
		// A stream id that looks like the marker does not fool it: the
		// last occurrence counts.
		{"append to \"x but got '5'\": expecting '1' but got '2'", 2, true},
		{"wrong expected version: expecting '1' but got 'many'", 0, false},
		{"wrong expected version: expecting '1' but got '2", 0, false},
		{"wrong expected version", 0, false},
	}
	for _, c := range cases {
		got, ok := parseActual(c.msg)
		if got != c.want || ok != c.ok {
			t.Errorf("parseActual(%q) = %d, %v; want %d, %v", c.msg, got, ok, c.want, c.ok)
		}
	}
}

// No error of a connection string shows its password, however the
// password is written and wherever parsing fails.
func TestParseURLRedactsPassword(t *testing.T) {
	cases := []struct{ url, secret string }{
		{"postgres://admin:hunter2-secret@localhost:2113", "hunter2-secret"},
		{"esdb://admin:hunter2-secret@localhost:notaport?tls=false", "hunter2-secret"},
		{"kurrentdb://admin:hunter2-secret@h1:2113,h2:x?tls=false", "hunter2-secret"},
		{"esdb://admin:p%40ss%2Fword@localhost:2113/some/path", "p@ss/word"},
		{"esdb://admin:p%40ss%2Fword@localhost:2113/some/path", "p%40ss%2Fword"},
		{"esdb://admin:hunter2-secret@localhost:2113?tls=maybe", "hunter2-secret"},
		{"esdb://admin:hunter2-secret@local host:2113", "hunter2-secret"},
		{"esdb://admin:hunter2-secret@localhost:2113?a=%zz", "hunter2-secret"},
		{"esdb://:hunter2-secret@localhost:2113", "hunter2-secret"},
	}
	for _, c := range cases {
		_, err := parseURL(c.url, slog.New(slog.DiscardHandler))
		if err == nil {
			t.Errorf("%s: parsed", c.url)
			continue
		}
		if !errors.Is(err, ErrConnectionString) {
			t.Errorf("%s: %v does not wrap ErrConnectionString", c.url, err)
		}
		if strings.Contains(err.Error(), c.secret) {
			t.Errorf("%s: error shows the password: %v", c.url, err)
		}
	}
}

func TestParseURLSchemesAndSettings(t *testing.T) {
	cases := []struct {
		url      string
		discover bool
	}{
		{"esdb://localhost:2113?tls=false", false},
		{"ESDB://localhost:2113?tls=false", false},
		{"kurrentdb://localhost:2113?tls=false", false},
		{"esdb+discover://cluster.example:2113", true},
		{"kurrentdb+discover://cluster.example:2113", true},
	}
	for _, c := range cases {
		cfg, err := parseURL(c.url, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Errorf("%s: %v", c.url, err)
			continue
		}
		if cfg.DnsDiscover != c.discover {
			t.Errorf("%s: discover %v", c.url, cfg.DnsDiscover)
		}
	}
	// Settings the client does not know are dropped (and logged), the
	// others kept, whatever their case.
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg, err := parseURL("kurrentdb://admin:secret@localhost:2113?connectionName=orders&TLS=false&tlsVerifyCert=false", log)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.DisableTLS || !cfg.SkipCertificateVerification || cfg.Username != "admin" || cfg.Password != "secret" {
		t.Errorf("configuration %+v", cfg)
	}
	if !strings.Contains(logs.String(), "connectionName") {
		t.Errorf("unknown setting not logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), "secret") {
		t.Errorf("log shows the password: %s", logs.String())
	}
}

// The adapter reaches into the v4 client to release the calls stuck on a
// dead client's connection loop (conn.retire): a client upgrade that
// changes its layout must be noticed.
func TestClientLayoutKnown(t *testing.T) {
	cfg, err := parseURL("esdb://127.0.0.1:1?tls=false", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c, err := newConn(*cfg, time.Second, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if _, ok := loopChannel(c.gen.client); !ok {
		t.Fatal("the v4 client's connection loop channel is not where the adapter looks")
	}
}
