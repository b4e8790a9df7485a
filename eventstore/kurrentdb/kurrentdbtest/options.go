package kurrentdbtest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Defaults for the zero values of Options.
const (
	// DefaultMaxAppendSize is KurrentDB's max append size up to v25.0:
	// 1 MiB (notes §3 "Limits"; v25.1 raised it to 256 MiB).
	DefaultMaxAppendSize = 1 << 20
	// DefaultServerVersion is the version ServerFeatures reports. The v4
	// client only connects when it is numeric major.minor.patch (notes §2).
	DefaultServerVersion = "24.10.0"
	// DefaultRecentIDs bounds the weak-idempotency cache, in event ids
	// (notes §3: the server caps its cache at about 8 MiB).
	DefaultRecentIDs = 100_000
	// DefaultKeepaliveMinTime is the shortest ping interval the double
	// tolerates. The v4 client pings every 10 s even without an open stream;
	// grpc-go's default policy (5 min, no pings without streams) answers
	// that with GOAWAY too_many_pings (notes §2).
	DefaultKeepaliveMinTime = 5 * time.Second
)

// maxReceiveSize is the gRPC receive limit of a KurrentDB node:
// 16 MiB − 10000 bytes (notes §3 "Limits").
const maxReceiveSize = 16<<20 - 10_000

// Options configures a double. The zero value is a plaintext node with
// KurrentDB's default limits.
type Options struct {
	// MaxAppendSize is the largest append accepted, in bytes, counted as
	// the sum of the encoded sizes of the append's proposed messages. A
	// larger append fails with InvalidArgument and the trailer
	// "exception: maximum-append-size-exceeded" (notes §3). 0 means
	// DefaultMaxAppendSize.
	MaxAppendSize int

	// ServerVersion is the "major.minor.patch" version that
	// ServerFeatures.GetSupportedMethods reports. "" means
	// DefaultServerVersion.
	ServerVersion string

	// RecentIDs is how many recently committed event ids the
	// weak-idempotency cache keeps (appends expecting any or
	// stream_exists; notes §3). 0 means DefaultRecentIDs; a negative value
	// disables the cache, so every such retry is written again.
	RecentIDs int

	// KeepaliveMinTime is the shortest interval between client pings that
	// the double tolerates, with or without open streams. 0 means
	// DefaultKeepaliveMinTime.
	KeepaliveMinTime time.Duration

	// TLS serves over TLS with a self-signed certificate for 127.0.0.1,
	// ::1 and localhost; URL then carries tls=true&tlsVerifyCert=false.
	// False serves plaintext (URL carries tls=false).
	TLS bool

	// Username and Password, when Username is set, are the HTTP basic
	// credentials every Streams call must carry (else Unauthenticated).
	// The v4 client sends credentials only over TLS (notes §2), so they
	// require TLS.
	Username string
	Password string
}

// withDefaults returns o with its zero values replaced by the defaults, or
// an error naming the first invalid field.
func (o Options) withDefaults() (Options, error) {
	if o.MaxAppendSize == 0 {
		o.MaxAppendSize = DefaultMaxAppendSize
	}
	if o.MaxAppendSize < 0 {
		return o, fmt.Errorf("kurrentdbtest: MaxAppendSize %d is negative", o.MaxAppendSize)
	}
	if o.ServerVersion == "" {
		o.ServerVersion = DefaultServerVersion
	}
	if err := checkVersion(o.ServerVersion); err != nil {
		return o, err
	}
	if o.RecentIDs == 0 {
		o.RecentIDs = DefaultRecentIDs
	}
	if o.KeepaliveMinTime == 0 {
		o.KeepaliveMinTime = DefaultKeepaliveMinTime
	}
	if o.Username != "" && !o.TLS {
		return o, errors.New("kurrentdbtest: credentials need TLS: the v4 client sends them only over TLS")
	}
	return o, nil
}

// checkVersion reports whether v has the numeric major.minor.patch shape
// the v4 client parses (notes §2).
func checkVersion(v string) error {
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return fmt.Errorf("kurrentdbtest: ServerVersion %q is not major.minor.patch", v)
	}
	for _, p := range parts {
		if _, err := strconv.Atoi(p); err != nil {
			return fmt.Errorf("kurrentdbtest: ServerVersion %q: %w", v, err)
		}
	}
	return nil
}
