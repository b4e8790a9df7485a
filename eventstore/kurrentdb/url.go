package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/orders-reference/orders/internal/redact"
)

// ErrConnectionString reports a connection string New cannot use.
var ErrConnectionString = errors.New("kurrentdb: invalid connection string")

// schemes maps the accepted connection string schemes to those the v4
// client parses: it knows only esdb:// and esdb+discover://.
var schemes = map[string]string{
	"esdb":               "esdb",
	"esdb+discover":      "esdb+discover",
	"kurrentdb":          "esdb",
	"kurrentdb+discover": "esdb+discover",
}

// clientSettings are the query settings the v4 client reads (it compares
// them in lower case). It logs any other one through the standard logger,
// so parseURL drops them first.
var clientSettings = map[string]bool{
	"discoveryinterval":   true,
	"gossiptimeout":       true,
	"maxdiscoverattempts": true,
	"nodepreference":      true,
	"keepaliveinterval":   true,
	"keepalivetimeout":    true,
	"tls":                 true,
	"tlscafile":           true,
	"usercertfile":        true,
	"userkeyfile":         true,
	"tlsverifycert":       true,
	"defaultdeadline":     true,
}

// parseURL turns a connection string into the client's configuration, with
// the client's log lines sent to log at debug level. Its errors wrap
// ErrConnectionString and never contain the password.
func parseURL(raw string, log *slog.Logger) (*esdb.Configuration, error) {
	secrets := passwords(raw)
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w %s: %s", ErrConnectionString, redactSecrets(raw, secrets), redactSecrets(fmt.Sprintf(format, args...), secrets))
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fail("no scheme; want esdb://, esdb+discover://, kurrentdb:// or kurrentdb+discover://")
	}
	mapped, ok := schemes[strings.ToLower(scheme)]
	if !ok {
		return nil, fail("scheme %q; want esdb://, esdb+discover://, kurrentdb:// or kurrentdb+discover://", scheme)
	}
	if base, query, hasQuery := strings.Cut(rest, "?"); hasQuery {
		values, err := url.ParseQuery(query)
		if err != nil {
			return nil, fail("settings: %v", err)
		}
		for key := range values {
			if !clientSettings[strings.ToLower(key)] {
				log.Warn("kurrentdb: ignoring an unknown connection setting", "setting", key)
				values.Del(key)
			}
		}
		rest = base
		if len(values) > 0 {
			rest += "?" + values.Encode()
		}
	}
	cfg, err := esdb.ParseConnectionString(mapped + "://" + rest)
	if err != nil {
		return nil, fail("%v", err)
	}
	cfg.Logger = clientLogger(log)
	if cfg.Username != "" && cfg.DisableTLS {
		log.Warn("kurrentdb: the connection string has credentials but tls=false; the client sends credentials only over TLS", "user", cfg.Username)
	}
	return cfg, nil
}

// passwords returns the password of the connection string raw as written
// and decoded (and as the client rewrites it for several hosts, commas as
// slashes), the strings to keep out of errors and logs.
func passwords(raw string) []string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return nil
	}
	_, password, ok := strings.Cut(rest[:at], ":")
	if !ok || password == "" {
		return nil
	}
	out := []string{password, strings.ReplaceAll(password, ",", "/")}
	if decoded, err := url.PathUnescape(password); err == nil && decoded != password {
		out = append(out, decoded)
	}
	if escaped := url.QueryEscape(password); escaped != password {
		out = append(out, escaped)
	}
	return out
}

// redactSecrets replaces every secret in s (the password wherever the
// client's messages may repeat it, in whatever form), as internal/redact
// masks them.
func redactSecrets(s string, secrets []string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, redact.Mask)
		}
	}
	return s
}

// redactURL is the connection string raw without its password.
func redactURL(raw string) string {
	return redactSecrets(raw, passwords(raw))
}

// clientLogger sends the v4 client's log lines to log at debug level: it
// logs every failed call and dropped subscription as an error, which the
// adapter reports itself.
func clientLogger(log *slog.Logger) esdb.LoggingFunc {
	return func(level esdb.LogLevel, format string, args ...any) {
		if !log.Enabled(context.Background(), slog.LevelDebug) {
			return
		}
		log.Debug("kurrentdb client: "+fmt.Sprintf(format, args...), "client_level", level)
	}
}
