package config_test

import (
	"log/slog"
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
}

func TestUnparsableValue(t *testing.T) {
	if _, err := config.Load([]string{"FAKE_PAYMENT_DELAY=soon"}); err == nil || !strings.Contains(err.Error(), "FAKE_PAYMENT_DELAY") {
		t.Fatalf("bad duration: %v", err)
	}
}
