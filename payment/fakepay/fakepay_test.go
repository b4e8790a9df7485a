package fakepay_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/internal/logging"
	"github.com/orders-reference/orders/internal/logging/logtest"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/payment/fakepay"
	"github.com/orders-reference/orders/payment/provider"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// receiver records verified webhooks; it answers 500 to the first
// failFirst deliveries.
type receiver struct {
	t         *testing.T
	verifier  *payment.Verifier
	mu        sync.Mutex
	failFirst int
	seen      int
	got       []delivery
}

type delivery struct {
	id      string
	outcome payment.Outcome
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id, err := rc.verifier.Verify(r.Header, body)
	if err != nil {
		rc.t.Errorf("unverifiable webhook: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.seen++
	if rc.seen <= rc.failFirst {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	var o payment.Outcome
	if err := json.Unmarshal(body, &o); err != nil {
		rc.t.Errorf("webhook body: %v", err)
	}
	rc.got = append(rc.got, delivery{id, o})
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) wait(t *testing.T, n int) []delivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rc.mu.Lock()
		got := append([]delivery(nil), rc.got...)
		rc.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d webhooks delivered, want %d", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func setup(t *testing.T, opts fakepay.Options, failFirst int) (*fakepay.Provider, *provider.Client, *receiver, string) {
	t.Helper()
	signer, err := payment.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := payment.NewVerifier([]string{secret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{t: t, verifier: verifier, failFirst: failFirst}
	hooks := httptest.NewServer(rc)
	t.Cleanup(hooks.Close)
	opts.Signer, opts.RetryBase = signer, 5*time.Millisecond
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	p := fakepay.New(opts)
	t.Cleanup(p.Close)
	api := httptest.NewServer(p.Handler())
	t.Cleanup(api.Close)
	return p, provider.New(api.URL, nil), rc, hooks.URL
}

func request(callback string) payment.Request {
	return payment.Request{OrderID: uuid.New(), Amount: 150000, Currency: "USD", CallbackURL: callback}
}

// A payment request is idempotent by key; its webhook is signed, retried
// until a 2xx with the same message id, and reports the decided outcome.
func TestPaymentIdempotencyAndDelivery(t *testing.T) {
	_, client, rc, callback := setup(t, fakepay.Options{SuccessRate: 1}, 2)
	ctx := context.Background()
	req := request(callback)
	first, err := client.InitiatePayment(ctx, req, req.OrderID.String())
	if err != nil || first.Status != payment.StatusPending || first.ID == "" {
		t.Fatalf("initiate: %+v %v", first, err)
	}
	again, err := client.InitiatePayment(ctx, req, req.OrderID.String())
	if err != nil || again.ID != first.ID {
		t.Fatalf("same key: %+v %v, want payment %s", again, err, first.ID)
	}
	other := req
	other.Amount++
	if _, err := client.InitiatePayment(ctx, other, req.OrderID.String()); !errors.Is(err, payment.ErrRefused) {
		t.Fatalf("same key, other request: %v", err)
	}
	if _, err := client.InitiatePayment(ctx, req, ""); !errors.Is(err, payment.ErrRefused) {
		t.Fatalf("no key: %v", err)
	}
	got := rc.wait(t, 1)
	o := got[0].outcome
	if got[0].id != "msg_"+first.ID || o.PaymentID != first.ID || o.OrderID != req.OrderID || o.Status != payment.StatusSuccess || o.Amount != req.Amount {
		t.Fatalf("webhook %+v", got[0])
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.seen != 3 {
		t.Fatalf("%d delivery attempts, want 3 (two refused, one accepted)", rc.seen)
	}
}

// Success rates 0 and 1 are exact; duplicates deliver one message twice;
// refunds are idempotent and only for successful payments.
func TestOutcomesDuplicatesRefunds(t *testing.T) {
	ctx := context.Background()
	_, client, rc, callback := setup(t, fakepay.Options{SuccessRate: 0, DuplicateRate: 1, Jitter: 5 * time.Millisecond}, 0)
	var ids []string
	for range 10 {
		req := request(callback)
		pay, err := client.InitiatePayment(ctx, req, req.OrderID.String())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, pay.ID)
	}
	got := rc.wait(t, 20)
	perMessage := map[string]int{}
	for _, d := range got {
		if d.outcome.Status != payment.StatusFailed {
			t.Fatalf("success rate 0 delivered %+v", d.outcome)
		}
		perMessage[d.id]++
	}
	for _, id := range ids {
		if perMessage["msg_"+id] != 2 {
			t.Fatalf("message of %s delivered %d times, want 2", id, perMessage["msg_"+id])
		}
	}
	if _, err := client.Refund(ctx, ids[0], "r1"); !errors.Is(err, payment.ErrRefused) {
		t.Fatalf("refund of a failed payment: %v", err)
	}
	if _, err := client.Refund(ctx, "pay_nope", "r1"); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("refund of an unknown payment: %v", err)
	}

	ok := fakepay.New(fakepay.Options{SuccessRate: 1, Signer: mustSigner(t), Delay: time.Hour})
	defer ok.Close()
	req := request(callback)
	pay, err := ok.InitiatePayment(ctx, req, "k")
	if err != nil {
		t.Fatal(err)
	}
	r1, err1 := ok.Refund(ctx, pay.ID, "r")
	r2, err2 := ok.Refund(ctx, pay.ID, "r")
	if err1 != nil || err2 != nil || r1.ID == "" || r1 != r2 {
		t.Fatalf("refunds %+v %v, %+v %v", r1, err1, r2, err2)
	}
}

// An injected outage answers 5xx; the provider's client reports it as
// unavailable, and nothing is created.
func TestInjectedFailures(t *testing.T) {
	p, client, _, callback := setup(t, fakepay.Options{SuccessRate: 1, Delay: time.Hour, FailRate: 1}, 0)
	req := request(callback)
	if _, err := client.InitiatePayment(context.Background(), req, "k"); !errors.Is(err, payment.ErrUnavailable) {
		t.Fatalf("outage: %v", err)
	}
	if n := len(p.Payments()); n != 0 {
		t.Fatalf("%d payments created during an outage", n)
	}
	p.SetFailRate(0)
	if _, err := client.InitiatePayment(context.Background(), req, "k"); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}

func mustSigner(t *testing.T) *payment.Signer {
	s, err := payment.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A delivery's retry lines carry the correlation id of the request that
// asked for the payment, as its other lines do.
func TestDeliveryRetryLinesCarryTheCorrelationID(t *testing.T) {
	var logs logtest.Sink
	p, _, rc, callback := setup(t, fakepay.Options{SuccessRate: 1, Logger: logging.New(&logs, slog.LevelInfo)}, 1)
	ctx := logging.With(context.Background(), "correlation_id", "corr-retry-1")
	if _, err := p.InitiatePayment(ctx, request(callback), "key-retry-1"); err != nil {
		t.Fatal(err)
	}
	rc.wait(t, 1) // after one refused delivery
	var retries int
	for _, rec := range logs.Records(t) {
		if rec["msg"] == "webhook delivery failed; retrying" {
			retries++
			if rec["correlation_id"] != "corr-retry-1" {
				t.Errorf("retry line without the request's correlation id: %v", rec)
			}
		}
	}
	if retries == 0 {
		t.Fatalf("no retry line in:\n%s", logs.String())
	}
}
