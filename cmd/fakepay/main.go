// Command fakepay runs the fake payment provider as its own process: the
// provider API of the external contract on FAKEPAY_ADDR (default :8001),
// delivering signed webhooks to each payment's callback URL. Run ordersd
// with FAKE_PAYMENT_ENABLED=false and PAYMENT_PROVIDER_URL pointing here.
//
// Configuration: PAYMENT_WEBHOOK_SECRET, FAKE_PAYMENT_SUCCESS_RATE,
// FAKE_PAYMENT_DELAY and the fault injection variables
// FAKE_PAYMENT_FAIL_RATE, FAKE_PAYMENT_DUPLICATE_RATE, FAKE_PAYMENT_JITTER.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/orders-reference/orders/internal/config"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/payment/fakepay"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.LoadFakePay(os.Environ())
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakepay:", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("fakepay stopped", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config.FakePay, logger *slog.Logger) error {
	signer, err := payment.NewSigner(cfg.PaymentWebhookSecret)
	if err != nil {
		return fmt.Errorf("PAYMENT_WEBHOOK_SECRET: %w", err)
	}
	provider := fakepay.New(fakepay.Options{
		SuccessRate: cfg.FakePaymentSuccessRate, Delay: cfg.FakePaymentDelay, Signer: signer,
		FailRate: cfg.FakePaymentFailRate, DuplicateRate: cfg.FakePaymentDuplicateRate, Jitter: cfg.FakePaymentJitter,
		Logger: logger,
	})
	defer provider.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: provider.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("fakepay listening", "addr", ln.Addr().String(), "success_rate", cfg.FakePaymentSuccessRate, "delay", cfg.FakePaymentDelay.String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
