// Command fakepay runs the fake payment provider as its own process: the
// provider API of the external contract on FAKEPAY_ADDR (default :8001),
// delivering signed webhooks to each payment's callback URL. Run ordersd
// with FAKE_PAYMENT_ENABLED=false and PAYMENT_PROVIDER_URL pointing here.
//
// Configuration: PAYMENT_WEBHOOK_SECRET, FAKE_PAYMENT_SUCCESS_RATE,
// FAKE_PAYMENT_DELAY and the fault injection variables
// FAKE_PAYMENT_FAIL_RATE, FAKE_PAYMENT_DUPLICATE_RATE, FAKE_PAYMENT_JITTER.
// Traces are exported as ordersd's are (OTEL_EXPORTER_OTLP_ENDPOINT and
// the other OpenTelemetry variables, see package otlp): each payment
// request continues its caller's trace, and so does its webhook.
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

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel"

	"github.com/orders-reference/orders/internal/config"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/internal/logging"
	"github.com/orders-reference/orders/internal/tracing"
	"github.com/orders-reference/orders/internal/tracing/otlp"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/payment/fakepay"
)

// usage is what fakepay -h prints: it takes no arguments, only the
// environment.
const usage = `Usage: fakepay

Runs the fake payment provider: the provider API of the external contract
on FAKEPAY_ADDR (default :8001), delivering signed webhooks to each
payment's callback URL. Run ordersd with FAKE_PAYMENT_ENABLED=false and
PAYMENT_PROVIDER_URL pointing here. It takes no arguments; configuration is
the environment: PAYMENT_WEBHOOK_SECRET, FAKE_PAYMENT_SUCCESS_RATE,
FAKE_PAYMENT_DELAY, FAKE_PAYMENT_FAIL_RATE, FAKE_PAYMENT_DUPLICATE_RATE,
FAKE_PAYMENT_JITTER, LOG_LEVEL and the OpenTelemetry variables
(OTEL_EXPORTER_OTLP_ENDPOINT…), as README describes.
`

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "-h", "-help", "--help", "help":
			fmt.Print(usage)
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "fakepay: takes no arguments (got %s)\n\n%s", httpx.Quote(os.Args[1]), usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.LoadFakePay(os.Environ())
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakepay:", err)
		os.Exit(2)
	}
	tcfg, err := otlp.Load(os.Environ())
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakepay:", err)
		os.Exit(2)
	}
	logger := logging.New(os.Stdout, cfg.LogLevel)
	tel, stopTracing, err := otlp.New(ctx, tcfg, otlp.Options{ServiceName: "fakepay"})
	if err != nil {
		logger.Error("fakepay: tracing", "error", err)
		os.Exit(1)
	}
	if tel.Enabled() {
		// For libraries that look for them; Orders passes tel along itself.
		otel.SetTracerProvider(tel.Provider)
		otel.SetTextMapPropagator(tel.Propagator)
		otel.SetErrorHandler(otlp.ErrorHandler(logger, time.Minute))
		logger.Info("tracing", "protocol", tcfg.Protocol, "endpoint", tcfg.Endpoint)
	}
	err = run(ctx, cfg, logger, tel)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if serr := stopTracing(shutdownCtx); serr != nil {
		logger.Warn("tracing: spans not flushed", "error", serr)
	}
	cancel()
	if err != nil {
		logger.Error("fakepay stopped", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config.FakePay, logger *slog.Logger, tel tracing.Tracing) error {
	signer, err := payment.NewSigner(cfg.PaymentWebhookSecret)
	if err != nil {
		return fmt.Errorf("PAYMENT_WEBHOOK_SECRET: %w", err)
	}
	provider := fakepay.New(fakepay.Options{
		SuccessRate: cfg.FakePaymentSuccessRate, Delay: cfg.FakePaymentDelay, Signer: signer,
		FailRate: cfg.FakePaymentFailRate, DuplicateRate: cfg.FakePaymentDuplicateRate, Jitter: cfg.FakePaymentJitter,
		Logger: logger, TracerProvider: tel.Provider, Propagator: tel.Propagator,
	})
	defer provider.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler(provider, tel), ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: httpx.MaxHeaderBytes}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("fakepay listening", "addr", ln.Addr().String(), "success_rate", cfg.FakePaymentSuccessRate,
		logging.Millis("delay_ms", cfg.FakePaymentDelay))
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

// handler is the provider's API. Every request's log lines carry its
// X-Request-ID (Orders' client sends the step's correlation id) as
// request_id and correlation_id; with tracing on, every request (but the
// health check) continues the caller's trace, so that the payment's
// webhook deliveries do too.
func handler(p *fakepay.Provider, tel tracing.Tracing) http.Handler {
	r := chi.NewRouter()
	if tel.Enabled() {
		r.Use(tracing.Middleware(tel))
	}
	r.Use(httpx.RequestID)
	r.Mount("/", p.Handler())
	return r
}
