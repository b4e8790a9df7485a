package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/orders-reference/orders/internal/apitest"
	"github.com/orders-reference/orders/internal/httpx"
)

// A method a path does not serve is 405 with an Allow listing those it
// does (also under a mounted router); a path no route serves is 404,
// whatever the method: there is nothing whose methods Allow could list.
func TestMethodNotAllowedAndNotFound(t *testing.T) {
	t.Parallel()
	ok := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }
	sub := chi.NewRouter()
	sub.Use(middleware.GetHead)
	sub.NotFound(httpx.NotFound)
	sub.MethodNotAllowed(httpx.MethodNotAllowed(sub))
	sub.Get("/payments/{id}", ok)
	sub.Post("/payments", ok)
	r := chi.NewRouter()
	r.Use(middleware.GetHead)
	r.NotFound(httpx.NotFound)
	r.MethodNotAllowed(httpx.MethodNotAllowed(r))
	r.Post("/orders", ok)
	r.Get("/products", ok)
	r.Mount("/fakepay", sub)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	cl := &apitest.Client{URL: srv.URL}
	for _, c := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"PUT", "/orders", 405, "POST"},
		{"FOO", "/orders", 405, "POST"},
		{"DELETE", "/products", 405, "GET, HEAD"},
		{"HEAD", "/products", 204, ""},
		{"GET", "/nonexistent", 404, ""},
		{"FOO", "/nonexistent", 404, ""},
		{"DELETE", "/nonexistent", 404, ""},
		{"DELETE", "/fakepay/payments/p1", 405, "GET, HEAD"},
		{"GET", "/fakepay/payments", 405, "POST"},
		{"FOO", "/fakepay/nowhere", 404, ""},
		{"GET", "/fakepay/nowhere", 404, ""},
		{"HEAD", "/fakepay/payments/p1", 204, ""},
	} {
		resp := cl.Do(t, c.method, c.path, "")
		if resp.Status != c.status || resp.Header.Get("Allow") != c.allow || len(resp.Header.Values("Allow")) > 1 {
			t.Errorf("%s %s: %d Allow %q, want %d Allow %q", c.method, c.path, resp.Status, resp.Header.Values("Allow"), c.status, c.allow)
			continue
		}
		switch c.status {
		case 404:
			apitest.CheckProblem(t, resp, 404, httpx.TypeNotFound)
		case 405:
			apitest.CheckProblem(t, resp, 405, httpx.TypeMethodNotAllowed)
		}
	}
}
