// Package redistest gives each test a Redis client and a key prefix of its
// own, whose keys are deleted when the test ends.
//
// The server is ORDERS_TEST_REDIS_URL, by default the local one.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

// DefaultURL is the server used when ORDERS_TEST_REDIS_URL is unset.
const DefaultURL = "redis://127.0.0.1:6379/0"

// URL returns the test server's URL.
func URL() string {
	if url := os.Getenv("ORDERS_TEST_REDIS_URL"); url != "" {
		return url
	}
	return DefaultURL
}

// New returns a connected client and a fresh key prefix for t.
func New(t testing.TB) (*redis.Client, string) {
	t.Helper()
	url := URL()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	c := redis.NewClient(opts)
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redistest: redis at %s (set ORDERS_TEST_REDIS_URL): %v", url, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "orders-test:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, prefix+"*", 100).Result()
			if err != nil {
				break
			}
			if len(keys) > 0 {
				c.Del(ctx, keys...)
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
		c.Close()
	})
	return c, prefix
}
