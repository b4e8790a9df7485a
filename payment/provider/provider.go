// Package provider is the HTTP client of a payment provider that speaks
// the external contract's provider API (the fake provider does).
//
// One Client keeps one http.Client whose Transport reuses connections (up
// to Options.MaxIdleConnsPerHost idle ones to the provider, so that the
// process manager's concurrent steps do not open a connection per call),
// and every call is bounded: dialing, the TLS handshake, the wait for the
// answer's headers and, through its context, the whole call. With
// Options.Breaker, a provider that keeps failing is not called for a while
// (ErrBreakerOpen): a provider that hangs then costs its callers what one
// that refuses connections does, microseconds instead of a timeout.
package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/internal/logging"
	"github.com/orders-reference/orders/internal/storable"
	"github.com/orders-reference/orders/payment"
)

// Options tunes a Client. The zero value is ready to use.
type Options struct {
	// CallTimeout bounds one call as a whole, connecting and reading the
	// answer included (default 10s); the caller's context may end it
	// sooner.
	CallTimeout time.Duration
	// DialTimeout bounds establishing a TCP connection (default 3s),
	// TLSHandshakeTimeout the TLS handshake (default 5s),
	// ResponseHeaderTimeout the wait for the answer's headers once the
	// request is sent (default 10s).
	DialTimeout           time.Duration
	TLSHandshakeTimeout   time.Duration
	ResponseHeaderTimeout time.Duration
	// MaxIdleConnsPerHost is how many idle connections to the provider are
	// kept for reuse (default 64: at least the process manager's step
	// concurrency); IdleConnTimeout how long one is kept (default 90s).
	MaxIdleConnsPerHost int
	IdleConnTimeout     time.Duration
	// MaxConnsPerHost bounds the connections to the provider, busy or idle
	// (default 256); a call beyond it waits for one, within CallTimeout.
	MaxConnsPerHost int
	// Breaker, if its Failures is set, stops calling a provider that keeps
	// failing (see BreakerOptions).
	Breaker BreakerOptions
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.CallTimeout, 10*time.Second)
	def(&o.DialTimeout, 3*time.Second)
	def(&o.TLSHandshakeTimeout, 5*time.Second)
	def(&o.ResponseHeaderTimeout, 10*time.Second)
	def(&o.IdleConnTimeout, 90*time.Second)
	if o.MaxIdleConnsPerHost <= 0 {
		o.MaxIdleConnsPerHost = 64
	}
	if o.MaxConnsPerHost <= 0 {
		o.MaxConnsPerHost = 256
	}
	return o
}

// NewHTTPClient returns the http.Client a Client uses by default: a
// Transport of its own tuned by opts (proxies from the environment, HTTP/2
// when the provider offers it over TLS). It has no overall Timeout: a
// Client bounds each call through its context.
func NewHTTPClient(opts Options) *http.Client {
	opts = opts.withDefaults()
	dialer := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   opts.TLSHandshakeTimeout,
		ResponseHeaderTimeout: opts.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          opts.MaxIdleConnsPerHost,
		MaxIdleConnsPerHost:   opts.MaxIdleConnsPerHost,
		MaxConnsPerHost:       opts.MaxConnsPerHost,
		IdleConnTimeout:       opts.IdleConnTimeout,
	}}
}

// Client calls a payment provider over HTTP. It is safe for concurrent use.
type Client struct {
	base        string
	http        *http.Client
	callTimeout time.Duration
	breaker     *breaker // nil: none
}

// New returns a Client of the provider at baseURL with the default Options;
// hc nil means NewHTTPClient(Options{}).
func New(baseURL string, hc *http.Client) *Client {
	return NewWithOptions(baseURL, hc, Options{})
}

// NewWithOptions returns a Client of the provider at baseURL that bounds
// each call by opts.CallTimeout; hc nil means NewHTTPClient(opts).
func NewWithOptions(baseURL string, hc *http.Client, opts Options) *Client {
	opts = opts.withDefaults()
	if hc == nil {
		hc = NewHTTPClient(opts)
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), http: hc, callTimeout: opts.CallTimeout, breaker: newBreaker(opts.Breaker)}
}

// InitiatePayment requests a payment; the key makes repeating it safe. The
// answer is the payment's id and status pending. Errors: see do; a key
// already used for another business request is payment.ErrConflict.
func (c *Client) InitiatePayment(ctx context.Context, req payment.Request, key string) (payment.Payment, error) {
	var out payment.Payment
	if err := c.do(ctx, http.MethodPost, "/payments", key, req, &out); err != nil {
		return payment.Payment{}, err
	}
	if out.ID == "" {
		return payment.Payment{}, fmt.Errorf("%w: POST /payments: the answer names no payment_id", payment.ErrUnavailable)
	}
	if p := payment.IDProblem(out.ID); p != "" {
		// Stored and shown as the order's payment id, and put in the
		// provider's URLs: the webhook's rule holds for it too.
		return payment.Payment{}, fmt.Errorf("%w: POST /payments: the answer's payment_id %s", payment.ErrUnavailable, p)
	}
	return out, nil
}

// Refund refunds a payment.
func (c *Client) Refund(ctx context.Context, paymentID, key string) (payment.Refund, error) {
	var out payment.Refund
	if err := c.do(ctx, http.MethodPost, "/payments/"+url.PathEscape(paymentID)+"/refund", key, struct{}{}, &out); err != nil {
		return payment.Refund{}, err
	}
	if out.ID == "" {
		return payment.Refund{}, fmt.Errorf("%w: POST /payments/%s/refund: the answer names no refund_id", payment.ErrUnavailable, paymentID)
	}
	if p := payment.IDProblem(out.ID); p != "" { // stored with the order's refund
		return payment.Refund{}, fmt.Errorf("%w: POST /payments/%s/refund: the answer's refund_id %s", payment.ErrUnavailable, paymentID, p)
	}
	return out, nil
}

// Payment looks payment id up (GET /payments/{id}): its current status
// (payment.StatusPending, StatusSucceeded, StatusFailed, StatusRefunded)
// and what it pays for. An unknown id is payment.ErrNotFound.
func (c *Client) Payment(ctx context.Context, id string) (payment.Payment, error) {
	return c.lookup(ctx, "/payments/"+url.PathEscape(id))
}

// PaymentByOrder looks up the payment of an order (GET
// /payments?order_id=…); an order without payment is payment.ErrNotFound.
func (c *Client) PaymentByOrder(ctx context.Context, orderID uuid.UUID) (payment.Payment, error) {
	return c.lookup(ctx, "/payments?order_id="+url.QueryEscape(orderID.String()))
}

// PaymentByKey looks up the payment an idempotency key created (GET
// /payments?idempotency_key=…); an unknown key is payment.ErrNotFound.
func (c *Client) PaymentByKey(ctx context.Context, key string) (payment.Payment, error) {
	return c.lookup(ctx, "/payments?idempotency_key="+url.QueryEscape(key))
}

func (c *Client) lookup(ctx context.Context, path string) (payment.Payment, error) {
	var out payment.Payment
	if err := c.do(ctx, http.MethodGet, path, "", nil, &out); err != nil {
		return payment.Payment{}, err
	}
	if out.ID == "" || out.Status == "" {
		return payment.Payment{}, fmt.Errorf("%w: GET %s: the answer names no payment_id or status", payment.ErrUnavailable, path)
	}
	if p := payment.IDProblem(out.ID); p != "" {
		return payment.Payment{}, fmt.Errorf("%w: GET %s: the answer's payment_id %s", payment.ErrUnavailable, path, p)
	}
	return out, nil
}

// do sends body (none if nil) within the call timeout and decodes a 2xx
// answer into out. Network failures, timeouts and 5xx (and 408, 429) are
// payment.ErrUnavailable: the outcome is unknown and the same request may
// succeed later; 404 is payment.ErrNotFound, 409 payment.ErrConflict,
// other 4xx payment.ErrRefused. While the breaker is open the call is not
// made: ErrBreakerOpen, a payment.ErrUnavailable.
func (c *Client) do(ctx context.Context, method, path, key string, body, out any) error {
	if c.breaker == nil {
		return c.call(ctx, method, path, key, body, out)
	}
	return c.breaker.do(ctx, method+" "+path, func() error { return c.call(ctx, method, path, key, body, out) })
}

// call is one call of do.
func (c *Client) call(ctx context.Context, method, path, key string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%w: %s %s: %w", payment.ErrRefused, method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("%w: %w", payment.ErrRefused, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	// The step's correlation id, for the provider's logs (a header the
	// protocol leaves free; a provider that ignores it loses nothing).
	if id := logging.String(ctx, "correlation_id"); httpx.ValidRequestID(id) {
		req.Header.Set("X-Request-ID", id)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s %s: %w", payment.ErrUnavailable, method, path, err)
	}
	defer func() {
		// Read what is left (a bounded amount) so the connection goes back
		// to the pool for the next call.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: %s %s: %w", payment.ErrUnavailable, method, path, err)
	}
	switch {
	case resp.StatusCode/100 == 2:
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%w: %s %s: unreadable answer: %w", payment.ErrUnavailable, method, path, err)
		}
		return nil
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %s %s: %s", payment.ErrNotFound, method, path, snippet(raw))
	case resp.StatusCode == http.StatusConflict:
		return fmt.Errorf("%w: %s %s: %s", payment.ErrConflict, method, path, snippet(raw))
	case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout:
		return fmt.Errorf("%w: %s %s: %d %s", payment.ErrRefused, method, path, resp.StatusCode, snippet(raw))
	default:
		return fmt.Errorf("%w: %s %s: %d %s", payment.ErrUnavailable, method, path, resp.StatusCode, snippet(raw))
	}
}

// snippet is the start of an answer's body for an error message: text
// PostgreSQL can store (storable.Text: NUL and invalid UTF-8 are U+FFFD),
// at most 300 characters.
func snippet(b []byte) string {
	s := storable.Text(strings.TrimSpace(string(b)))
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}
