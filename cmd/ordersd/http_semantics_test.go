package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// What clients and proxies rely on from RFC 9110: Allow on every 405 (and
// HEAD wherever GET is served), a challenge on every 401, and a
// Content-Type on every answer with a body.
func TestHTTPSemantics(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	id := "0193a3e0-0000-7000-8000-000000000000"
	for _, c := range []struct {
		method, path string
		status       int
		allow        string
		challenge    string
	}{
		{"PUT", "/orders", 405, "POST", ""},
		{"DELETE", "/products", 405, "GET, HEAD", ""},
		{"POST", "/products/" + id, 405, "GET, HEAD", ""},
		{"GET", "/admin/products", 405, "POST", ""},
		{"PUT", "/admin/products/" + id, 405, "PATCH", ""},
		{"GET", "/orders/" + id + "/cancel", 405, "POST", ""},
		{"HEAD", "/products", 200, "", ""},
		{"HEAD", "/healthz", 200, "", ""},
		{"HEAD", "/orders/" + id, 404, "", ""},
		{"GET", "/admin/orders", 401, "", "X-Admin-Secret"},
		{"POST", "/admin/products", 401, "", "X-Admin-Secret"},
		{"POST", "/webhooks/payment", 401, "", "webhook-signature"},
		{"GET", "/nowhere", 404, "", ""},
		// A path no route serves is 404 whatever the method: there is
		// nothing whose methods an Allow could list.
		{"FOO", "/nonexistent", 404, "", ""},
		{"DELETE", "/nonexistent", 404, "", ""},
		{"FOO", "/orders", 405, "POST", ""},
	} {
		var sent io.Reader = strings.NewReader("{}")
		if c.method == "GET" || c.method == "HEAD" { // a route that takes no body refuses one
			sent = nil
		}
		req, err := http.NewRequest(c.method, s.url+c.path, sent)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		name := c.method + " " + c.path
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d, want %d (%s)", name, resp.StatusCode, c.status, body)
			continue
		}
		if got := resp.Header.Get("Allow"); got != c.allow {
			t.Errorf("%s: Allow %q, want %q", name, got, c.allow)
		}
		if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, c.challenge) || (c.challenge == "") != (got == "") {
			t.Errorf("%s: WWW-Authenticate %q, want a %q challenge", name, got, c.challenge)
		}
		if c.method == "HEAD" && len(body) > 0 {
			t.Errorf("%s: a body of %d bytes", name, len(body))
		}
		if (len(body) > 0 || c.method == "HEAD") && resp.Header.Get("Content-Type") == "" {
			t.Errorf("%s: no Content-Type", name)
		}
		if len(resp.Header.Values("Allow")) > 1 {
			t.Errorf("%s: %d Allow headers", name, len(resp.Header.Values("Allow")))
		}
	}
}

// A header the API reads has one meaning: sent twice (Content-Type,
// Idempotency-Key, X-Min-Position) it is 400 naming it, never read as its
// first value. X-Request-ID, a hint rather than an input, is replaced by a
// new id unless it is one sensible value.
func TestHeadersSentTwice(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	admin := []string{"X-Admin-Secret", adminSecret}
	status, body := s.call(t, "POST", "/admin/products", `{"name":"twice","price":"1.00","stock":10}`, admin...)
	if status != http.StatusCreated {
		t.Fatalf("create product: %d %v", status, body)
	}
	placement := `{"user_email":"twice@example.com","items":[{"product_id":"` + body["id"].(string) + `","quantity":1}]}`
	send := func(method, path, body string, header http.Header) (*http.Response, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp, out
	}
	for _, c := range []struct {
		name   string
		header http.Header
		field  string
	}{
		{"two Content-Type", http.Header{"Content-Type": {"application/json", "text/plain"}}, "Content-Type"},
		{"two Idempotency-Key", http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {"k1", "k2"}}, "Idempotency-Key"},
	} {
		resp, p := send("POST", "/orders", placement, c.header)
		errs, _ := p["errors"].(map[string]any)
		if resp.StatusCode != http.StatusBadRequest || p["type"] != "/problems/malformed-request" || len(errs) != 1 || errs[c.field] == nil {
			t.Errorf("%s: %d %v", c.name, resp.StatusCode, p)
		}
	}
	resp, p := send("GET", "/products", "", http.Header{"X-Min-Position": {"1/0", "2/0"}})
	if errs, _ := p["errors"].(map[string]any); resp.StatusCode != http.StatusBadRequest || errs["X-Min-Position"] == nil {
		t.Errorf("two X-Min-Position: %d %v", resp.StatusCode, p)
	}
	for _, ids := range [][]string{{"a", "b"}, {"tab\there"}, {"c1\u0085"}, {"\xff"}, {strings.Repeat("x", 129)}} {
		resp, _ := send("GET", "/healthz", "", http.Header{"X-Request-ID": ids})
		if got := resp.Header.Get("X-Request-ID"); slices.Contains(ids, got) || uuid.Validate(got) != nil {
			t.Errorf("X-Request-ID %q: answered with %q, want a new UUID", ids, got)
		}
	}
	resp, _ = send("GET", "/healthz", "", http.Header{"X-Request-ID": {"req-1"}})
	if got := resp.Header.Get("X-Request-ID"); got != "req-1" {
		t.Errorf("a sensible X-Request-ID: answered with %q", got)
	}
}

// What the transport refuses changes nothing, and is refused at once: a
// request with an Accept that accepts no JSON (406), a body with a content
// coding (415), a body declared larger than the limit (413, before any of
// it is sent); a request line and headers over 64 KiB are answered by
// Go's server itself, the one answer that is not a problem (431, text).
func TestTransportRefusals(t *testing.T) {
	t.Parallel()
	s := startServer(t, "FAKE_PAYMENT_DELAY=1h") // the order stays reserved
	admin := []string{"X-Admin-Secret", adminSecret}
	status, body := s.call(t, "POST", "/admin/products", `{"name":"transport","price":"1.00","stock":10}`, admin...)
	if status != http.StatusCreated {
		t.Fatalf("create product: %d %v", status, body)
	}
	product := body["id"].(string)
	placement := `{"user_email":"transport@example.com","items":[{"product_id":"` + product + `","quantity":1}]}`
	if r := s.do(t, "POST", "/orders?coupon=x", placement); r.Status != http.StatusBadRequest {
		t.Errorf("an unknown query parameter: %d %s", r.Status, r.Raw)
	}
	for _, c := range []struct {
		headers []string
		status  int
	}{
		{[]string{"Accept", "application/xml"}, http.StatusNotAcceptable},
		{[]string{"Accept", "application/json;q=0"}, http.StatusNotAcceptable},
		{[]string{"Accept", "application/problem+json"}, http.StatusNotAcceptable}, // a success would be application/json
		{[]string{"Accept", "application/json;q=0, */*;q=0.1"}, http.StatusNotAcceptable},
		{[]string{"Accept", "*/*;charset=utf-8, application/json;q=0"}, http.StatusNotAcceptable},
		{[]string{"Content-Encoding", "gzip"}, http.StatusUnsupportedMediaType},
		{[]string{"Idempotency-Key", "k1", "Idempotency-Key", "k2"}, http.StatusBadRequest},
	} {
		if r := s.do(t, "POST", "/orders", placement, c.headers...); r.Status != c.status {
			t.Errorf("%q: %d %s, want %d", c.headers, r.Status, r.Raw, c.status)
		}
	}
	// Only the one order placed now reserves stock.
	placed := s.do(t, "POST", "/orders", placement, "Accept", "application/json")
	if placed.Status != http.StatusCreated {
		t.Fatalf("place: %d %s", placed.Status, placed.Raw)
	}
	r := s.do(t, "GET", "/products/"+product, "", "X-Min-Position", placed.Header.Get("X-Event-Position"))
	if r.Status != http.StatusOK || r.Body["reserved"] != float64(1) || r.Body["stock"] != float64(9) {
		t.Errorf("after refusals and one order: %d %s, want 1 reserved, 9 in stock", r.Status, r.Raw)
	}

	// A body declared over 1 MiB is refused before it is sent, on every
	// route that takes a body (the server's read timeout is 30 s).
	for _, c := range []struct{ path, headers string }{
		{"/orders", ""},
		{"/admin/products", "X-Admin-Secret: " + adminSecret + "\r\n"},
		{"/webhooks/payment", ""},
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%sContent-Length: 5000000\r\n\r\n", c.path, c.headers)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Errorf("%s: no answer before the body: %v", c.path, err)
			conn.Close()
			continue
		}
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%s with Content-Length 5000000: %d, want 413", c.path, resp.StatusCode)
		}
	}

	// Headers: up to 64 KiB in all are read; more is Go's own 431.
	for _, c := range []struct {
		size   int
		status int
	}{{60 << 10, http.StatusOK}, {70 << 10, http.StatusRequestHeaderFieldsTooLarge}} {
		req, err := http.NewRequest("GET", s.url+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Padding", strings.Repeat("p", c.size))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("a header of %d bytes: %d, want %d", c.size, resp.StatusCode, c.status)
		}
	}
}
