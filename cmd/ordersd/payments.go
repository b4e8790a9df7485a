package main

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/orders-reference/orders/internal/config"
	"github.com/orders-reference/orders/internal/logging"
	"github.com/orders-reference/orders/internal/tracing"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/payment/fakepay"
)

// newFakeProvider starts the embedded fake payment provider.
func newFakeProvider(cfg config.Config, logger *slog.Logger, tel tracing.Tracing) (*fakepay.Provider, error) {
	signer, err := payment.NewSigner(cfg.PaymentWebhookSecret)
	if err != nil {
		return nil, fmt.Errorf("PAYMENT_WEBHOOK_SECRET: %w", err)
	}
	logger.Info("fake payment provider embedded", "success_rate", cfg.FakePaymentSuccessRate, logging.Millis("delay_ms", cfg.FakePaymentDelay))
	return fakepay.New(fakepay.Options{
		SuccessRate: cfg.FakePaymentSuccessRate, Delay: cfg.FakePaymentDelay, Signer: signer,
		FailRate: cfg.FakePaymentFailRate, DuplicateRate: cfg.FakePaymentDuplicateRate, Jitter: cfg.FakePaymentJitter,
		Logger: logger, TracerProvider: tel.Provider, Propagator: tel.Propagator,
	}), nil
}

// loopback is addr as this host reaches it: a wildcard listener's port on
// 127.0.0.1.
func loopback(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
	}
	return tcp.String()
}
