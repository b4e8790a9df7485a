package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/httpx"
)

// hostilePieces are fragments of JSON string literals (the text between the
// quotes): escapes PostgreSQL's text or jsonb cannot hold (\u0000), control
// characters, lone surrogates, invisible and bidirectional code points,
// raw bytes that are not UTF-8, and ordinary text.
var hostilePieces = []string{
	"a", "Z", " ", "é", "😀", `\ud83d\ude00`, `\"`, `\\`, `\/`,
	`\u0000`, `\u0001`, `\u001f`, `\u007f`, `\u0085`, `\u009f`, `\n`, `\t`, `\r`, `\b`, `\f`,
	`\ud800`, `\udfff`, `\u200b`, `\u202e`, `\ufeff`, `\uffff`,
	"\xff", "\xc3", "\xed\xa0\x80", "\x00",
}

// TestNothingTheAPIAcceptsStopsAProjection drives known-bad and random
// text through every write endpoint and query parameter: nothing is a
// server error, and afterwards every projection is running and keeps up
// (a new product is served, /readyz is ready, no projection_failed).
func TestNothingTheAPIAcceptsStopsAProjection(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	admin := []string{"X-Admin-Secret", adminSecret}
	status, body := s.call(t, "POST", "/admin/products", `{"name":"base","price":"1.00","stock":1000}`, admin...)
	if status != http.StatusCreated {
		t.Fatalf("create product: %d %v", status, body)
	}
	productID := body["id"].(string)

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	literals := []string{`a\u0000b`, "a\xffb", `a\u0007b`, `a\u0085b`, `\ud800`, `x\u202ey`, `line 1\nline 2`, `tab\there`, `\u200b`}
	for range 60 {
		var b strings.Builder
		for range 1 + rng.IntN(6) {
			b.WriteString(hostilePieces[rng.IntN(len(hostilePieces))])
		}
		literals = append(literals, b.String())
	}

	for i, lit := range literals {
		requests := []struct {
			method, path, body string
			multiline          bool // the literal goes only into a field that may hold newlines
		}{
			{"POST", "/admin/products", fmt.Sprintf(`{"name":"%s","description":"%s","price":"1.00","stock":5}`, lit, lit), false},
			{"PATCH", "/admin/products/" + productID, fmt.Sprintf(`{"name":"n%d %s"}`, i, lit), false},
			{"PATCH", "/admin/products/" + productID, fmt.Sprintf(`{"description":"%s"}`, lit), true},
			{"POST", "/orders", fmt.Sprintf(`{"user_email":"u%d%s@example.com","items":[{"product_id":"%s","quantity":1}]}`, i, lit, productID), false},
			{"POST", "/orders", fmt.Sprintf(`{"user_email":"u%d@example.com","items":[{"product_id":"%s","quantity":1}]}`, i, lit), false},
			{"GET", "/products?cursor=" + url.QueryEscape(lit), "", false},
			{"GET", "/admin/orders?status=" + url.QueryEscape(lit), "", false},
		}
		for _, rq := range requests {
			r := s.do(t, rq.method, rq.path, rq.body, append([]string{"Content-Type", "application/json"}, admin...)...)
			if r.Status >= 500 {
				t.Fatalf("%s %s with %q: %d %s", rq.method, rq.path, lit, r.Status, r.Raw)
			}
			if forbidden(lit, rq.multiline) && r.Status < 300 {
				t.Errorf("%s %s with %q accepted (%d): NUL, a control character or invalid UTF-8 must be refused", rq.method, rq.path, lit, r.Status)
			}
		}
	}

	// The projections are alive: a product created now is served, the
	// service is ready, and no projection stopped.
	status, body = s.call(t, "POST", "/admin/products", `{"name":"after","price":"2.00","stock":1}`, admin...)
	if status != http.StatusCreated {
		t.Fatalf("create product after the probes: %d %v", status, body)
	}
	after := body["id"].(string)
	eventually.True(t, "the products read model serves a product created after the probes", func() bool {
		st, _ := s.call(t, "GET", "/products/"+after, "")
		return st == http.StatusOK
	})
	eventually.True(t, "ordersd ready after the probes", func() bool {
		st, _ := s.call(t, "GET", "/readyz", "")
		return st == http.StatusOK
	})
	for _, name := range []string{"products", "orders", "order_stock", "process_manager"} {
		if got := metric(t, s, `projection_failed{projection="`+name+`"}`); got != "0" {
			t.Errorf("projection %s failed: projection_failed %q", name, got)
		}
	}
}

// forbidden tells whether a literal holds what the field may not: NUL, a
// control character (tab and newline allowed in multiline fields) or
// invalid UTF-8; a literal that is not even a JSON string is refused too.
func forbidden(lit string, multiline bool) bool {
	if !utf8.ValidString(lit) {
		return true
	}
	var v string
	if err := json.Unmarshal([]byte(`"`+lit+`"`), &v); err != nil {
		return true
	}
	return httpx.TextProblem(v, multiline) != ""
}

// A body as large as the API takes, holding as many values as fit (an
// order of 340,000 empty items, arrays where a product or a webhook has
// none), is answered with one small problem: the work and the answer are
// bounded by what a request can hold (the item count is checked before
// any item, and a problem's errors names at most 20 inputs), not by what
// the client sent. The sizes are asserted, not the time.
func TestHugeBodiesAnswerSmall(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	admin := []string{"X-Admin-Secret", adminSecret}
	many := func(item string) string {
		n := (httpx.MaxBody - 200) / (len(item) + 1)
		return strings.TrimSuffix(strings.Repeat(item+",", n), ",")
	}
	for _, c := range []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		field                    string
	}{
		{"order of empty items", "POST", "/orders", `{"user_email":"a@example.com","items":[` + many(`{}`) + `]}`, nil, http.StatusUnprocessableEntity, "items"},
		{"order of null items", "POST", "/orders", `{"user_email":"x","items":[` + many(`null`) + `]}`, nil, http.StatusBadRequest, "items[0]"},
		{"order of bad items", "POST", "/orders", `{"user_email":"x","items":[` + many(`{"product_id":"x","quantity":0}`) + `]}`, nil, http.StatusUnprocessableEntity, "items"},
		{"product name an array", "POST", "/admin/products", `{"name":[` + many(`{}`) + `],"price":"1.00","stock":1}`, admin, http.StatusBadRequest, "name"},
	} {
		if len(c.body) > httpx.MaxBody {
			t.Fatalf("%s: %d bytes, over the limit", c.name, len(c.body))
		}
		r := s.do(t, c.method, c.path, c.body, c.headers...)
		errs, _ := r.Body["errors"].(map[string]any)
		if r.Status != c.status || len(errs) != 1 || errs[c.field] == nil || len(r.Raw) > 1000 {
			t.Errorf("%s: %d, %d bytes: %.300s", c.name, r.Status, len(r.Raw), r.Raw)
		}
	}
}
