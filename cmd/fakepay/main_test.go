package main

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/internal/logging"
	"github.com/orders-reference/orders/internal/logging/logtest"
	"github.com/orders-reference/orders/internal/tracing"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/payment/fakepay"
	"github.com/orders-reference/orders/payment/provider"
)

// Orders' provider client sends the step's correlation id as X-Request-ID,
// and the separate fake provider logs its lines about the request with it.
func TestProviderLinesCarryTheCorrelationID(t *testing.T) {
	signer, err := payment.NewSigner("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	var sink logtest.Sink
	p := fakepay.New(fakepay.Options{SuccessRate: 1, Delay: time.Hour, Signer: signer, Logger: logging.New(&sink, slog.LevelInfo)})
	t.Cleanup(p.Close)
	srv := httptest.NewServer(handler(p, tracing.Tracing{}))
	t.Cleanup(srv.Close)

	ctx := logging.With(context.Background(), "step", "initiate_payment", "correlation_id", "req-abc-123")
	if _, err := provider.New(srv.URL, nil).InitiatePayment(ctx, payment.Request{OrderID: uuid.New(), Amount: 250, Currency: "EUR",
		CallbackURL: "http://127.0.0.1:1/webhooks/payment"}, "pay-key-1"); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, rec := range sink.Records(t) {
		if rec["msg"] == "payment requested" {
			found = true
			if rec["correlation_id"] != "req-abc-123" || rec["request_id"] != "req-abc-123" {
				t.Errorf("payment requested: %v, want correlation_id and request_id req-abc-123", rec)
			}
		}
	}
	if !found {
		t.Fatalf("no payment requested line in:\n%s", sink.String())
	}
}
