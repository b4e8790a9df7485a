package main

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

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
		req, err := http.NewRequest(c.method, s.url+c.path, strings.NewReader("{}"))
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
