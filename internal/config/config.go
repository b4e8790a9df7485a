// Package config reads the server's configuration from environment
// variables (names and defaults from the external contract) and validates it,
// reporting every problem at once in words an operator can act on.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/orders-reference/orders/internal/redact"
	"github.com/orders-reference/orders/payment"
)

// Config is the configuration of ordersd and ordersctl.
type Config struct {
	// Roles are the parts this process runs (ORDERS_ROLES, or ordersd
	// --roles): all of them by default, the fake payment provider only if
	// FAKE_PAYMENT_ENABLED.
	Roles    Roles  `env:"ORDERS_ROLES" envDefault:"all"`
	HTTPAddr string `env:"HTTP_ADDR" envDefault:":8000"`
	// PprofAddr, if set, serves net/http/pprof there (an admin address:
	// keep it on loopback or a private network).
	PprofAddr   string `env:"PPROF_ADDR"`
	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://postgres@localhost:5432/orders?sslmode=disable"`
	// EventStoreURL selects the event store; empty means PostgreSQL in
	// DatabaseURL.
	EventStoreURL string `env:"EVENTSTORE_URL"`
	// RedisURL is used for rate limiting; empty means an in-process limiter.
	RedisURL string `env:"REDIS_URL" envDefault:"redis://localhost:6379/0"`
	// Env is development (the default: published development secrets
	// allowed, each logged as a warning) or production (they, and secrets
	// shorter than MinProductionSecret bytes, refuse to start).
	Env                  string     `env:"ORDERS_ENV" envDefault:"development"`
	AdminSecret          string     `env:"ADMIN_SECRET" envDefault:"dev-admin-secret"`
	PaymentWebhookSecret string     `env:"PAYMENT_WEBHOOK_SECRET" envDefault:"dev-webhook-secret"`
	LogLevel             slog.Level `env:"LOG_LEVEL" envDefault:"INFO"`
	// IdempotencyKeySecret keys the derivation of order ids from
	// Idempotency-Keys; changing it makes old keys place new orders.
	IdempotencyKeySecret string `env:"IDEMPOTENCY_KEY_SECRET" envDefault:"dev-idempotency-secret"`

	// PaymentWebhookPreviousSecrets are accepted as well as
	// PaymentWebhookSecret while secrets are rotated (comma-separated).
	PaymentWebhookPreviousSecrets []string `env:"PAYMENT_WEBHOOK_PREVIOUS_SECRETS" envSeparator:","`

	// FakePaymentEnabled runs the fake payment provider inside the server
	// (the fakepay role of "all"); otherwise PaymentProviderURL names the
	// provider.
	FakePaymentEnabled bool `env:"FAKE_PAYMENT_ENABLED" envDefault:"true"`
	FakePayment
	PaymentProviderURL string `env:"PAYMENT_PROVIDER_URL"`
	// PaymentCallbackURL is where the provider sends webhooks; empty means
	// this server's /webhooks/payment on the loopback address, which only
	// the embedded fake provider can reach (so it is required otherwise).
	PaymentCallbackURL string `env:"PAYMENT_CALLBACK_URL"`
	// PaymentTimeout cancels an order whose payment has no outcome by then.
	PaymentTimeout time.Duration `env:"PAYMENT_TIMEOUT" envDefault:"15m"`
	// PaymentRetryBackoff are the delays before each retry of a failed
	// payment step; after the last the step goes to the dead-letter list.
	PaymentRetryBackoff []time.Duration `env:"PAYMENT_RETRY_BACKOFF" envDefault:"1s,2s,4s,8s,16s" envSeparator:","`

	RateLimitOrdersPerMinute int `env:"RATE_LIMIT_ORDERS_PER_MINUTE" envDefault:"5"`
	// RateLimitFailClosed refuses orders while Redis is unreachable instead
	// of letting them through.
	RateLimitFailClosed bool `env:"RATE_LIMIT_FAIL_CLOSED" envDefault:"false"`

	// MigrateOnStart applies pending migrations when the server starts.
	MigrateOnStart bool `env:"MIGRATE_ON_START" envDefault:"true"`
	// ReadyMaxProjectionLag is how far behind the projections may be for
	// /readyz to answer ready.
	ReadyMaxProjectionLag time.Duration `env:"READY_MAX_PROJECTION_LAG" envDefault:"30s"`
	// SubscriptionDeliveryInterval is the least time between two batches
	// of a caught-up subscription (read models, the process manager's
	// scheduler): events arriving meanwhile are applied together.
	SubscriptionDeliveryInterval time.Duration `env:"SUBSCRIPTION_DELIVERY_INTERVAL" envDefault:"20ms"`
	// ShutdownTimeout bounds the graceful drain on SIGTERM/SIGINT.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"15s"`

	// RequestTimeout bounds every request of the command and query APIs
	// (the payment webhook included): past it the request is answered 503
	// with Retry-After, whatever it still waits for.
	RequestTimeout time.Duration `env:"REQUEST_TIMEOUT" envDefault:"10s"`
	// DBStatementTimeout is PostgreSQL's statement_timeout on the
	// connections of the request path (the APIs and the write side the
	// process manager shares): a statement that waits longer for a lock,
	// or runs longer, is canceled by the server and rolled back (0: no
	// limit). Background work (projections, the process manager's own
	// tables, ordersctl) has no such limit.
	DBStatementTimeout time.Duration `env:"DB_STATEMENT_TIMEOUT" envDefault:"5s"`
	// PaymentProviderTimeout bounds one call to the payment provider at
	// PAYMENT_PROVIDER_URL, connecting and reading the answer included.
	PaymentProviderTimeout time.Duration `env:"PAYMENT_PROVIDER_TIMEOUT" envDefault:"10s"`

	// SnapshotEvery is how many events a product takes between two
	// snapshots of its state (0 disables snapshots).
	SnapshotEvery int `env:"SNAPSHOT_EVERY" envDefault:"500"`
	// StockCacheSize is how many products the write side keeps in memory
	// (least recently used evicted).
	StockCacheSize int `env:"STOCK_CACHE_SIZE" envDefault:"10000"`
	// OrderCacheSize is how many orders the write side keeps in memory
	// for the commands that follow (least recently used evicted).
	OrderCacheSize int `env:"ORDER_CACHE_SIZE" envDefault:"10000"`
	// PlacementMaxBacklog is the backlog (events not yet applied by the
	// slowest projection, or process manager steps due) above which new
	// orders wait, up to PLACEMENT_BACKPRESSURE_WAIT, and are then refused
	// with 503 (0 disables backpressure).
	PlacementMaxBacklog int `env:"PLACEMENT_MAX_BACKLOG" envDefault:"10000"`
	// PlacementBackpressureWait bounds how long a new order waits for the
	// backlog to fall.
	PlacementBackpressureWait time.Duration `env:"PLACEMENT_BACKPRESSURE_WAIT" envDefault:"2s"`
}

// MaxBackpressureWait bounds PLACEMENT_BACKPRESSURE_WAIT below the HTTP
// server's write timeout (30 s), so that a refused order's 503 is sent.
const MaxBackpressureWait = 20 * time.Second

// MaxSubscriptionDeliveryInterval bounds SUBSCRIPTION_DELIVERY_INTERVAL:
// every event waits up to that long before the read models and the
// process manager see it.
const MaxSubscriptionDeliveryInterval = time.Second

// MaxRequestTimeout bounds REQUEST_TIMEOUT below the HTTP server's write
// timeout (30 s), so that a timed-out request's 503 is sent.
const MaxRequestTimeout = 25 * time.Second

// FakePayment configures the fake payment provider, embedded or as
// cmd/fakepay.
type FakePayment struct {
	FakePaymentSuccessRate float64       `env:"FAKE_PAYMENT_SUCCESS_RATE" envDefault:"0.8"`
	FakePaymentDelay       time.Duration `env:"FAKE_PAYMENT_DELAY" envDefault:"1s"`
	// Fault injection: the share of payment requests that fail with 5xx,
	// the share of webhooks delivered twice, and up to how much extra
	// delay each delivery gets (which reorders them).
	FakePaymentFailRate      float64       `env:"FAKE_PAYMENT_FAIL_RATE" envDefault:"0"`
	FakePaymentDuplicateRate float64       `env:"FAKE_PAYMENT_DUPLICATE_RATE" envDefault:"0"`
	FakePaymentJitter        time.Duration `env:"FAKE_PAYMENT_JITTER" envDefault:"0s"`
}

func (f FakePayment) validate() []error {
	var problems []error
	for name, r := range map[string]float64{
		"FAKE_PAYMENT_SUCCESS_RATE": f.FakePaymentSuccessRate, "FAKE_PAYMENT_FAIL_RATE": f.FakePaymentFailRate,
		"FAKE_PAYMENT_DUPLICATE_RATE": f.FakePaymentDuplicateRate,
	} {
		if r < 0 || r > 1 {
			problems = append(problems, fmt.Errorf("%s=%v: must be between 0 and 1", name, r))
		}
	}
	if f.FakePaymentDelay < 0 {
		problems = append(problems, fmt.Errorf("FAKE_PAYMENT_DELAY=%v: must not be negative", f.FakePaymentDelay))
	}
	if f.FakePaymentJitter < 0 {
		problems = append(problems, fmt.Errorf("FAKE_PAYMENT_JITTER=%v: must not be negative", f.FakePaymentJitter))
	}
	return problems
}

// FakePay is the configuration of cmd/fakepay.
type FakePay struct {
	Addr                 string     `env:"FAKEPAY_ADDR" envDefault:":8001"`
	PaymentWebhookSecret string     `env:"PAYMENT_WEBHOOK_SECRET" envDefault:"dev-webhook-secret"`
	LogLevel             slog.Level `env:"LOG_LEVEL" envDefault:"INFO"`
	FakePayment
}

// LoadFakePay reads and validates cmd/fakepay's configuration.
func LoadFakePay(environ []string) (FakePay, error) {
	vars := env.ToMap(environ)
	var cfg FakePay
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: vars}); err != nil {
		return FakePay{}, fmt.Errorf("configuration:\n%w", byVariable[FakePay](err, vars))
	}
	problems := cfg.validate()
	if v, ok := vars["PAYMENT_WEBHOOK_SECRET"]; ok && strings.TrimSpace(v) == "" {
		problems = append(problems, errors.New("PAYMENT_WEBHOOK_SECRET is set but empty: set a secret or unset it to use the development default"))
	} else if err := payment.ValidateSecret(cfg.PaymentWebhookSecret); err != nil {
		problems = append(problems, fmt.Errorf("PAYMENT_WEBHOOK_SECRET: %w", err))
	}
	if err := errors.Join(problems...); err != nil {
		return FakePay{}, fmt.Errorf("configuration:\n%w", err)
	}
	return cfg, nil
}

// Load reads the configuration from environ (KEY=value strings, as from
// os.Environ) and validates it.
func Load(environ []string) (Config, error) {
	vars := env.ToMap(environ)
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: vars}); err != nil {
		return Config{}, fmt.Errorf("configuration:\n%w", byVariable[Config](err, vars))
	}
	// A variable that is set but empty means something different from an
	// unset one for these: no limiter in Redis, and no secret at all.
	if v, ok := vars["REDIS_URL"]; ok && v == "" {
		cfg.RedisURL = ""
	}
	if cfg.Roles.all && !cfg.Roles.explicitFakePay && !cfg.FakePaymentEnabled {
		delete(cfg.Roles.set, RoleFakePay)
	}
	var problems []error
	for _, name := range []string{"ADMIN_SECRET", "PAYMENT_WEBHOOK_SECRET", "IDEMPOTENCY_KEY_SECRET"} {
		if v, ok := vars[name]; ok && strings.TrimSpace(v) == "" {
			problems = append(problems, fmt.Errorf("%s is set but empty: set a secret or unset it to use the development default", name))
		}
	}
	problems = append(problems, cfg.validate()...)
	problems = append(problems, cfg.validateSecrets()...)
	if err := errors.Join(problems...); err != nil {
		return Config{}, fmt.Errorf("configuration:\n%w", err)
	}
	return cfg, nil
}

// Environments (ORDERS_ENV).
const (
	EnvDevelopment = "development"
	EnvProduction  = "production"
)

// MinProductionSecret is the shortest secret production accepts, in bytes
// (256 bits, the key size of the HMAC-SHA256 the secrets key).
const MinProductionSecret = 32

// developmentSecrets are the published development values of the secrets.
var developmentSecrets = map[string]string{
	"ADMIN_SECRET": "dev-admin-secret", "PAYMENT_WEBHOOK_SECRET": "dev-webhook-secret",
	"IDEMPOTENCY_KEY_SECRET": "dev-idempotency-secret",
}

// secrets are the configured secrets by variable, previous webhook secrets
// included.
func (c Config) secrets() [][2]string {
	out := [][2]string{{"ADMIN_SECRET", c.AdminSecret}, {"PAYMENT_WEBHOOK_SECRET", c.PaymentWebhookSecret},
		{"IDEMPOTENCY_KEY_SECRET", c.IdempotencyKeySecret}}
	for _, s := range c.PaymentWebhookPreviousSecrets {
		out = append(out, [2]string{"PAYMENT_WEBHOOK_PREVIOUS_SECRETS", s})
	}
	return out
}

// DevelopmentSecrets names the variables whose value is a published
// development default: in development each is logged as a warning.
func (c Config) DevelopmentSecrets() []string {
	var names []string
	for _, s := range c.secrets() {
		if slices.Contains(slices.Collect(maps.Values(developmentSecrets)), s[1]) {
			names = append(names, s[0])
		}
	}
	return names
}

// keyBytes is a secret's key length: a whsec_ secret (Standard Webhooks)
// is the base64 of its key, any other secret is its own key.
func keyBytes(secret string) int {
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if key, err := base64.StdEncoding.DecodeString(rest); err == nil {
			return len(key)
		}
	}
	return len(secret)
}

// validateSecrets refuses, in production, published development secrets
// and short ones (never printing a secret).
func (c Config) validateSecrets() []error {
	switch c.Env {
	case EnvDevelopment:
		return nil
	case EnvProduction:
	default:
		return []error{fmt.Errorf("ORDERS_ENV=%q: must be %s or %s", c.Env, EnvDevelopment, EnvProduction)}
	}
	var problems []error
	for _, name := range c.DevelopmentSecrets() {
		problems = append(problems, fmt.Errorf("%s: the published development value is refused in production; set a secret of at least %d bytes", name, MinProductionSecret))
	}
	for _, s := range c.secrets() {
		if n := keyBytes(s[1]); n < MinProductionSecret && !slices.Contains(c.DevelopmentSecrets(), s[0]) {
			problems = append(problems, fmt.Errorf("%s: %d bytes of key; production needs at least %d", s[0], n, MinProductionSecret))
		}
	}
	return problems
}

func (c Config) validate() []error {
	var problems []error
	if err := checkURL("DATABASE_URL", c.DatabaseURL, "postgres", "postgresql"); err != nil {
		problems = append(problems, err)
	}
	if c.EventStoreURL != "" {
		if err := checkURL("EVENTSTORE_URL", c.EventStoreURL, "esdb", "esdb+discover", "kurrentdb", "kurrentdb+discover"); err != nil {
			problems = append(problems, err)
		}
	}
	if c.RedisURL != "" {
		if err := checkURL("REDIS_URL", c.RedisURL, "redis", "rediss"); err != nil {
			problems = append(problems, err)
		}
	}
	problems = append(problems, c.FakePayment.validate()...)
	if c.Roles.Has(RoleProcess) && !c.Roles.Has(RoleFakePay) {
		if c.PaymentProviderURL == "" {
			problems = append(problems, errors.New("the process manager without the embedded fake provider (FAKE_PAYMENT_ENABLED=false, or roles without fakepay) needs PAYMENT_PROVIDER_URL, the payment provider's base URL"))
		}
		if c.PaymentCallbackURL == "" {
			problems = append(problems, errors.New("the process manager with an external provider needs PAYMENT_CALLBACK_URL, the URL of /webhooks/payment as the provider reaches it"))
		}
	} else if c.Roles.Has(RoleProcess) && !c.Roles.Has(RoleCommand) && c.PaymentCallbackURL == "" {
		problems = append(problems, errors.New("the process manager without the command role needs PAYMENT_CALLBACK_URL, the URL of a command API's /webhooks/payment"))
	}
	if c.ReadyMaxProjectionLag <= 0 {
		problems = append(problems, fmt.Errorf("READY_MAX_PROJECTION_LAG=%v: must be positive", c.ReadyMaxProjectionLag))
	}
	if c.SubscriptionDeliveryInterval <= 0 || c.SubscriptionDeliveryInterval > MaxSubscriptionDeliveryInterval {
		problems = append(problems, fmt.Errorf("SUBSCRIPTION_DELIVERY_INTERVAL=%v: must be positive and at most %v", c.SubscriptionDeliveryInterval, MaxSubscriptionDeliveryInterval))
	}
	if c.PaymentProviderURL != "" {
		if err := checkURL("PAYMENT_PROVIDER_URL", c.PaymentProviderURL, "http", "https"); err != nil {
			problems = append(problems, err)
		}
	}
	if c.PaymentCallbackURL != "" {
		if err := checkURL("PAYMENT_CALLBACK_URL", c.PaymentCallbackURL, "http", "https"); err != nil {
			problems = append(problems, err)
		}
	}
	if c.SnapshotEvery < 0 {
		problems = append(problems, fmt.Errorf("SNAPSHOT_EVERY=%d: must be 0 (off) or a number of events", c.SnapshotEvery))
	}
	if c.StockCacheSize < 1 {
		problems = append(problems, fmt.Errorf("STOCK_CACHE_SIZE=%d: must be at least 1", c.StockCacheSize))
	}
	if c.OrderCacheSize < 1 {
		problems = append(problems, fmt.Errorf("ORDER_CACHE_SIZE=%d: must be at least 1", c.OrderCacheSize))
	}
	if c.PlacementMaxBacklog < 0 {
		problems = append(problems, fmt.Errorf("PLACEMENT_MAX_BACKLOG=%d: must be 0 (off) or more", c.PlacementMaxBacklog))
	}
	if c.PlacementBackpressureWait <= 0 || c.PlacementBackpressureWait > MaxBackpressureWait {
		problems = append(problems, fmt.Errorf("PLACEMENT_BACKPRESSURE_WAIT=%s: must be positive and at most %s (the answer must leave before the server's 30 s write timeout)",
			c.PlacementBackpressureWait, MaxBackpressureWait))
	}
	if c.PaymentTimeout <= 0 {
		problems = append(problems, fmt.Errorf("PAYMENT_TIMEOUT=%v: must be positive", c.PaymentTimeout))
	}
	if len(c.PaymentRetryBackoff) == 0 {
		problems = append(problems, errors.New("PAYMENT_RETRY_BACKOFF is empty: give at least one delay, e.g. 1s,2s,4s,8s,16s"))
	}
	for _, d := range c.PaymentRetryBackoff {
		if d <= 0 {
			problems = append(problems, fmt.Errorf("PAYMENT_RETRY_BACKOFF: %v must be positive", d))
		}
	}
	if err := payment.ValidateSecret(c.PaymentWebhookSecret); err != nil && strings.TrimSpace(c.PaymentWebhookSecret) != "" {
		problems = append(problems, fmt.Errorf("PAYMENT_WEBHOOK_SECRET: %w", err))
	}
	for _, s := range c.PaymentWebhookPreviousSecrets {
		if err := payment.ValidateSecret(s); err != nil {
			problems = append(problems, fmt.Errorf("PAYMENT_WEBHOOK_PREVIOUS_SECRETS: %w", err))
		}
	}
	if c.RateLimitOrdersPerMinute < 1 {
		problems = append(problems, fmt.Errorf("RATE_LIMIT_ORDERS_PER_MINUTE=%d: must be at least 1", c.RateLimitOrdersPerMinute))
	}
	if c.ShutdownTimeout <= 0 {
		problems = append(problems, fmt.Errorf("SHUTDOWN_TIMEOUT=%v: must be positive", c.ShutdownTimeout))
	}
	return append(problems, c.validateTimeouts()...)
}

// validateTimeouts checks the bounds of the request path: a request ends
// before the server's write timeout, and leaves room for what it may wait
// for on purpose (backpressure) and for one database statement.
func (c Config) validateTimeouts() []error {
	var problems []error
	switch {
	case c.RequestTimeout <= 0 || c.RequestTimeout > MaxRequestTimeout:
		problems = append(problems, fmt.Errorf("REQUEST_TIMEOUT=%v: must be positive and at most %v (the answer must leave before the server's 30 s write timeout)",
			c.RequestTimeout, MaxRequestTimeout))
	case c.PlacementMaxBacklog > 0 && c.PlacementBackpressureWait >= c.RequestTimeout:
		problems = append(problems, fmt.Errorf("PLACEMENT_BACKPRESSURE_WAIT=%v must be shorter than REQUEST_TIMEOUT=%v (an order held back must still be answered before its request times out)",
			c.PlacementBackpressureWait, c.RequestTimeout))
	case c.DBStatementTimeout > c.RequestTimeout:
		problems = append(problems, fmt.Errorf("DB_STATEMENT_TIMEOUT=%v must not be longer than REQUEST_TIMEOUT=%v", c.DBStatementTimeout, c.RequestTimeout))
	}
	if c.DBStatementTimeout < 0 {
		problems = append(problems, fmt.Errorf("DB_STATEMENT_TIMEOUT=%v: must be 0 (no limit) or positive", c.DBStatementTimeout))
	} else if c.DBStatementTimeout > 0 && c.DBStatementTimeout < time.Millisecond {
		problems = append(problems, fmt.Errorf("DB_STATEMENT_TIMEOUT=%v: PostgreSQL counts in milliseconds; give at least 1ms, or 0 for no limit", c.DBStatementTimeout))
	}
	if c.PaymentProviderTimeout <= 0 {
		problems = append(problems, fmt.Errorf("PAYMENT_PROVIDER_TIMEOUT=%v: must be positive", c.PaymentProviderTimeout))
	}
	return problems
}

func checkURL(name, raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil {
		// The parser's message quotes the URL, password and all.
		return fmt.Errorf("%s is not a valid URL (check its escaping)", name)
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return nil
		}
	}
	return fmt.Errorf("%s=%s: scheme must be one of %s", name, Redacted(raw), strings.Join(schemes, ", "))
}

// Redacted returns raw, a URL or DSN, fit for errors, logs and help
// texts: every password, secret or token in it masked (in the userinfo,
// in query parameters, in keyword/value settings), and nothing of it but
// its scheme if it does not parse (see internal/redact).
func Redacted(raw string) string { return redact.URL(raw) }
