package config_test

import (
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/orders-reference/orders/internal/config"
)

func TestDefaultsNeedNoEnvironment(t *testing.T) {
	cfg, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != ":8000" || cfg.AdminSecret != "dev-admin-secret" || cfg.RedisURL != "redis://localhost:6379/0" ||
		cfg.FakePaymentDelay != time.Second || cfg.RateLimitOrdersPerMinute != 5 || !cfg.MigrateOnStart ||
		cfg.LogLevel != slog.LevelInfo || cfg.FakePaymentSuccessRate != 0.8 || cfg.EventStoreURL != "" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	cfg, err := config.Load([]string{"LOG_LEVEL=debug", "REDIS_URL=", "FAKE_PAYMENT_DELAY=250ms", "HTTP_ADDR=127.0.0.1:9000"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogLevel != slog.LevelDebug || cfg.RedisURL != "" || cfg.FakePaymentDelay != 250*time.Millisecond || cfg.HTTPAddr != "127.0.0.1:9000" {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
}

func TestInvalidConfigurationListsEveryProblem(t *testing.T) {
	_, err := config.Load([]string{
		"ADMIN_SECRET=",
		"PAYMENT_WEBHOOK_SECRET= ",
		"DATABASE_URL=mysql://user:hunter2@db/orders",
		"FAKE_PAYMENT_SUCCESS_RATE=1.5",
		"RATE_LIMIT_ORDERS_PER_MINUTE=0",
	})
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	msg := err.Error()
	for _, want := range []string{"ADMIN_SECRET", "PAYMENT_WEBHOOK_SECRET", "DATABASE_URL", "FAKE_PAYMENT_SUCCESS_RATE", "RATE_LIMIT_ORDERS_PER_MINUTE"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %s:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("error leaks a password:\n%s", msg)
	}
	if _, err := config.Load([]string{"DATABASE_URL=postgres://app:s3cr%t@db/orders"}); err == nil || strings.Contains(err.Error(), "s3cr") {
		t.Errorf("an unparsable URL leaks its password: %v", err)
	}
}

func TestUnparsableValue(t *testing.T) {
	if _, err := config.Load([]string{"FAKE_PAYMENT_DELAY=soon"}); err == nil || !strings.Contains(err.Error(), "FAKE_PAYMENT_DELAY") {
		t.Fatalf("bad duration: %v", err)
	}
}

func TestPaymentConfiguration(t *testing.T) {
	cfg, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.FakePaymentEnabled || cfg.PaymentTimeout != 15*time.Minute || len(cfg.PaymentRetryBackoff) != 5 ||
		cfg.PaymentRetryBackoff[0] != time.Second || cfg.PaymentRetryBackoff[4] != 16*time.Second {
		t.Fatalf("payment defaults: %+v", cfg)
	}
	cfg, err = config.Load([]string{"PAYMENT_RETRY_BACKOFF=100ms,1s", "PAYMENT_WEBHOOK_PREVIOUS_SECRETS=old1,whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "FAKE_PAYMENT_ENABLED=false",
		"PAYMENT_PROVIDER_URL=http://fakepay:8001", "PAYMENT_CALLBACK_URL=http://ordersd:8000/webhooks/payment"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.PaymentRetryBackoff) != 2 || cfg.PaymentRetryBackoff[0] != 100*time.Millisecond || len(cfg.PaymentWebhookPreviousSecrets) != 2 {
		t.Fatalf("payment overrides: %+v", cfg)
	}
	_, err = config.Load([]string{"FAKE_PAYMENT_ENABLED=false", "PAYMENT_TIMEOUT=0s", "FAKE_PAYMENT_FAIL_RATE=2", "PAYMENT_CALLBACK_URL=ftp://x",
		"PAYMENT_RETRY_BACKOFF=1s,0s", "PAYMENT_WEBHOOK_SECRET=whsec_", "PAYMENT_WEBHOOK_PREVIOUS_SECRETS=ok-secret,"})
	for _, want := range []string{"PAYMENT_PROVIDER_URL", "PAYMENT_TIMEOUT", "FAKE_PAYMENT_FAIL_RATE", "PAYMENT_CALLBACK_URL", "PAYMENT_RETRY_BACKOFF",
		"PAYMENT_WEBHOOK_SECRET:", "PAYMENT_WEBHOOK_PREVIOUS_SECRETS"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
	if _, err := config.Load([]string{"FAKE_PAYMENT_ENABLED=false", "PAYMENT_PROVIDER_URL=http://fakepay:8001"}); err == nil ||
		!strings.Contains(err.Error(), "PAYMENT_CALLBACK_URL") {
		t.Errorf("an external provider without a callback URL: %v", err)
	}
	fp, err := config.LoadFakePay([]string{"FAKEPAY_ADDR=:9100", "FAKE_PAYMENT_SUCCESS_RATE=1"})
	if err != nil || fp.Addr != ":9100" || fp.FakePaymentSuccessRate != 1 || fp.PaymentWebhookSecret == "" {
		t.Fatalf("fakepay: %+v %v", fp, err)
	}
	if _, err := config.LoadFakePay([]string{"PAYMENT_WEBHOOK_SECRET="}); err == nil {
		t.Fatal("fakepay accepted an empty secret")
	}
}

func TestRoles(t *testing.T) {
	cfg, err := config.Load(nil)
	if err != nil || cfg.Roles.String() != "command,query,projector,process,fakepay" {
		t.Fatalf("default roles %q: %v", cfg.Roles, err)
	}
	cfg, err = config.Load([]string{"FAKE_PAYMENT_ENABLED=false", "PAYMENT_PROVIDER_URL=http://p", "PAYMENT_CALLBACK_URL=http://c/webhooks/payment"})
	if err != nil || cfg.Roles.String() != "command,query,projector,process" {
		t.Fatalf("roles without the fake provider %q: %v", cfg.Roles, err)
	}
	cfg, err = config.Load([]string{"ORDERS_ROLES=query, projector"})
	if err != nil || cfg.Roles.String() != "query,projector" || cfg.Roles.Has(config.RoleCommand) {
		t.Fatalf("query,projector: %q %v", cfg.Roles, err)
	}
	cfg, err = config.Load([]string{"ORDERS_ROLES=all,fakepay", "FAKE_PAYMENT_ENABLED=false"})
	if err != nil || !cfg.Roles.Has(config.RoleFakePay) {
		t.Fatalf("an explicit fakepay role was dropped: %q %v", cfg.Roles, err)
	}
	for env, want := range map[string]string{
		"ORDERS_ROLES=command,payments": "unknown role",
		"ORDERS_ROLES=,":                "no role",
		"ORDERS_ROLES=process":          "PAYMENT_PROVIDER_URL",
		"ORDERS_ROLES=process,fakepay":  "PAYMENT_CALLBACK_URL",
	} {
		if _, err := config.Load([]string{env}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error about %s", env, err, want)
		}
	}
}

// .env.example lists every variable the binaries read.
func TestEnvExampleListsEveryVariable(t *testing.T) {
	raw, err := os.ReadFile("../../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		if name, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			listed[name] = true
		}
	}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			if f.Anonymous {
				walk(f.Type)
				continue
			}
			if name := f.Tag.Get("env"); name != "" && !listed[name] {
				t.Errorf(".env.example does not list %s", name)
			}
		}
	}
	walk(reflect.TypeFor[config.Config]())
	walk(reflect.TypeFor[config.FakePay]())
}

func TestSnapshotAndCacheSettings(t *testing.T) {
	cfg, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SnapshotEvery != 500 || cfg.StockCacheSize != 10_000 || cfg.OrderCacheSize != 10_000 || cfg.SubscriptionDeliveryInterval != 20*time.Millisecond {
		t.Fatalf("defaults: SNAPSHOT_EVERY %d, STOCK_CACHE_SIZE %d, SUBSCRIPTION_DELIVERY_INTERVAL %v", cfg.SnapshotEvery, cfg.StockCacheSize, cfg.SubscriptionDeliveryInterval)
	}
	if cfg, err := config.Load([]string{"SNAPSHOT_EVERY=0", "STOCK_CACHE_SIZE=1"}); err != nil || cfg.SnapshotEvery != 0 || cfg.StockCacheSize != 1 {
		t.Fatalf("snapshots off, a cache of one: %+v, %v", cfg, err)
	}
	for _, c := range [][]string{{"SNAPSHOT_EVERY=-1"}, {"STOCK_CACHE_SIZE=0"}, {"STOCK_CACHE_SIZE=-5"}, {"SNAPSHOT_EVERY=often"}, {"STOCK_CACHE_SIZE=10k"}, {"ORDER_CACHE_SIZE=0"}, {"ORDER_CACHE_SIZE=-1"}, {"PLACEMENT_MAX_BACKLOG=-1"}, {"PLACEMENT_BACKPRESSURE_WAIT=0s"}, {"PLACEMENT_BACKPRESSURE_WAIT=soon"}, {"PLACEMENT_BACKPRESSURE_WAIT=21s"},
		{"SUBSCRIPTION_DELIVERY_INTERVAL=0s"}, {"SUBSCRIPTION_DELIVERY_INTERVAL=-5ms"}, {"SUBSCRIPTION_DELIVERY_INTERVAL=2s"}, {"SUBSCRIPTION_DELIVERY_INTERVAL=fast"}} {
		name, _, _ := strings.Cut(c[0], "=")
		if _, err := config.Load(c); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", c[0], err)
		}
	}
}

// Production refuses the published development secrets and short ones,
// naming the variable and never the secret; development accepts them and
// names them for a warning.
func TestProductionSecrets(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("s", 32)
	strong := []string{"ADMIN_SECRET=" + long, "PAYMENT_WEBHOOK_SECRET=" + long + "w", "IDEMPOTENCY_KEY_SECRET=" + long + "i"}
	cfg, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.DevelopmentSecrets(); len(got) != 3 {
		t.Fatalf("development defaults named %v, want the three secrets", got)
	}
	if _, err := config.Load(append([]string{"ORDERS_ENV=production"}, strong...)); err != nil {
		t.Fatalf("production with strong secrets: %v", err)
	}
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"ORDERS_ENV=production"}, "ADMIN_SECRET: the published development value"},
		{[]string{"ORDERS_ENV=production", "ADMIN_SECRET=" + long, "PAYMENT_WEBHOOK_SECRET=" + long, "IDEMPOTENCY_KEY_SECRET=short-secret"}, "IDEMPOTENCY_KEY_SECRET: 12 bytes of key"},
		{append([]string{"ORDERS_ENV=production", "PAYMENT_WEBHOOK_PREVIOUS_SECRETS=dev-webhook-secret"}, strong...), "PAYMENT_WEBHOOK_PREVIOUS_SECRETS: the published"},
		{[]string{"ORDERS_ENV=staging"}, `ORDERS_ENV="staging"`},
		// whsec_ + 32 base64 characters is a 24-byte key.
		{[]string{"ORDERS_ENV=production", "ADMIN_SECRET=" + long, "PAYMENT_WEBHOOK_SECRET=whsec_" + strings.Repeat("QUJD", 8), "IDEMPOTENCY_KEY_SECRET=" + long}, "PAYMENT_WEBHOOK_SECRET: 24 bytes of key"},
	} {
		_, err := config.Load(c.env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error with %q", c.env, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "short-secret") || strings.Contains(err.Error(), "dev-admin-secret") {
			t.Errorf("%v: the error shows a secret: %v", c.env, err)
		}
	}
}

// The request path's bounds: a request ends before the server's write
// timeout, after any backpressure wait, and no earlier than one database
// statement may take.
func TestRequestPathTimeouts(t *testing.T) {
	cfg, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RequestTimeout != 10*time.Second || cfg.DBStatementTimeout != 5*time.Second || cfg.PaymentProviderTimeout != 10*time.Second {
		t.Fatalf("defaults: request %s, statement %s, provider %s", cfg.RequestTimeout, cfg.DBStatementTimeout, cfg.PaymentProviderTimeout)
	}
	if cfg, err := config.Load([]string{"DB_STATEMENT_TIMEOUT=0", "REQUEST_TIMEOUT=3s"}); err != nil || cfg.DBStatementTimeout != 0 || cfg.RequestTimeout != 3*time.Second {
		t.Fatalf("no statement timeout: %+v %v", cfg, err)
	}
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"REQUEST_TIMEOUT=0s"}, "REQUEST_TIMEOUT"},
		{[]string{"REQUEST_TIMEOUT=30s"}, "REQUEST_TIMEOUT"},
		{[]string{"REQUEST_TIMEOUT=2s"}, "PLACEMENT_BACKPRESSURE_WAIT"},
		{[]string{"DB_STATEMENT_TIMEOUT=11s"}, "DB_STATEMENT_TIMEOUT"},
		{[]string{"DB_STATEMENT_TIMEOUT=-1s"}, "DB_STATEMENT_TIMEOUT"},
		{[]string{"DB_STATEMENT_TIMEOUT=500us"}, "DB_STATEMENT_TIMEOUT"},
		{[]string{"PAYMENT_PROVIDER_TIMEOUT=0s"}, "PAYMENT_PROVIDER_TIMEOUT"},
	} {
		if _, err := config.Load(c.env); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want a problem naming %s", c.env, err, c.want)
		}
	}
	if _, err := config.Load([]string{"REQUEST_TIMEOUT=2s", "DB_STATEMENT_TIMEOUT=1s", "PLACEMENT_MAX_BACKLOG=0"}); err != nil {
		t.Errorf("without backpressure its wait does not matter: %v", err)
	}
}

// A URL that configuration errors, logs and help texts print shows no
// secret in any of the forms each variable takes, and stays readable.
func TestURLsPrintedWithoutSecrets(t *testing.T) {
	t.Parallel()
	cases := []struct {
		env, secret, shown string
	}{
		{"DATABASE_URL=mysql://u@h/db?sslmode=disable&password=QSecret", "QSecret", "DATABASE_URL=mysql://u@h/db?sslmode=disable&password=xxxxx: scheme"},
		{"DATABASE_URL=mysql://u:S3cretPW@h/db", "S3cretPW", "DATABASE_URL=mysql://u:xxxxx@h/db: scheme"},
		{"DATABASE_URL=host=127.0.0.1 password=S3cretPW user=u dbname=x", "S3cretPW", "DATABASE_URL=host=127.0.0.1 password=xxxxx user=u dbname=x: scheme"},
		{"DATABASE_URL=host=127.0.0.1 password='S3cret PW' user=u", "S3cret", "DATABASE_URL=host=127.0.0.1 password=xxxxx user=u: scheme"},
		{"DATABASE_URL=pg:S3cretPW@h", "S3cretPW", "DATABASE_URL=<unparseable>: scheme"},
		{"REDIS_URL=http://:RedisPW@cache:6379/0", "RedisPW", "REDIS_URL=http://:xxxxx@cache:6379/0: scheme"},
		{"REDIS_URL=http://cache:6379/0?password=RedisPW", "RedisPW", "REDIS_URL=http://cache:6379/0?password=xxxxx: scheme"},
		{"EVENTSTORE_URL=tcp://admin:EsPW@node1:2113,node2:2113?tls=true", "EsPW", "EVENTSTORE_URL=tcp://admin:xxxxx@node1:2113,node2:2113?tls=true: scheme"},
		{"PAYMENT_PROVIDER_URL=ftp://shop:ProvPW@pay.example/v1?token=T0ken", "PW", "PAYMENT_PROVIDER_URL=ftp://shop:xxxxx@pay.example/v1?token=xxxxx: scheme"},
		{"PAYMENT_CALLBACK_URL=ftp://shop/webhooks?secret=CbSecret", "CbSecret", "PAYMENT_CALLBACK_URL=ftp://shop/webhooks?secret=xxxxx: scheme"},
	}
	for _, c := range cases {
		_, err := config.Load([]string{c.env})
		if err == nil {
			t.Errorf("%s accepted", c.env)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, c.secret) || !strings.Contains(msg, c.shown) {
			t.Errorf("%s:\n%s\nwant %q and no %q", c.env, msg, c.shown, c.secret)
		}
	}
	for raw, want := range map[string]string{
		"postgres://u@h/db?sslmode=disable&password=QSecret": "postgres://u@h/db?sslmode=disable&password=xxxxx",
		"host=127.0.0.1 password=S3cretPW user=u dbname=x":   "host=127.0.0.1 password=xxxxx user=u dbname=x",
		"redis://:RedisPW@localhost:6379/0":                  "redis://:xxxxx@localhost:6379/0",
		"esdb://admin:EsPW@127.0.0.1:2113?tls=false":         "esdb://admin:xxxxx@127.0.0.1:2113?tls=false",
		"https://shop:ProvPW@pay.example/v1":                 "https://shop:xxxxx@pay.example/v1",
		"postgres://app:s3cr%t@db/orders":                    "postgres://<unparseable>",
	} {
		if got := config.Redacted(raw); got != want {
			t.Errorf("Redacted(%q) = %q, want %q", raw, got, want)
		}
	}
}

// A value the parser cannot read is named by its variable and the form it
// must have, in an operator's words: never Go's parser messages, and
// never a secret's value.
func TestUnreadableValuesSayTheForm(t *testing.T) {
	for _, c := range []struct {
		set, want string
	}{
		{"RATE_LIMIT_ORDERS_PER_MINUTE=abc", `RATE_LIMIT_ORDERS_PER_MINUTE="abc": must be a whole number`},
		{"RATE_LIMIT_ORDERS_PER_MINUTE=1.5", `RATE_LIMIT_ORDERS_PER_MINUTE="1.5": must be a whole number`},
		{"FAKE_PAYMENT_DELAY=5x", `FAKE_PAYMENT_DELAY="5x": must be a Go duration such as 250ms, 5s or 15m`},
		{"PAYMENT_TIMEOUT=soon", `PAYMENT_TIMEOUT="soon": must be a Go duration`},
		{"PAYMENT_RETRY_BACKOFF=1s,x", `PAYMENT_RETRY_BACKOFF="1s,x": must be Go durations separated by commas`},
		{"FAKE_PAYMENT_SUCCESS_RATE=most", `FAKE_PAYMENT_SUCCESS_RATE="most": must be a number such as 0.8`},
		{"RATE_LIMIT_FAIL_CLOSED=maybe", `RATE_LIMIT_FAIL_CLOSED="maybe": must be true or false`},
		{"LOG_LEVEL=loud", `LOG_LEVEL="loud": must be a log level: DEBUG, INFO, WARN or ERROR`},
		{"ORDERS_ROLES=chef", `ORDERS_ROLES="chef": unknown role "chef"`},
		{"SNAPSHOT_EVERY=" + strings.Repeat("9", 200), `SNAPSHOT_EVERY="` + strings.Repeat("9", 64) + `…": must be a whole number`},
	} {
		_, err := config.Load([]string{c.set})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %q", c.set, err, c.want)
			continue
		}
		for _, goText := range []string{"strconv", "ParseInt", "invalid syntax", "time: ", "parse error on field", "of type", "slog:"} {
			if strings.Contains(err.Error(), goText) {
				t.Errorf("%s: %q shows Go's words (%s)", c.set, err, goText)
			}
		}
	}
	// A secret that cannot be read is said so without the decoder's words
	// (which point into the secret).
	if _, err := config.Load([]string{"PAYMENT_WEBHOOK_SECRET=whsec_not*base64"}); err == nil ||
		!strings.Contains(err.Error(), "must be standard base64") || strings.Contains(err.Error(), "illegal") || strings.Contains(err.Error(), "not*base64") {
		t.Errorf("whsec_ secret: %v", err)
	}
	// cmd/fakepay's configuration says the same.
	if _, err := config.LoadFakePay([]string{"FAKE_PAYMENT_DELAY=5x"}); err == nil ||
		!strings.Contains(err.Error(), `FAKE_PAYMENT_DELAY="5x": must be a Go duration`) || strings.Contains(err.Error(), "time: ") {
		t.Errorf("fakepay: %v", err)
	}
}
