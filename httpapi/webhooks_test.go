package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/httpapi"
	"github.com/orders-reference/orders/internal/apitest"
	"github.com/orders-reference/orders/internal/httpx"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/payment"
)

const (
	webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	oldSecret     = "a-secret-being-rotated-out"
)

// webhookEnv is a command API that accepts webhooks signed with either
// secret, and an order waiting for its payment.
func webhookEnv(t *testing.T) (*env, string, string) {
	t.Helper()
	return webhookEnvOn(t, nil)
}

// webhookEnvOn is webhookEnv on store (nil: PostgreSQL, as newEnv).
func webhookEnvOn(t *testing.T, store eventstore.Store) (*env, string, string) {
	t.Helper()
	v, err := payment.NewVerifier([]string{webhookSecret, oldSecret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{webhooks: v, store: store})
	p := e.product(t, 10)
	r := e.do(t, "POST", "/orders", orderBody("hook@example.com", p, 2))
	if r.Status != http.StatusCreated {
		t.Fatalf("place: %d %s", r.Status, r.Raw)
	}
	id := r.Body["id"].(string)
	if _, err := e.svc.RequestPayment(context.Background(), uuid.MustParse(id), "pay_"+id, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	return e, id, p
}

func outcomeBody(orderID, status, amount string) string {
	return fmt.Sprintf(`{"payment_id":"pay_%s","order_id":%q,"status":%q,"amount":%q,"occurred_at":"2026-11-26T10:00:00Z"}`, orderID, orderID, status, amount)
}

// webhook posts body as the provider would: signed with secret, sent at ts.
func (e *env) webhook(t *testing.T, secret, id string, ts time.Time, body string) apitest.Response {
	t.Helper()
	s, err := payment.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	if err := s.Sign(h, id, ts, []byte(body)); err != nil {
		t.Fatal(err)
	}
	return e.do(t, "POST", "/webhooks/payment", body,
		payment.HeaderID, h.Get(payment.HeaderID), payment.HeaderTimestamp, h.Get(payment.HeaderTimestamp), payment.HeaderSignature, h.Get(payment.HeaderSignature))
}

func (e *env) orderEvents(t *testing.T, id string) []string {
	t.Helper()
	recorded, err := e.store.ReadStream(context.Background(), events.OrderStream(uuid.MustParse(id)), eventstore.Forward, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	types := make([]string, len(recorded))
	for i, r := range recorded {
		types[i] = r.Type
	}
	return types
}

// count counts the order's events of type typ.
func (e *env) count(t *testing.T, id, typ string) int {
	t.Helper()
	n := 0
	for _, got := range e.orderEvents(t, id) {
		if got == typ {
			n++
		}
	}
	return n
}

// nothingRecorded fails t if the order has events beyond before.
func (e *env) nothingRecorded(t *testing.T, id string, before []string) {
	t.Helper()
	if after := e.orderEvents(t, id); len(after) != len(before) {
		t.Fatalf("refused webhooks recorded events: %v", after[len(before):])
	}
}

// Anything not signed right is 401 and records nothing.
func TestWebhookRefusesBadSignatures(t *testing.T) {
	t.Parallel()
	e, id, _ := webhookEnv(t)
	body := outcomeBody(id, "success", "3000.00")
	now := time.Now()
	before := e.orderEvents(t, id)
	signed := func(secret string, ts time.Time) func() apitest.Response {
		return func() apitest.Response { return e.webhook(t, secret, "msg_bad", ts, body) }
	}
	raw := func(headers ...string) func() apitest.Response {
		return func() apitest.Response { return e.do(t, "POST", "/webhooks/payment", body, headers...) }
	}
	good := http.Header{}
	s, _ := payment.NewSigner(webhookSecret)
	_ = s.Sign(good, "msg_x", now, []byte(body))
	cases := map[string]func() apitest.Response{
		"wrong secret":    signed("not-the-secret", now),
		"stale":           signed(webhookSecret, now.Add(-6*time.Minute)),
		"from the future": signed(webhookSecret, now.Add(6*time.Minute)),
		"no headers":      raw(),
		"no signature":    raw(payment.HeaderID, "msg_x", payment.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10)),
		"timestamp not a number": raw(payment.HeaderID, "msg_x", payment.HeaderTimestamp, now.Format(time.RFC3339),
			payment.HeaderSignature, good.Get(payment.HeaderSignature)),
		"signature without a version": raw(payment.HeaderID, "msg_x", payment.HeaderTimestamp, good.Get(payment.HeaderTimestamp),
			payment.HeaderSignature, good.Get(payment.HeaderSignature)[3:]),
		"signature of another message": raw(payment.HeaderID, "msg_y", payment.HeaderTimestamp, good.Get(payment.HeaderTimestamp),
			payment.HeaderSignature, good.Get(payment.HeaderSignature)),
		"tampered body": func() apitest.Response {
			return e.do(t, "POST", "/webhooks/payment", outcomeBody(id, "failed", "3000.00"),
				payment.HeaderID, "msg_x", payment.HeaderTimestamp, good.Get(payment.HeaderTimestamp), payment.HeaderSignature, good.Get(payment.HeaderSignature))
		},
	}
	for name, send := range cases {
		if r := send(); r.Status != http.StatusUnauthorized || r.Body["type"] != "/problems/unauthorized" {
			t.Errorf("%s: %d %s", name, r.Status, r.Raw)
		}
	}
	e.nothingRecorded(t, id, before)
}

// A good webhook is recorded once, however often it is delivered; a
// webhook signed with the secret being rotated out is accepted too.
func TestWebhookRecordsOnce(t *testing.T) {
	t.Parallel()
	e, id, _ := webhookEnv(t)
	body := outcomeBody(id, "success", "3000.00")
	for i := range 3 {
		secret := webhookSecret
		if i == 2 {
			secret = oldSecret
		}
		r := e.webhook(t, secret, "msg_ok", time.Now(), body)
		if r.Status != http.StatusOK || r.Body["status"] != "paid" || r.Body["order_id"] != id {
			t.Fatalf("delivery %d: %d %s", i, r.Status, r.Raw)
		}
	}
	if paid := e.count(t, id, events.TypeOrderPaid); paid != 1 {
		t.Fatalf("%d order.paid events, want 1", paid)
	}
	if r := e.do(t, "POST", "/orders/"+id+"/cancel", ""); r.Status != http.StatusConflict {
		t.Fatalf("cancel of a paid order: %d %s", r.Status, r.Raw)
	}
}

func TestWebhookFailedPaymentCancels(t *testing.T) {
	t.Parallel()
	e, id, _ := webhookEnv(t)
	r := e.webhook(t, webhookSecret, "msg_f", time.Now(), outcomeBody(id, "failed", "3000.00"))
	if r.Status != http.StatusOK || r.Body["status"] != "canceled" {
		t.Fatalf("failed payment: %d %s", r.Status, r.Raw)
	}
}

// Signed but wrong: a problem, and nothing recorded.
func TestWebhookContentProblems(t *testing.T) {
	t.Parallel()
	e, id, _ := webhookEnv(t)
	before := e.orderEvents(t, id)
	cases := []struct {
		name, body string
		status     int
	}{
		{"not json", `{"payment_id":`, 400},
		{"unknown status", outcomeBody(id, "maybe", "3000.00"), 422},
		{"no order", `{"payment_id":"pay_1","status":"success","amount":"3000.00"}`, 422},
		{"unknown order", outcomeBody(uuid.NewString(), "success", "3000.00"), 404},
		{"another amount", outcomeBody(id, "success", "2999.99"), 422},
		{"another payment", fmt.Sprintf(`{"payment_id":"pay_other","order_id":%q,"status":"success","amount":"3000.00"}`, id), 422},
		// One signed body is exactly one outcome: strict decoding.
		{"garbage after the value", outcomeBody(id, "success", "3000.00") + "GARBAGE", 400},
		{"a second value", outcomeBody(id, "success", "3000.00") + outcomeBody(id, "failed", "3000.00"), 400},
		{"a name twice", strings.Replace(outcomeBody(id, "failed", "3000.00"), `"status":"failed"`, `"status":"failed","status":"success"`, 1), 400},
		{"another case", strings.Replace(outcomeBody(id, "failed", "3000.00"), `"status":"failed"`, `"STATUS":"success","status":"failed"`, 1), 400},
		{"an unknown name", strings.Replace(outcomeBody(id, "failed", "3000.00"), `{`, `{"extra":1,`, 1), 400},
		{"NUL in the payment id", strings.Replace(outcomeBody(id, "failed", "3000.00"), `"payment_id":"pay_`, `"payment_id":"\u0000pay_`, 1), 422},
	}
	for i, c := range cases {
		r := e.webhook(t, webhookSecret, fmt.Sprintf("msg_%d", i), time.Now(), c.body)
		if r.Status != c.status || r.Body["status"] != float64(c.status) {
			t.Errorf("%s: %d %s, want %d", c.name, r.Status, r.Raw, c.status)
		}
	}
	e.nothingRecorded(t, id, before)
}

// Twenty deliveries of one message at once, and one more to a server that
// never saw it (a restart): one effect, and every delivery acknowledged.
func TestWebhookConcurrentDuplicatesAndRestart(t *testing.T) {
	t.Parallel()
	e, id, _ := webhookEnv(t)
	body := outcomeBody(id, "success", "3000.00")
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, _ := payment.NewSigner(webhookSecret)
			h := http.Header{}
			_ = s.Sign(h, "msg_dup", time.Now(), []byte(body))
			req, _ := http.NewRequest("POST", e.srv.URL+"/webhooks/payment", strings.NewReader(body))
			for k := range h {
				req.Header.Set(k, h.Get(k))
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("delivery: %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()

	v, _ := payment.NewVerifier([]string{webhookSecret}, nil)
	restarted := httpapi.New(httpapi.Config{Commands: command.NewService(e.store, command.Options{}), AdminSecret: secret, Webhooks: v})
	r := chi.NewRouter()
	restarted.MountCommands(r)
	srv := httptest.NewServer(r)
	defer srv.Close()
	again := (&env{srv: srv, store: e.store}).webhook(t, webhookSecret, "msg_dup", time.Now(), body)
	if again.Status != http.StatusOK || again.Body["status"] != "paid" {
		t.Fatalf("after the restart: %d %s", again.Status, again.Raw)
	}
	if paid := e.count(t, id, events.TypeOrderPaid); paid != 1 {
		t.Fatalf("%d order.paid events, want 1", paid)
	}
}

func TestWebhookBodyTooLarge(t *testing.T) {
	t.Parallel()
	e, id, _ := webhookEnv(t)
	body := `{"pad":"` + strings.Repeat("x", 1<<20) + `","order_id":"` + id + `"}`
	if r := e.webhook(t, webhookSecret, "msg_big", time.Now(), body); r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a body over 1 MiB: %d %.200s", r.Status, r.Raw)
	}
}

// signedWebhook posts body signed under message id with extra headers
// (which replace the client's defaults, such as its Content-Type).
func (e *env) signedWebhook(t *testing.T, id, body string, headers ...string) apitest.Response {
	t.Helper()
	s, err := payment.NewSigner(webhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	if err := s.Sign(h, id, time.Now(), []byte(body)); err != nil {
		t.Fatal(err)
	}
	return e.do(t, "POST", "/webhooks/payment", body, append([]string{payment.HeaderID, h.Get(payment.HeaderID),
		payment.HeaderTimestamp, h.Get(payment.HeaderTimestamp), payment.HeaderSignature, h.Get(payment.HeaderSignature)}, headers...)...)
}

// A signed webhook is held to the rules every request is: its body is
// JSON (415 otherwise, as on every JSON endpoint), its webhook-id, which
// is stored with the outcome, is text (400 naming it, as an
// Idempotency-Key), every member but occurred_at is required, and a
// payment mismatch names the member it is about. Nothing is recorded.
func TestWebhookRequestRules(t *testing.T) {
	t.Parallel()
	e, id, _ := webhookEnv(t)
	before := e.orderEvents(t, id)
	body := outcomeBody(id, "success", "3000.00")
	for _, c := range []struct {
		name, msgID, body string
		headers           []string
		status            int
		typ               string
		fields            []string
	}{
		{"text/plain", "msg_t1", body, []string{"Content-Type", "text/plain"}, 415, httpx.TypeUnsupportedMediaType, []string{"Content-Type"}},
		{"no content type", "msg_t2", body, []string{"Content-Type", ""}, 415, httpx.TypeUnsupportedMediaType, []string{"Content-Type"}},
		{"JSON in Latin-1", "msg_t3", body, []string{"Content-Type", "application/json; charset=latin1"}, 415, httpx.TypeUnsupportedMediaType, []string{"Content-Type"}},
		{"a tab in webhook-id", "msg\tt4", body, nil, 400, httpx.TypeMalformedRequest, []string{"webhook-id"}},
		{"C1 control in webhook-id", "msg\u0085t5", body, nil, 400, httpx.TypeMalformedRequest, []string{"webhook-id"}},
		{"invalid UTF-8 in webhook-id", "msg\xfft6", body, nil, 400, httpx.TypeMalformedRequest, []string{"webhook-id"}},
		{"no amount", "msg_t7", fmt.Sprintf(`{"payment_id":"pay_%s","order_id":%q,"status":"success"}`, id, id), nil, 422, httpx.TypeValidation, []string{"amount"}},
		{"nothing", "msg_t8", `{}`, nil, 422, httpx.TypeValidation, []string{"payment_id", "order_id", "status", "amount"}},
		{"amount null", "msg_t9", strings.Replace(body, `"3000.00"`, `null`, 1), nil, 400, httpx.TypeMalformedRequest, []string{"amount"}},
		{"amount an object", "msg_t10", strings.Replace(body, `"3000.00"`, `{}`, 1), nil, 400, httpx.TypeMalformedRequest, []string{"amount"}},
		{"order_id in braces", "msg_t11", strings.Replace(body, `"order_id":"`+id+`"`, `"order_id":"{`+id+`}"`, 1), nil, 422, httpx.TypeValidation, []string{"order_id"}},
		{"another amount", "msg_t12", outcomeBody(id, "success", "2999.99"), nil, 422, httpx.TypePaymentMismatch, []string{"amount"}},
		{"another payment", "msg_t13", strings.Replace(body, "pay_"+id, "pay_other", 1), nil, 422, httpx.TypePaymentMismatch, []string{"payment_id"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			apitest.CheckProblem(t, e.signedWebhook(t, c.msgID, c.body, c.headers...), c.status, c.typ, c.fields...)
		})
	}
	// Without any Content-Type header at all.
	s, _ := payment.NewSigner(webhookSecret)
	req, _ := http.NewRequest("POST", e.srv.URL+"/webhooks/payment", strings.NewReader(body))
	_ = s.Sign(req.Header, "msg_t14", time.Now(), []byte(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("no Content-Type header: %d", resp.StatusCode)
	}
	e.nothingRecorded(t, id, before)
}

// An order whose placement was rejected for stock is canceled as far as
// anyone can tell (it reads so everywhere): a payment outcome for it is a
// canceled order's. A success is refunded (a refund is requested), a
// failure changes nothing; both are 200 and say "canceled", never
// "rejected".
func TestWebhookForARejectedOrder(t *testing.T) {
	t.Parallel()
	v, err := payment.NewVerifier([]string{webhookSecret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{webhooks: v})
	p := e.product(t, 1)
	rejected := func(email string) string {
		r := e.do(t, "POST", "/orders", orderBody(email, p, 2))
		if r.Status != http.StatusConflict || r.Body["order_id"] == nil {
			t.Fatalf("place beyond the stock: %d %s", r.Status, r.Raw)
		}
		return r.Body["order_id"].(string)
	}
	failed, succeeded := rejected("fail@example.com"), rejected("succeed@example.com")

	r := e.signedWebhook(t, "msg_rf", outcomeBody(failed, "failed", "3000.00"))
	if r.Status != http.StatusOK || r.Body["status"] != "canceled" || strings.Contains(r.Raw, "rejected") {
		t.Fatalf("failure for a rejected order: %d %s", r.Status, r.Raw)
	}
	if n := e.count(t, failed, events.TypeOrderRefundRequested); n != 0 {
		t.Errorf("a failure requested %d refunds", n)
	}
	for range 2 {
		r = e.signedWebhook(t, "msg_rs", outcomeBody(succeeded, "success", "3000.00"))
		if r.Status != http.StatusOK || r.Body["status"] != "canceled" || strings.Contains(r.Raw, "rejected") {
			t.Fatalf("success for a rejected order: %d %s", r.Status, r.Raw)
		}
	}
	if n := e.count(t, succeeded, events.TypeOrderRefundRequested); n != 1 {
		t.Errorf("a success requested %d refunds, want 1", n)
	}
	// Cancel, too, answers it as canceled.
	if r := e.do(t, "POST", "/orders/"+succeeded+"/cancel", ""); r.Status != http.StatusOK || r.Body["status"] != "canceled" {
		t.Errorf("cancel: %d %s", r.Status, r.Raw)
	}
}
