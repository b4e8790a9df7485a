package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/orders-reference/orders/api"
	"github.com/orders-reference/orders/eventstore/memory"
	"github.com/orders-reference/orders/httpapi"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/payment/fakepay"
)

// The router and the OpenAPI document cannot drift: every route of a
// server running every role is in the document, and every operation in the
// document is a route (asset folders of the viewers aside). Such a server
// runs the fake payment provider in process and serves none of its API
// (only a process with the fakepay role and without the process role
// does, under /fakepay): that API has its own document, checked below.
func TestRouterMatchesOpenAPI(t *testing.T) {
	verifier, err := payment.NewVerifier([]string{"a-test-secret"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	a := httpapi.New(httpapi.Config{Webhooks: verifier, Events: memory.New()})
	mount(r, []part{
		{mount: a.MountCommands},
		{mount: a.MountQueries},
	}, http.NotFoundHandler(), http.NotFoundHandler())
	served := walk(t, r)
	compareRoutes(t, "openapi.json", served, described(t, api.Spec()))
	if len(served) < 16 {
		t.Fatalf("only %d routes walked: %v", len(served), served)
	}
}

// Likewise the fake payment provider's routes (as cmd/fakepay serves them;
// ordersd's fakepay role mounts the same under /fakepay) and its document.
func TestFakeProviderRouterMatchesItsOpenAPI(t *testing.T) {
	signer, _ := payment.NewSigner("a-test-secret")
	fake := fakepay.New(fakepay.Options{Signer: signer})
	defer fake.Close()
	r, ok := fake.Handler().(chi.Routes)
	if !ok {
		t.Fatalf("the fake provider's handler is a %T, not a chi router", fake.Handler())
	}
	served := walk(t, r)
	compareRoutes(t, "fakepay.openapi.json", served, described(t, api.FakePaySpec()))
	if len(served) < 5 {
		t.Fatalf("only %d routes walked: %v", len(served), served)
	}
}

// The fake provider answers as its document says: each answer below is
// checked against fakepay.openapi.json (route, status, body schema).
func TestFakeProviderAnswersMatchItsOpenAPI(t *testing.T) {
	signer, _ := payment.NewSigner("a-test-secret")
	// Outcomes are decided an hour from now: no webhook leaves the test.
	succeeds := fakepay.New(fakepay.Options{Signer: signer, SuccessRate: 1, Delay: time.Hour})
	fails := fakepay.New(fakepay.Options{Signer: signer, SuccessRate: 0, Delay: time.Hour})
	faulty := fakepay.New(fakepay.Options{Signer: signer, FailRate: 1, Delay: time.Hour})
	c := newContractFor(t, "fakepay.openapi.json", api.FakePaySpec())
	orderID := uuid.NewString()
	request := func(amount string) string {
		return `{"order_id":"` + orderID + `","amount":"` + amount + `","currency":"USD","callback_url":"http://127.0.0.1:9/webhooks/payment"}`
	}
	var paymentID string
	for _, p := range []*fakepay.Provider{succeeds, fails, faulty} {
		srv := httptest.NewServer(p.Handler())
		call := func(method, path, body string, headers ...string) (int, map[string]any) {
			t.Helper()
			req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			for i := 0; i+1 < len(headers); i += 2 {
				req.Header.Set(headers[i], headers[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			c.check(t, req, resp, raw)
			var out map[string]any
			_ = json.Unmarshal(raw, &out)
			return resp.StatusCode, out
		}
		expect := func(what string, status int, want ...int) {
			t.Helper()
			if !slices.Contains(want, status) {
				t.Errorf("%s: %d, want %v", what, status, want)
			}
		}
		switch p {
		case succeeds:
			status, body := call("POST", "/payments", request("15.00"), "Idempotency-Key", "k1")
			expect("request", status, http.StatusCreated)
			paymentID, _ = body["payment_id"].(string)
			status, _ = call("POST", "/payments", request("15.00"), "Idempotency-Key", "k1")
			expect("the same request again", status, http.StatusCreated)
			status, _ = call("POST", "/payments", request("16.00"), "Idempotency-Key", "k1")
			expect("another request with the key", status, http.StatusConflict)
			status, _ = call("POST", "/payments", request("15.00"))
			expect("no key", status, http.StatusBadRequest, http.StatusUnprocessableEntity)
			status, _ = call("POST", "/payments", `{}`, "Idempotency-Key", "k2")
			expect("no fields", status, http.StatusUnprocessableEntity)
			status, _ = call("POST", "/payments", `{"order_id":`, "Idempotency-Key", "k2")
			expect("not JSON", status, http.StatusBadRequest)
			status, _ = call("POST", "/payments", request("15.00"), "Idempotency-Key", "k2", "Content-Type", "text/plain")
			expect("not sent as JSON", status, http.StatusUnsupportedMediaType)
			status, _ = call("POST", "/payments", `{"currency":"`+strings.Repeat("x", 2<<20)+`"}`, "Idempotency-Key", "k2")
			expect("too large", status, http.StatusRequestEntityTooLarge)
			status, _ = call("GET", "/payments/"+paymentID, "")
			expect("get", status, http.StatusOK)
			status, _ = call("GET", "/payments/pay_nope", "")
			expect("get unknown", status, http.StatusNotFound)
			status, _ = call("GET", "/payments?order_id="+orderID, "")
			expect("find by order", status, http.StatusOK)
			status, _ = call("GET", "/payments?idempotency_key=k1", "")
			expect("find by key", status, http.StatusOK)
			status, _ = call("GET", "/payments", "", "Idempotency-Key", "k1")
			expect("find by key header", status, http.StatusOK)
			status, _ = call("GET", "/payments?order_id="+uuid.NewString(), "")
			expect("find unknown", status, http.StatusNotFound)
			status, _ = call("GET", "/payments?order_id=nope", "")
			expect("find by a malformed order id", status, http.StatusBadRequest)
			status, _ = call("GET", "/payments", "")
			expect("find nothing named", status, http.StatusBadRequest)
			status, _ = call("GET", "/payments?order_id="+orderID+"&order_id="+orderID, "")
			expect("find by an order id given twice", status, http.StatusBadRequest)
			status, _ = call("POST", "/payments/pay_nope/refund", "", "Idempotency-Key", "a\tb")
			expect("refund with a malformed key", status, http.StatusBadRequest)
			status, _ = call("POST", "/payments/"+paymentID+"/refund", "", "Idempotency-Key", "r1")
			expect("refund", status, http.StatusOK)
			status, body = call("GET", "/payments/"+paymentID, "")
			expect("get refunded", status, http.StatusOK)
			if body["status"] != "refunded" {
				t.Errorf("after a refund: %v", body)
			}
			status, _ = call("POST", "/payments/pay_nope/refund", "")
			expect("refund unknown", status, http.StatusNotFound)
			status, _ = call("GET", "/healthz", "")
			expect("healthz", status, http.StatusOK)
		case fails:
			status, body := call("POST", "/payments", request("15.00"), "Idempotency-Key", "k1")
			expect("request", status, http.StatusCreated)
			id, _ := body["payment_id"].(string)
			status, _ = call("POST", "/payments/"+id+"/refund", "")
			expect("refund of a failed payment", status, http.StatusUnprocessableEntity)
		case faulty:
			status, _ := call("POST", "/payments", request("15.00"), "Idempotency-Key", "k1")
			expect("injected failure", status, http.StatusServiceUnavailable)
		}
		srv.Close()
		p.Close()
	}
}

// walk lists the routes of r as "METHOD /path".
func walk(t *testing.T, r chi.Routes) []string {
	t.Helper()
	var served []string
	err := chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if strings.HasSuffix(route, "/*") { // the viewers' asset folders
			return nil
		}
		served = append(served, method+" "+strings.TrimSuffix(route, "/"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(served)
	return served
}

// described lists the operations of an OpenAPI document as "METHOD /path".
func described(t *testing.T, spec []byte) []string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			out = append(out, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

func compareRoutes(t *testing.T, name string, served, described []string) {
	t.Helper()
	for _, s := range served {
		if !slices.Contains(described, s) {
			t.Errorf("served but not in %s: %s", name, s)
		}
	}
	for _, d := range described {
		if !slices.Contains(served, d) {
			t.Errorf("in %s but not served: %s", name, d)
		}
	}
}

// Every route reads its query string by the one rule and declares its
// parameters as its document does: a parameter the document lists for it
// is declared (given empty, it is refused as empty, not as unknown), any
// other (another route's, or one no route has) is refused as unknown.
// Only the documents and /metrics, which answer other media types, take
// what they are sent.
func TestEveryRouteDeclaresItsQueryParameters(t *testing.T) {
	verifier, err := payment.NewVerifier([]string{"a-test-secret"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	a := httpapi.New(httpapi.Config{Webhooks: verifier, Events: memory.New()})
	mount(r, []part{{mount: a.MountCommands}, {mount: a.MountQueries}}, http.NotFoundHandler(), http.NotFoundHandler())
	signer, _ := payment.NewSigner("a-test-secret")
	fake := fakepay.New(fakepay.Options{Signer: signer})
	defer fake.Close()
	for _, c := range []struct {
		name    string
		handler http.Handler
		spec    []byte
		skip    []string
	}{
		{"openapi.json", r, api.Spec(), []string{"/metrics", "/openapi.json", "/docs", "/redoc"}},
		{"fakepay.openapi.json", fake.Handler(), api.FakePaySpec(), nil},
	} {
		documented := queryParameters(t, c.spec)
		var all []string
		for _, params := range documented {
			all = append(all, params...)
		}
		all = append(all, "zz_unknown")
		for _, route := range walk(t, c.handler.(chi.Routes)) {
			method, path, _ := strings.Cut(route, " ")
			if slices.Contains(c.skip, path) {
				continue
			}
			target := strings.ReplaceAll(path, "{id}", uuid.NewString())
			for _, name := range all {
				value, want := "x", "is not a query parameter"
				if slices.Contains(documented[route], name) {
					value, want = "", "must not be empty"
				}
				rec := httptest.NewRecorder()
				c.handler.ServeHTTP(rec, httptest.NewRequest(method, target+"?"+name+"="+value, nil))
				var p struct{ Errors map[string]string }
				_ = json.Unmarshal(rec.Body.Bytes(), &p)
				if rec.Code != http.StatusBadRequest || !strings.HasPrefix(p.Errors[name], want) {
					t.Errorf("%s: %s ?%s=%s: %d %s, want 400: %s %s", c.name, route, name, value, rec.Code, rec.Body, name, want)
				}
			}
		}
	}
}

// queryParameters lists the query parameters of each operation of an
// OpenAPI document ("METHOD /path"), references resolved.
func queryParameters(t *testing.T, spec []byte) map[string][]string {
	t.Helper()
	type parameter struct {
		Ref  string `json:"$ref"`
		Name string `json:"name"`
		In   string `json:"in"`
	}
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Parameters map[string]parameter `json:"parameters"`
		} `json:"components"`
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			if method == "parameters" {
				continue
			}
			var op struct{ Parameters []parameter }
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatal(err)
			}
			key := strings.ToUpper(method) + " " + path
			out[key] = []string{}
			for _, p := range op.Parameters {
				if p.Ref != "" {
					p = doc.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
				}
				if p.In == "query" {
					out[key] = append(out[key], p.Name)
				}
			}
		}
	}
	return out
}
