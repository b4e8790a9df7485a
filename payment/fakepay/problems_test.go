package fakepay_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
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
		{"order_id not a UUID", "POST", "/payments", `{"order_id":"x","amount":"1.00","currency":"USD","callback_url":"u"}`, key, 422, httpx.TypeValidation, []string{"order_id"}},
		{"order_id a number", "POST", "/payments", `{"order_id":1,"amount":"1.00","currency":"USD","callback_url":"u"}`, key, 400, httpx.TypeMalformedRequest, []string{"order_id"}},
		{"amount three decimals", "POST", "/payments", `{"order_id":"0193a3e0-0000-7000-8000-000000000001","amount":"1.001","currency":"USD","callback_url":"u"}`, key, 422, httpx.TypeValidation, []string{"amount"}},
		{"amount negative", "POST", "/payments", `{"order_id":"0193a3e0-0000-7000-8000-000000000001","amount":"-1.00","currency":"USD","callback_url":"u"}`, key, 422, httpx.TypeValidation, []string{"amount"}},
		{"currency a number", "POST", "/payments", `{"order_id":"0193a3e0-0000-7000-8000-000000000001","amount":"1.00","currency":840,"callback_url":"u"}`, key, 400, httpx.TypeMalformedRequest, []string{"currency"}},
		{"unknown field", "POST", "/payments", `{"order_id":"0193a3e0-0000-7000-8000-000000000001","amount":"1.00","currency":"USD","callback_url":"u","tip":1}`, key, 400, httpx.TypeMalformedRequest, []string{"tip"}},
		{"array body", "POST", "/payments", `[]`, key, 400, httpx.TypeMalformedRequest, nil},
		{"text body", "POST", "/payments", valid, append([]string{"Content-Type", "text/plain"}, key...), 415, httpx.TypeUnsupportedMediaType, nil},
		{"lookup order_id", "GET", "/payments?order_id=x", "", nil, 422, httpx.TypeValidation, []string{"order_id"}},
		{"lookup naming nothing", "GET", "/payments", "", nil, 422, httpx.TypeValidation, nil},
		{"unknown payment", "GET", "/payments/pay_unknown", "", nil, 404, httpx.TypeNotFound, nil},
		{"refund unknown payment", "POST", "/payments/pay_unknown/refund", "", nil, 404, httpx.TypeNotFound, nil},
		{"refund failed payment", "POST", fmt.Sprintf("/payments/%s/refund", failed.ID), "", nil, 422, httpx.TypeValidation, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := cl.Do(t, c.method, c.path, c.body, c.headers...)
			apitest.CheckProblem(t, r, c.status, c.typ, c.fields...)
		})
	}
	conflict := cl.Do(t, "POST", "/payments", valid, "Idempotency-Key", "failing")
	apitest.CheckProblem(t, conflict, http.StatusConflict, httpx.TypeIdempotencyConflict)
}
