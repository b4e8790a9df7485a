package fakepay_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/orders-reference/orders/internal/apitest"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/payment/fakepay"
)

// The fake provider answers wrong requests as the API does
// (apitest.CheckProblem): RFC 9457 problems in the API's terms, with
// errors naming every field they are about.
func TestProblemsSpeakTheAPI(t *testing.T) {
	t.Parallel()
	p := fakepay.New(fakepay.Options{Signer: mustSigner(t), Delay: time.Hour, SuccessRate: 0})
	t.Cleanup(p.Close)
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	failed, err := p.InitiatePayment(context.Background(), request("http://127.0.0.1:1/hooks"), "failing")
	if err != nil {
		t.Fatal(err)
	}
	cl := &apitest.Client{URL: srv.URL}
	valid := `{"order_id":"0193a3e0-0000-7000-8000-000000000001","amount":"15.00","currency":"USD","callback_url":"http://127.0.0.1:1/hooks"}`
	key := []string{"Idempotency-Key", "k1"}
	for _, c := range []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		typ                      string
		fields                   []string
	}{
		{"no key", "POST", "/payments", valid, nil, 400, httpx.TypeMalformedRequest, []string{"Idempotency-Key"}},
		{"empty request", "POST", "/payments", `{}`, key, 422, httpx.TypeValidation, []string{"order_id", "amount", "currency", "callback_url"}},
		{"order_id not a UUID", "POST", "/payments", `{"order_id":"x","amount":"1.00","currency":"USD","callback_url":"http://127.0.0.1:1/hooks"}`, key, 422, httpx.TypeValidation, []string{"order_id"}},
		{"order_id a number", "POST", "/payments", `{"order_id":1,"amount":"1.00","currency":"USD","callback_url":"http://127.0.0.1:1/hooks"}`, key, 400, httpx.TypeMalformedRequest, []string{"order_id"}},
		{"amount three decimals", "POST", "/payments", `{"order_id":"0193a3e0-0000-7000-8000-000000000001","amount":"1.001","currency":"USD","callback_url":"http://127.0.0.1:1/hooks"}`, key, 422, httpx.TypeValidation, []string{"amount"}},
		{"amount negative", "POST", "/payments", `{"order_id":"0193a3e0-0000-7000-8000-000000000001","amount":"-1.00","currency":"USD","callback_url":"http://127.0.0.1:1/hooks"}`, key, 422, httpx.TypeValidation, []string{"amount"}},
		{"currency a number", "POST", "/payments", `{"order_id":"0193a3e0-0000-7000-8000-000000000001","amount":"1.00","currency":840,"callback_url":"http://127.0.0.1:1/hooks"}`, key, 400, httpx.TypeMalformedRequest, []string{"currency"}},
		{"unknown field", "POST", "/payments", `{"order_id":"0193a3e0-0000-7000-8000-000000000001","amount":"1.00","currency":"USD","callback_url":"http://127.0.0.1:1/hooks","tip":1}`, key, 400, httpx.TypeMalformedRequest, []string{"tip"}},
		{"array body", "POST", "/payments", `[]`, key, 400, httpx.TypeMalformedRequest, []string{"body"}},
		{"text body", "POST", "/payments", valid, append([]string{"Content-Type", "text/plain"}, key...), 415, httpx.TypeUnsupportedMediaType, []string{"Content-Type"}},
		{"lookup order_id", "GET", "/payments?order_id=x", "", nil, 400, httpx.TypeMalformedRequest, []string{"order_id"}},
		{"lookup order_id in braces", "GET", "/payments?order_id={0193a3e0-0000-7000-8000-000000000001}", "", nil, 400, httpx.TypeMalformedRequest, []string{"order_id"}},
		{"lookup naming nothing", "GET", "/payments", "", nil, 400, httpx.TypeMalformedRequest, []string{"order_id"}},
		{"lookup order_id twice", "GET", "/payments?order_id=0193a3e0-0000-7000-8000-000000000001&order_id=0193a3e0-0000-7000-8000-000000000002", "", nil, 400, httpx.TypeMalformedRequest, []string{"order_id"}},
		{"lookup key with NUL", "GET", "/payments?idempotency_key=a%00", "", nil, 400, httpx.TypeMalformedRequest, []string{"idempotency_key"}},
		{"lookup key header with a tab", "GET", "/payments", "", []string{"Idempotency-Key", "a\tb"}, 400, httpx.TypeMalformedRequest, []string{"Idempotency-Key"}},
		{"key with a tab", "POST", "/payments", valid, []string{"Idempotency-Key", "a\tb"}, 400, httpx.TypeMalformedRequest, []string{"Idempotency-Key"}},
		{"key of 5,000 characters", "POST", "/payments", valid, []string{"Idempotency-Key", strings.Repeat("k", 5000)}, 400, httpx.TypeMalformedRequest, []string{"Idempotency-Key"}},
		{"refund key with a C1 control", "POST", fmt.Sprintf("/payments/%s/refund", failed.ID), "", []string{"Idempotency-Key", "a\u0085b"}, 400, httpx.TypeMalformedRequest, []string{"Idempotency-Key"}},
		{"callback_url not a URL", "POST", "/payments", strings.Replace(valid, "http://127.0.0.1:1/hooks", "not a url", 1), key, 422, httpx.TypeValidation, []string{"callback_url"}},
		{"callback_url relative", "POST", "/payments", strings.Replace(valid, "http://127.0.0.1:1/hooks", "/hooks", 1), key, 422, httpx.TypeValidation, []string{"callback_url"}},
		{"amount an object", "POST", "/payments", strings.Replace(valid, `"15.00"`, `{}`, 1), key, 400, httpx.TypeMalformedRequest, []string{"amount"}},
		{"amount null", "POST", "/payments", strings.Replace(valid, `"15.00"`, `null`, 1), key, 400, httpx.TypeMalformedRequest, []string{"amount"}},
		{"no content type", "POST", "/payments", valid, append([]string{"Content-Type", ""}, key...), 415, httpx.TypeUnsupportedMediaType, []string{"Content-Type"}},
		{"unknown route", "GET", "/nowhere", "", nil, 404, httpx.TypeNotFound, nil},
		{"unknown route, unknown method", "FOO", "/nowhere", "", nil, 404, httpx.TypeNotFound, nil},
		{"unserved method", "DELETE", "/payments", "", nil, 405, httpx.TypeMethodNotAllowed, nil},
		{"unknown payment", "GET", "/payments/pay_unknown", "", nil, 404, httpx.TypeNotFound, nil},
		{"refund unknown payment", "POST", "/payments/pay_unknown/refund", "", nil, 404, httpx.TypeNotFound, nil},
		{"refund failed payment", "POST", fmt.Sprintf("/payments/%s/refund", failed.ID), "", nil, 422, httpx.TypeValidation, nil},
		// A currency is an ISO 4217 code as the contract writes it.
		{"currency lower case", "POST", "/payments", strings.Replace(valid, `"USD"`, `"usd"`, 1), key, 422, httpx.TypeValidation, []string{"currency"}},
		{"currency with a bidi control", "POST", "/payments", strings.Replace(valid, `"USD"`, `"X\u202eY"`, 1), key, 422, httpx.TypeValidation, []string{"currency"}},
		{"currency of two letters", "POST", "/payments", strings.Replace(valid, `"USD"`, `"US"`, 1), key, 422, httpx.TypeValidation, []string{"currency"}},
		{"currency of four letters", "POST", "/payments", strings.Replace(valid, `"USD"`, `"USDX"`, 1), key, 422, httpx.TypeValidation, []string{"currency"}},
		{"currency full-width", "POST", "/payments", strings.Replace(valid, `"USD"`, `"ＵＳＤ"`, 1), key, 422, httpx.TypeValidation, []string{"currency"}},
		// A lookup names one payment one way.
		{"lookup by order_id and key", "GET", "/payments?order_id=" + failed.OrderID.String() + "&idempotency_key=c2", "", nil, 400, httpx.TypeMalformedRequest, []string{"order_id"}},
		{"lookup by order_id and key header", "GET", "/payments?order_id=" + failed.OrderID.String(), "", []string{"Idempotency-Key", "c2"}, 400, httpx.TypeMalformedRequest, []string{"order_id"}},
		{"lookup by key and another key header", "GET", "/payments?idempotency_key=failing", "", []string{"Idempotency-Key", "c2"}, 400, httpx.TypeMalformedRequest, []string{"idempotency_key"}},
		// A route that takes no body refuses one.
		{"lookup with a body", "GET", "/payments?idempotency_key=failing", "x", []string{"Content-Type", "text/plain"}, 400, httpx.TypeMalformedRequest, []string{"body"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := cl.Do(t, c.method, c.path, c.body, c.headers...)
			apitest.CheckProblem(t, r, c.status, c.typ, c.fields...)
		})
	}
	conflict := cl.Do(t, "POST", "/payments", valid, "Idempotency-Key", "failing")
	apitest.CheckProblem(t, conflict, http.StatusConflict, httpx.TypeIdempotencyConflict)

	// A detail is a sentence of its own, never an error's text: no id or
	// key the request named, no "payment not found: …".
	for _, r := range []apitest.Response{
		conflict,
		cl.Do(t, "GET", "/payments/pay_unknown", ""),
		cl.Do(t, "POST", "/payments/pay_unknown/refund", ""),
		cl.Do(t, "GET", "/payments?idempotency_key=nokey", ""),
		cl.Do(t, "GET", "/nowhere", ""),
		cl.Do(t, "POST", fmt.Sprintf("/payments/%s/refund", failed.ID), ""),
	} {
		detail, _ := r.Body["detail"].(string)
		if strings.Contains(detail, "/docs") { // the fake provider serves none
			t.Errorf("detail %q points at /docs", detail)
		}
		for _, text := range []string{"pay_unknown", "nokey", failed.ID, "not found", "refused the request", "idempotency key reused"} {
			if strings.Contains(detail, text) {
				t.Errorf("detail %q holds %q", detail, text)
			}
		}
	}
}

// The provider is served as the API is (RFC 9110): HEAD wherever GET is,
// one Allow header listing the methods on every 405.
func TestHTTPSemantics(t *testing.T) {
	t.Parallel()
	p := fakepay.New(fakepay.Options{Signer: mustSigner(t), Delay: time.Hour})
	t.Cleanup(p.Close)
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	for _, c := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"HEAD", "/healthz", 200, ""},
		{"HEAD", "/payments/pay_unknown", 404, ""},
		{"DELETE", "/payments", 405, "GET, HEAD, POST"},
		{"PUT", "/payments/pay_1", 405, "GET, HEAD"},
		{"GET", "/payments/pay_1/refund", 405, "POST"},
		{"GET", "/nowhere", 404, ""},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || len(resp.Header.Values("Allow")) > 1 || resp.Header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d Allow %q, want %d Allow %q", c.method, c.path, resp.StatusCode, resp.Header.Values("Allow"), c.status, c.allow)
		}
		if c.method == "HEAD" && len(body) > 0 || c.method != "HEAD" && c.status >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: %q, %d bytes", c.method, c.path, resp.Header.Get("Content-Type"), len(body))
		}
	}
}
