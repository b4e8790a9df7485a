package kurrentdb_test

import (
	"context"
	"testing"
	"time"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/kurrentdb"
	"github.com/orders-reference/orders/eventstore/kurrentdb/kurrentdbtest"
	"github.com/orders-reference/orders/eventstore/storetest"
)

// capabilities is what the adapter promises (see the package doc): no
// global event-id uniqueness and best-effort idempotency for Any and
// StreamExists; a replayed append is told by the mark it reads back.
var capabilities = storetest.Capabilities{UniqueEventIDs: false, IdempotentAny: false, ReportsReplayed: true}

// bigAppends lets the double take the suite's 4 MiB event, as KurrentDB
// from v25.1 does (256 MiB); up to v25.0 the default is 1 MiB.
const bigAppends = 8 << 20

// fastRetry makes resubscriptions quick in tests.
var fastRetry = kurrentdb.Options{RetryDelay: time.Millisecond, MaxRetryDelay: 50 * time.Millisecond}

func TestStore(t *testing.T) {
	t.Parallel()
	// The hooks have nowhere to go: KurrentDB commits each append in its
	// single writer, with no transaction a test could hold open, and the
	// double does the same.
	storetest.Run(t, func(t *testing.T, h storetest.Hooks) eventstore.Store {
		srv := kurrentdbtest.Start(t, kurrentdbtest.Options{MaxAppendSize: bigAppends})
		opts := fastRetry
		opts.DeliveryInterval = h.DeliveryInterval
		return open(t, srv.URL(), opts)
	}, capabilities)
}

// open returns a store on url, closed when t ends.
func open(t *testing.T, url string, opts kurrentdb.Options) *kurrentdb.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := kurrentdb.New(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}
