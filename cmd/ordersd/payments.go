package main

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/orders-reference/orders/internal/config"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/payment/fakepay"
	"github.com/orders-reference/orders/payment/provider"
	"github.com/orders-reference/orders/process"
)

// payments is the server's side of the payment provider.
type payments struct {
	provider process.Provider
	verifier *payment.Verifier
	// callbackURL is where the provider sends webhooks.
	callbackURL string
	close       func()
}

// newPayments sets up the webhook verifier and the provider: the embedded
// fake provider when FAKE_PAYMENT_ENABLED, else a client of
// PAYMENT_PROVIDER_URL.
func newPayments(cfg config.Config, logger *slog.Logger, addr net.Addr) (*payments, error) {
	verifier, err := payment.NewVerifier(append([]string{cfg.PaymentWebhookSecret}, cfg.PaymentWebhookPreviousSecrets...), nil)
	if err != nil {
		return nil, fmt.Errorf("PAYMENT_WEBHOOK_SECRET: %w", err)
	}
	p := &payments{verifier: verifier, callbackURL: cfg.PaymentCallbackURL, close: func() {}}
	if p.callbackURL == "" {
		p.callbackURL = "http://" + loopback(addr) + "/webhooks/payment"
	}
	if !cfg.FakePaymentEnabled {
		p.provider = provider.New(cfg.PaymentProviderURL, nil)
		return p, nil
	}
	signer, err := payment.NewSigner(cfg.PaymentWebhookSecret)
	if err != nil {
		return nil, fmt.Errorf("PAYMENT_WEBHOOK_SECRET: %w", err)
	}
	fake := fakepay.New(fakepay.Options{
		SuccessRate: cfg.FakePaymentSuccessRate, Delay: cfg.FakePaymentDelay, Signer: signer,
		FailRate: cfg.FakePaymentFailRate, DuplicateRate: cfg.FakePaymentDuplicateRate, Jitter: cfg.FakePaymentJitter,
		Logger: logger,
	})
	logger.Info("fake payment provider embedded", "success_rate", cfg.FakePaymentSuccessRate, "delay", cfg.FakePaymentDelay.String(),
		"callback_url", p.callbackURL)
	p.provider, p.close = fake, fake.Close
	return p, nil
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
