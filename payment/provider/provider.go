// Package provider is the HTTP client of a payment provider that speaks
// the external contract's provider API (the fake provider does).
package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/orders-reference/orders/payment"
)

// Client calls a payment provider over HTTP.
type Client struct {
	base string
	http *http.Client
}

// New returns a Client of the provider at baseURL; hc nil means a client
// with a 10s timeout.
func New(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), http: hc}
}

// InitiatePayment requests a payment; the key makes repeating it safe.
func (c *Client) InitiatePayment(ctx context.Context, req payment.Request, key string) (payment.Payment, error) {
	var out payment.Payment
	if err := c.post(ctx, "/payments", key, req, &out); err != nil {
		return payment.Payment{}, err
	}
	if out.ID == "" {
		return payment.Payment{}, fmt.Errorf("%w: POST /payments: the answer names no payment_id", payment.ErrUnavailable)
	}
	return out, nil
}

// Refund refunds a payment.
func (c *Client) Refund(ctx context.Context, paymentID, key string) (payment.Refund, error) {
	var out payment.Refund
	if err := c.post(ctx, "/payments/"+url.PathEscape(paymentID)+"/refund", key, struct{}{}, &out); err != nil {
		return payment.Refund{}, err
	}
	if out.ID == "" {
		return payment.Refund{}, fmt.Errorf("%w: POST /payments/%s/refund: the answer names no refund_id", payment.ErrUnavailable, paymentID)
	}
	return out, nil
}

// post sends body and decodes a 2xx answer into out. Network failures and
// 5xx are payment.ErrUnavailable, 404 payment.ErrNotFound, other 4xx
// payment.ErrRefused.
func (c *Client) post(ctx context.Context, path, key string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%w: %w", payment.ErrRefused, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: POST %s: %w", payment.ErrUnavailable, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: POST %s: %w", payment.ErrUnavailable, path, err)
	}
	switch {
	case resp.StatusCode/100 == 2:
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%w: POST %s: unreadable answer: %w", payment.ErrUnavailable, path, err)
		}
		return nil
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: POST %s: %s", payment.ErrNotFound, path, snippet(raw))
	case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout:
		return fmt.Errorf("%w: POST %s: %d %s", payment.ErrRefused, path, resp.StatusCode, snippet(raw))
	default:
		return fmt.Errorf("%w: POST %s: %d %s", payment.ErrUnavailable, path, resp.StatusCode, snippet(raw))
	}
}

// snippet is the start of an answer's body for an error message: valid
// UTF-8, at most 300 characters.
func snippet(b []byte) string {
	s := strings.ToValidUTF8(strings.TrimSpace(string(b)), "\uFFFD")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}
