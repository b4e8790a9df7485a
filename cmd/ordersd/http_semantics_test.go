package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
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
	}
}
