package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orders-reference/orders/internal/eventually"
)

// Neither a configuration error nor a log line shows a password, whatever
// form the URL takes: a query parameter, a keyword/value DSN, a Redis or
// provider URL's userinfo, a callback URL's token.
func TestLogsAndErrorsShowNoSecret(t *testing.T) {
	t.Parallel()
	t.Run("database password as a query parameter", func(t *testing.T) {
		t.Parallel()
		var out strings.Builder
		code := start(context.Background(), nil, []string{"HTTP_ADDR=127.0.0.1:0", "REDIS_URL=",
			"DATABASE_URL=postgres://u@127.0.0.1:1/orders?sslmode=disable&connect_timeout=2&password=S3cretPW"}, &out, &out)
		if code != 1 || strings.Contains(out.String(), "S3cretPW") || !strings.Contains(out.String(), "password=xxxxx") {
			t.Fatalf("exit %d:\n%s", code, out.String())
		}
	})
	t.Run("keyword/value database DSN", func(t *testing.T) {
		t.Parallel()
		var out strings.Builder
		code := start(context.Background(), nil, []string{"DATABASE_URL=host=127.0.0.1 password=S3cretPW user=u dbname=x"}, &out, &out)
		if code != 2 || strings.Contains(out.String(), "S3cretPW") || !strings.Contains(out.String(), "DATABASE_URL=host=127.0.0.1 password=xxxxx user=u dbname=x: scheme") {
			t.Fatalf("exit %d:\n%s", code, out.String())
		}
	})
	t.Run("redis, provider and callback URLs", func(t *testing.T) {
		t.Parallel()
		var (
			mu  sync.Mutex
			out strings.Builder
		)
		logs := func() string {
			mu.Lock()
			defer mu.Unlock()
			return out.String()
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() {
			done <- start(ctx, nil, []string{"DATABASE_URL=" + testDatabase(t), "HTTP_ADDR=127.0.0.1:0",
				"ORDERS_ROLES=command,process", "FAKE_PAYMENT_ENABLED=false", "ADMIN_SECRET=" + adminSecret,
				"REDIS_URL=redis://:RedisPW@127.0.0.1:1/0",
				"PAYMENT_PROVIDER_URL=http://shop:ProvPW@127.0.0.1:1/v1",
				"PAYMENT_CALLBACK_URL=http://127.0.0.1:1/webhooks/payment?token=CbToken"}, &lockedWriter{w: &out, mu: &mu}, &lockedWriter{w: &out, mu: &mu})
		}()
		eventually.True(t, "ordersd to log its limiter and provider", func() bool {
			l := logs()
			return strings.Contains(l, "redis unreachable at start") && strings.Contains(l, "payment process manager")
		})
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("ordersd did not stop")
		}
		l := logs()
		for _, secret := range []string{"RedisPW", "ProvPW", "CbToken"} {
			if strings.Contains(l, secret) {
				t.Errorf("the logs show %s:\n%s", secret, l)
			}
		}
		for _, shown := range []string{`"redis":"redis://:xxxxx@127.0.0.1:1/0"`, `"provider":"http://shop:xxxxx@127.0.0.1:1/v1"`,
			`"callback_url":"http://127.0.0.1:1/webhooks/payment?token=xxxxx"`} {
			if !strings.Contains(l, shown) {
				t.Errorf("the logs do not show %s:\n%s", shown, l)
			}
		}
	})
}
