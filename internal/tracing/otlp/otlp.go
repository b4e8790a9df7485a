// Package otlp sets up tracing for a binary (ordersd, fakepay): the
// OpenTelemetry SDK's tracer provider, exporting over OTLP, configured by
// the standard OpenTelemetry environment variables.
//
// Tracing is off unless they ask for it: an OTLP endpoint
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), or
// OTEL_TRACES_EXPORTER=otlp (the SDK's default endpoint,
// http://localhost:4318). OTEL_TRACES_EXPORTER=none or
// OTEL_SDK_DISABLED=true turn it off whatever else is set. The protocol is
// OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL: http/protobuf (default),
// http/json or grpc. Everything else is the SDK's own reading of the
// environment: the exporter's headers, timeout, compression and TLS
// (OTEL_EXPORTER_OTLP_*), the sampler (OTEL_TRACES_SAMPLER,
// OTEL_TRACES_SAMPLER_ARG, which Load checks; parent-based, always on by
// default), the batch processor (OTEL_BSP_*), and the resource
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES; the service name defaults
// to the binary's).
package otlp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/orders-reference/orders/internal/redact"
	"github.com/orders-reference/orders/internal/tracing"
)

// The protocols an exporter speaks.
const (
	ProtocolHTTPProtobuf = "http/protobuf"
	ProtocolHTTPJSON     = "http/json"
	ProtocolGRPC         = "grpc"
)

// Config is what the environment says about tracing.
type Config struct {
	// Enabled: spans are exported over OTLP.
	Enabled bool
	// Protocol is ProtocolHTTPProtobuf, ProtocolHTTPJSON or ProtocolGRPC.
	Protocol string
	// Endpoint is the configured endpoint, for logs (without secrets);
	// empty for the SDK's default.
	Endpoint string
}

// ErrConfig: the environment asks for tracing in a way this build cannot
// do.
var ErrConfig = errors.New("tracing configuration")

// Load reads the tracing configuration from environ (KEY=value entries,
// the last of a key winning, as os.Environ). Its errors wrap ErrConfig and
// name the variable.
func Load(environ []string) (Config, error) {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = strings.TrimSpace(v)
		}
	}
	if strings.EqualFold(env["OTEL_SDK_DISABLED"], "true") {
		return Config{}, nil
	}
	if err := checkSampler(env); err != nil {
		return Config{}, err
	}
	explicit := false
	for _, name := range strings.Split(env["OTEL_TRACES_EXPORTER"], ",") {
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "":
		case "none":
			return Config{}, nil
		case "otlp":
			explicit = true
		default:
			return Config{}, fmt.Errorf("%w: OTEL_TRACES_EXPORTER: %q is not an exporter of this build: otlp or none", ErrConfig, name)
		}
	}
	endpoint, variable := env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"], "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	if endpoint == "" {
		endpoint, variable = env["OTEL_EXPORTER_OTLP_ENDPOINT"], "OTEL_EXPORTER_OTLP_ENDPOINT"
	}
	if endpoint == "" && !explicit {
		return Config{}, nil
	}
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Config{}, fmt.Errorf("%w: %s: %s is not an http:// or https:// URL", ErrConfig, variable, shown(endpoint))
		}
	}
	protocol, variable := env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"], "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	if protocol == "" {
		protocol, variable = env["OTEL_EXPORTER_OTLP_PROTOCOL"], "OTEL_EXPORTER_OTLP_PROTOCOL"
	}
	switch protocol {
	case "":
		protocol = ProtocolHTTPProtobuf
	case ProtocolHTTPProtobuf, ProtocolHTTPJSON, ProtocolGRPC:
	default:
		return Config{}, fmt.Errorf("%w: %s: %q is not a protocol: %s, %s or %s", ErrConfig, variable, protocol,
			ProtocolHTTPProtobuf, ProtocolHTTPJSON, ProtocolGRPC)
	}
	return Config{Enabled: true, Protocol: protocol, Endpoint: redact.URL(endpoint)}, nil
}

// The samplers OTEL_TRACES_SAMPLER may name (the OpenTelemetry
// specification's, which the SDK reads), and whether each reads its ratio
// from OTEL_TRACES_SAMPLER_ARG.
var samplers = map[string]bool{
	"always_on": false, "always_off": false, "traceidratio": true,
	"parentbased_always_on": false, "parentbased_always_off": false, "parentbased_traceidratio": true,
}

// checkSampler refuses an OTEL_TRACES_SAMPLER the SDK does not know, and
// an OTEL_TRACES_SAMPLER_ARG a ratio-based sampler cannot read (a number
// from 0 to 1), which the SDK would report in a line of its own and
// ignore (sampling everything).
func checkSampler(env map[string]string) error {
	name := strings.ToLower(env["OTEL_TRACES_SAMPLER"])
	if name == "" {
		return nil
	}
	ratio, ok := samplers[name]
	if !ok {
		return fmt.Errorf("%w: OTEL_TRACES_SAMPLER: %q is not a sampler: always_on, always_off, traceidratio, "+
			"parentbased_always_on, parentbased_always_off or parentbased_traceidratio", ErrConfig, env["OTEL_TRACES_SAMPLER"])
	}
	arg := env["OTEL_TRACES_SAMPLER_ARG"]
	if !ratio || arg == "" {
		return nil
	}
	if v, err := strconv.ParseFloat(arg, 64); err != nil || math.IsNaN(v) || v < 0 || v > 1 {
		return fmt.Errorf("%w: OTEL_TRACES_SAMPLER_ARG: %q is not a sampling ratio of %s: a number from 0 to 1", ErrConfig, arg, name)
	}
	return nil
}

// shown is how a configured endpoint appears in an error: redacted, and
// readable when it lacks its scheme (localhost:4318), which redact.URL
// would print as unparseable.
func shown(endpoint string) string {
	s := redact.URL(endpoint)
	if s != redact.Unparseable || strings.Contains(endpoint, "://") {
		return s
	}
	if withScheme := redact.URL("http://" + endpoint); strings.HasPrefix(withScheme, "http://") && withScheme != "http://"+redact.Unparseable {
		return strings.TrimPrefix(withScheme, "http://")
	}
	return s
}

// Options tunes New.
type Options struct {
	// ServiceName is the resource's service.name unless OTEL_SERVICE_NAME
	// says otherwise.
	ServiceName string
	// Exporter, if set, receives the spans instead of an OTLP exporter,
	// and tracing is on whatever Config says (tests: an in-memory
	// exporter).
	Exporter sdktrace.SpanExporter
	// Sync exports each span as it ends rather than in batches (tests).
	Sync bool
}

// New returns the tracing cfg and opts describe, and the function that
// flushes and stops it (call it before exiting); the zero Tracing and a
// no-op when tracing is off. The exporter connects lazily: an unreachable
// collector costs dropped spans (reported through otel's error handler),
// never a failed start.
func New(ctx context.Context, cfg Config, opts Options) (tracing.Tracing, func(context.Context) error, error) {
	exporter := opts.Exporter
	if exporter == nil {
		if !cfg.Enabled {
			return tracing.Tracing{}, func(context.Context) error { return nil }, nil
		}
		var err error
		switch cfg.Protocol {
		case ProtocolGRPC:
			exporter, err = otlptracegrpc.New(ctx)
		default: // the HTTP exporter reads http/protobuf or http/json itself
			exporter, err = otlptracehttp.New(ctx)
		}
		if err != nil {
			return tracing.Tracing{}, nil, fmt.Errorf("OTLP trace exporter: %w", err)
		}
	}
	res, err := resource.New(ctx, resource.WithAttributes(semconv.ServiceName(opts.ServiceName)),
		resource.WithTelemetrySDK(), resource.WithHost(), resource.WithFromEnv())
	if err != nil && res == nil {
		return tracing.Tracing{}, nil, fmt.Errorf("tracing resource: %w", err)
	}
	processor := sdktrace.WithBatcher(exporter)
	if opts.Sync {
		processor = sdktrace.WithSyncer(exporter)
	}
	// The sampler is the SDK's reading of OTEL_TRACES_SAMPLER, the limits
	// its reading of OTEL_SPAN_*_LIMIT, except that an attribute value is
	// cut at MaxAttributeValue characters unless one is set: attributes
	// hold what clients send (a URL path), and the SDK's default keeps it
	// whole, however long.
	limits := sdktrace.NewSpanLimits()
	if limits.AttributeValueLengthLimit < 0 {
		limits.AttributeValueLengthLimit = MaxAttributeValue
	}
	tp := sdktrace.NewTracerProvider(processor, sdktrace.WithResource(res), sdktrace.WithRawSpanLimits(limits))
	t := tracing.Tracing{
		Provider: tp,
		// W3C Trace Context only: Orders uses no baggage, and parsing a
		// caller's (up to 8 KB or more) would only cost errors.
		Propagator: propagation.TraceContext{},
	}
	return t, tp.Shutdown, nil
}

// MaxAttributeValue is the length, in characters, at which span attribute
// values are cut when OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT and
// OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT are unset.
const MaxAttributeValue = 1024

// ErrorHandler returns a handler of OpenTelemetry's errors (an
// unreachable collector, a full queue: spans dropped; a header that does
// not parse; never the service's work) that logs them as warnings, each
// with its error,: the first at once, then at most one every
// interval, with how many it kept quiet meanwhile, so that a collector
// that is away does not flood the log.
func ErrorHandler(logger *slog.Logger, interval time.Duration) otel.ErrorHandler {
	h := &errorHandler{log: logger, every: interval}
	return otel.ErrorHandlerFunc(h.handle)
}

type errorHandler struct {
	log   *slog.Logger
	every time.Duration

	mu     sync.Mutex
	last   time.Time
	quiet  int
	logged bool
}

func (h *errorHandler) handle(err error) {
	h.mu.Lock()
	now := time.Now()
	if h.logged && now.Sub(h.last) < h.every {
		h.quiet++
		h.mu.Unlock()
		return
	}
	quiet := h.quiet
	h.logged, h.last, h.quiet = true, now, 0
	h.mu.Unlock()
	h.log.Warn("tracing error", "error", err, "errors_not_logged", quiet)
}
