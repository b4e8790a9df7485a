package process_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/payment/provider"
	"github.com/orders-reference/orders/process"
)

// A provider that hangs, reached through the real HTTP client: each
// attempt of initiate_payment ends within the client's call timeout (the
// request and the reconciling look-up), and is a retry with backoff, not
// a parked step, since its outcome is unknown. Once the client's breaker
// is open the next attempt fails without reaching the provider at all.
func TestHangingProviderCostsABoundedRetry(t *testing.T) {
	t.Parallel()
	var requests atomic.Int64
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices a client that gives up
		<-r.Context().Done()
	}))
	t.Cleanup(hang.Close)
	client := provider.NewWithOptions(hang.URL, nil, provider.Options{
		CallTimeout: 200 * time.Millisecond,
		Breaker:     provider.BreakerOptions{Failures: 2, OpenFor: time.Hour},
	})

	h := newHarness(t)
	p := h.product(t, 10)
	id := h.place(t, p, 1)
	start := time.Now()
	h.run(t, h.managerOn(h.pool, h.store, nil, client))

	step := func() (attempts int, state, lastError string) {
		err := h.pool.QueryRow(context.Background(), `SELECT attempts, state, coalesce(last_error, '') FROM process_tasks WHERE order_id = $1 AND kind = $2`,
			id, process.KindInitiatePayment).Scan(&attempts, &state, &lastError)
		if errors.Is(err, pgx.ErrNoRows) {
			return -1, "", ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return attempts, state, lastError
	}
	eventually.True(t, "the first attempt to fail", func() bool { n, _, _ := step(); return n == 1 })
	took := time.Since(start)
	n, state, lastError := step()
	if state != "pending" || !strings.Contains(lastError, "payment provider unavailable") {
		t.Fatalf("after a hanging call: attempts %d, state %s, error %q; want a pending retry", n, state, lastError)
	}
	// Two calls of 200 ms (the request, the look-up), give or take the
	// manager's polls: far below the step timeout (30 s).
	if took > 5*time.Second {
		t.Fatalf("the attempt took %s", took)
	}
	if got := requests.Load(); got != 2 {
		t.Fatalf("%d requests reached the provider, want 2 (the request and its look-up)", got)
	}

	// The breaker is open now: the next attempt fails at once and reaches
	// nothing, and is still a retry.
	h.clock.Advance(time.Second)
	eventually.True(t, "the second attempt to fail", func() bool { n, _, _ := step(); return n == 2 })
	n, state, lastError = step()
	if state != "pending" || !strings.Contains(lastError, "circuit breaker open") {
		t.Fatalf("with the breaker open: attempts %d, state %s, error %q", n, state, lastError)
	}
	if got := requests.Load(); got != 2 {
		t.Fatalf("%d requests reached the provider with the breaker open, want 2", got)
	}
	if v := h.order(t, id); v.Status != order.StatusReserved {
		t.Fatalf("order is %s, want %s until the provider answers", v.Status, order.StatusReserved)
	}
}

// A provider whose answers hold what PostgreSQL cannot store (NUL,
// invalid UTF-8) still has its refusals recorded: the step's error is
// stored with U+FFFD in their place (storable), and the step parks after
// (at once if refused, after its retries if unavailable) instead of
// running again for ever.
func TestProviderTextPostgreSQLCannotStoreIsRecorded(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		status, attempts int // a refusal parks at once, an outage after its retries
		body             string
	}{
		"refused with NUL":               {http.StatusUnprocessableEntity, 1, "{\"detail\":\"bad\x00gateway\"}"},
		"refused with invalid UTF-8":     {http.StatusUnprocessableEntity, 1, "{\"detail\":\"bad\xff\xfegateway\"}"},
		"unavailable with NUL":           {http.StatusServiceUnavailable, 2, "{\"detail\":\"bad\x00gateway\"}"},
		"unavailable with invalid UTF-8": {http.StatusServiceUnavailable, 2, "{\"detail\":\"bad\xffgateway\"}"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				if r.Method == http.MethodGet { // the reconciling look-up: no payment
					w.WriteHeader(http.StatusNotFound)
					_, _ = io.WriteString(w, c.body)
					return
				}
				w.WriteHeader(c.status)
				_, _ = io.WriteString(w, c.body)
			}))
			t.Cleanup(stub.Close)

			h := newHarness(t)
			h.backoff = []time.Duration{time.Second}
			id := h.place(t, h.product(t, 10), 1)
			h.run(t, h.managerOn(h.pool, h.store, nil, provider.New(stub.URL, nil)))

			var (
				attempts  int
				state     string
				lastError string
			)
			eventually.True(t, "the step to be parked", func() bool {
				h.clock.Advance(time.Second)
				err := h.pool.QueryRow(context.Background(), `SELECT attempts, state, coalesce(last_error, '') FROM process_tasks WHERE order_id = $1 AND kind = $2`,
					id, process.KindInitiatePayment).Scan(&attempts, &state, &lastError)
				return err == nil && state == "parked"
			})
			if attempts != c.attempts || !strings.Contains(lastError, "bad\uFFFD") || !strings.Contains(lastError, "gateway") || !utf8.ValidString(lastError) || strings.ContainsRune(lastError, 0) {
				t.Fatalf("parked after %d attempts with error %q", attempts, lastError)
			}
			letters, err := process.DeadLetters(context.Background(), h.pool, 10)
			if err != nil || len(letters) != 1 || letters[0].LastError != lastError {
				t.Fatalf("dead letters %+v, %v", letters, err)
			}
		})
	}
}
