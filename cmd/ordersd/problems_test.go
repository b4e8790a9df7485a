package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	domainorder "github.com/orders-reference/orders/command/order"
	domainproduct "github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/internal/apitest"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/payment"
)

// problemCase is one wrong request and the problem it must get: status,
// type and the inputs its errors member names (none: no errors member).
type problemCase struct {
	name         string
	method, path string
	body         string
	headers      []string
	signed       bool   // a payment webhook signed with the server's secret
	webhookID    string // the signed message's id (default: one per case)
	twice        string // a signature header sent again, as a second field
	detail       string // what the detail must say, if set
	status       int
	typ          string
	fields       []string
}

// TestEveryProblemSpeaksTheAPI audits every endpoint with every kind of
// wrong request: wrong JSON kinds at each level, numbers out of range,
// bad ids in the path and the body, bad query parameters and headers, bad
// amounts, empty and oversized bodies, wrong content types. Each answer
// must be an RFC 9457 problem of the status docs/api.md gives (400 for
// what cannot be read, 422 for a field's rule), with an errors member
// naming, in the API's terms, every input it is about, and no Go in it
// (apitest.CheckProblem).
func TestEveryProblemSpeaksTheAPI(t *testing.T) {
	t.Parallel()
	const webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	s := startServer(t, "FAKE_PAYMENT_DELAY=1h", "PAYMENT_WEBHOOK_SECRET="+webhookSecret)
	cl := &apitest.Client{URL: s.url, Check: s.contract.check}
	admin := []string{"X-Admin-Secret", adminSecret}

	create := func(body string) string {
		t.Helper()
		r := cl.Do(t, "POST", "/admin/products", body, admin...)
		if r.Status != http.StatusCreated {
			t.Fatalf("create product: %d %s", r.Status, r.Raw)
		}
		return r.Body["id"].(string)
	}
	product := create(`{"name":"Audit","price":"10.00","stock":1000}`)
	inactive := create(`{"name":"Retired","price":"10.00","stock":1,"is_active":false}`)
	placed := cl.Do(t, "POST", "/orders", fmt.Sprintf(`{"user_email":"audit@example.com","items":[{"product_id":%q,"quantity":1}]}`, product))
	if placed.Status != http.StatusCreated {
		t.Fatalf("place order: %d %s", placed.Status, placed.Raw)
	}
	orderID := placed.Body["id"].(string)
	var paymentID string
	eventually.True(t, "the order to await its payment", func() bool {
		r := cl.Do(t, "GET", "/orders/"+orderID, "")
		paymentID, _ = r.Body["payment_id"].(string)
		return r.Body["status"] == "payment_pending" && paymentID != ""
	})

	unknown := uuid.NewString()
	order := func(items string) string { return `{"user_email":"a@example.com","items":` + items + `}` }
	item := func(fields string) string { return order(`[{` + fields + `}]`) }
	pid := fmt.Sprintf(`"product_id":%q`, product)
	manyItems := make([]string, 101)
	for i := range manyItems {
		manyItems[i] = fmt.Sprintf(`{"product_id":%q,"quantity":1}`, uuid.New())
	}
	outcome := func(members string) string {
		return `{"payment_id":"` + paymentID + `","order_id":"` + orderID + `","status":"success","amount":"10.00","occurred_at":"2025-01-01T00:00:00Z"` + members + `}`
	}
	long := strings.Repeat("x", 256)

	const (
		bad     = http.StatusBadRequest
		invalid = http.StatusUnprocessableEntity
	)
	malformed, validation := httpx.TypeMalformedRequest, httpx.TypeValidation
	var cases []problemCase
	add := func(c ...problemCase) { cases = append(cases, c...) }

	// POST /admin/products
	newProduct := func(name, body string, status int, typ string, fields ...string) problemCase {
		return problemCase{name: "create product/" + name, method: "POST", path: "/admin/products", body: body,
			headers: admin, status: status, typ: typ, fields: fields}
	}
	for _, price := range []string{`"0"`, `0`, `"-1"`, `-1`, `"1.001"`, `1.001`, `"1e3"`, `1e3`, `" 1.00"`, `"1.00 "`, `""`, `"abc"`,
		`"1,00"`, `"1000000000.01"`} {
		add(newProduct("price "+price, `{"name":"x","price":`+price+`,"stock":1}`, invalid, validation, "price"))
	}
	// A price is a JSON number or string: any other kind, null included,
	// is a value of the wrong kind (400), as for every other field.
	for _, price := range []string{`null`, `true`, `{}`, `[]`, `["1.00"]`} {
		add(newProduct("price "+price, `{"name":"x","price":`+price+`,"stock":1}`, bad, malformed, "price"))
	}
	add(
		newProduct("no price", `{"name":"x","stock":1}`, invalid, validation, "price"),
		newProduct("no name", `{"price":"1.00","stock":1}`, invalid, validation, "name"),
		newProduct("null name", `{"name":null,"price":"1.00","stock":1}`, bad, malformed, "name"),
		newProduct("null stock", `{"name":"x","price":"1.00","stock":null}`, bad, malformed, "stock"),
		newProduct("null description", `{"name":"x","description":null,"price":"1.00","stock":1}`, bad, malformed, "description"),
		newProduct("null is_active", `{"name":"x","price":"1.00","stock":1,"is_active":null}`, bad, malformed, "is_active"),
		newProduct("empty name", `{"name":"","price":"1.00","stock":1}`, invalid, validation, "name"),
		newProduct("blank name", `{"name":"   ","price":"1.00","stock":1}`, invalid, validation, "name"),
		newProduct("long name", `{"name":"`+strings.Repeat("n", 201)+`","price":"1.00","stock":1}`, invalid, validation, "name"),
		newProduct("NUL in name", `{"name":"a\u0000b","price":"1.00","stock":1}`, invalid, validation, "name"),
		newProduct("control in name", `{"name":"a\u001bb","price":"1.00","stock":1}`, invalid, validation, "name"),
		newProduct("lone surrogate in name", `{"name":"a\ud800b","price":"1.00","stock":1}`, bad, malformed, "name"),
		newProduct("number name", `{"name":5,"price":"1.00","stock":1}`, bad, malformed, "name"),
		newProduct("object name", `{"name":{},"price":"1.00","stock":1}`, bad, malformed, "name"),
		newProduct("long description", `{"name":"x","description":"`+strings.Repeat("d", 5001)+`","price":"1.00","stock":1}`, invalid, validation, "description"),
		newProduct("array description", `{"name":"x","description":["a"],"price":"1.00","stock":1}`, bad, malformed, "description"),
		newProduct("no stock", `{"name":"x","price":"1.00"}`, invalid, validation, "stock"),
		newProduct("string stock", `{"name":"x","price":"1.00","stock":"1"}`, bad, malformed, "stock"),
		newProduct("fraction stock", `{"name":"x","price":"1.00","stock":1.5}`, bad, malformed, "stock"),
		newProduct("negative stock", `{"name":"x","price":"1.00","stock":-1}`, invalid, validation, "stock"),
		newProduct("too much stock", `{"name":"x","price":"1.00","stock":1000000001}`, invalid, validation, "stock"),
		newProduct("stock beyond any integer", `{"name":"x","price":"1.00","stock":99999999999999999999}`, invalid, validation, "stock"),
		newProduct("string is_active", `{"name":"x","price":"1.00","stock":1,"is_active":"yes"}`, bad, malformed, "is_active"),
		newProduct("every rule broken", `{"name":"","price":"0","stock":-1}`, invalid, validation, "name", "price", "stock"),
		newProduct("unknown field", `{"name":"x","price":"1.00","stock":1,"colour":"red"}`, bad, malformed, "colour"),
		newProduct("field in another case", `{"Name":"x","price":"1.00","stock":1}`, bad, malformed, "Name"),
		newProduct("field twice", `{"name":"x","name":"y","price":"1.00","stock":1}`, bad, malformed, "name"),
		newProduct("array body", `[]`, bad, malformed, "body"),
		newProduct("null body", `null`, bad, malformed, "body"),
		newProduct("string body", `"x"`, bad, malformed, "body"),
		newProduct("empty body", ``, bad, malformed, "body"),
		newProduct("truncated", `{"name":"x"`, bad, malformed, "body"),
		newProduct("trailing garbage", `{"name":"x","price":"1.00","stock":1} x`, bad, malformed, "body"),
		newProduct("not UTF-8", "{\"name\":\"\xff\",\"price\":\"1.00\",\"stock\":1}", bad, malformed, "body"),
		newProduct("huge body", `{"name":"`+strings.Repeat("x", httpx.MaxBody)+`"}`, http.StatusRequestEntityTooLarge, httpx.TypeBodyTooLarge, "body"),
	)
	// Content-Type: application/json, with no parameter but charset=utf-8.
	for _, ct := range []string{"text/plain", "", "application/json; charset=latin1", "application/problem+json", "application/merge-patch+json"} {
		add(problemCase{name: fmt.Sprintf("create product/content type %q", ct), method: "POST", path: "/admin/products", body: `{"name":"x","price":"1.00","stock":1}`,
			headers: append([]string{"Content-Type", ct}, admin...), status: http.StatusUnsupportedMediaType, typ: httpx.TypeUnsupportedMediaType, fields: []string{"Content-Type"}})
	}
	add(problemCase{name: "create product/no secret", method: "POST", path: "/admin/products", body: `{"name":"x","price":"1.00","stock":1}`,
		status: http.StatusUnauthorized, typ: httpx.TypeUnauthorized})

	// PATCH /admin/products/{id}
	patch := func(name, path, body string, status int, typ string, fields ...string) problemCase {
		return problemCase{name: "update product/" + name, method: "PATCH", path: path, body: body, headers: admin, status: status, typ: typ, fields: fields}
	}
	add(
		patch("empty object", "/admin/products/"+product, `{}`, invalid, validation, "body"),
		patch("bad id", "/admin/products/nope", `{"stock":1}`, bad, malformed, "id"),
		patch("unknown id", "/admin/products/"+unknown, `{"stock":1}`, http.StatusNotFound, httpx.TypeNotFound),
		patch("zero price", "/admin/products/"+product, `{"price":"0"}`, invalid, validation, "price"),
		patch("three decimals", "/admin/products/"+product, `{"price":"1.001"}`, invalid, validation, "price"),
		patch("string stock", "/admin/products/"+product, `{"stock":"5"}`, bad, malformed, "stock"),
		patch("negative stock", "/admin/products/"+product, `{"stock":-5}`, invalid, validation, "stock"),
		patch("number is_active", "/admin/products/"+product, `{"is_active":1}`, bad, malformed, "is_active"),
		patch("empty name", "/admin/products/"+product, `{"name":""}`, invalid, validation, "name"),
		patch("unknown field", "/admin/products/"+product, `{"reserved":1}`, bad, malformed, "reserved"),
		patch("NUL in description", "/admin/products/"+product, `{"description":"a\u0000b"}`, invalid, validation, "description"),
		patch("null is_active", "/admin/products/"+product, `{"is_active":null}`, bad, malformed, "is_active"),
		patch("null name", "/admin/products/"+product, `{"name":null}`, bad, malformed, "name"),
		patch("object price", "/admin/products/"+product, `{"price":{}}`, bad, malformed, "price"),
		patch("id in braces", "/admin/products/%7B"+product+"%7D", `{"stock":1}`, bad, malformed, "id"),
		patch("id as a URN", "/admin/products/urn:uuid:"+product, `{"stock":1}`, bad, malformed, "id"),
		patch("id without hyphens", "/admin/products/"+strings.ReplaceAll(product, "-", ""), `{"stock":1}`, bad, malformed, "id"),
		problemCase{name: "update product/text content", method: "PATCH", path: "/admin/products/" + product, body: `{"stock":1}`,
			headers: append([]string{"Content-Type", "text/plain"}, admin...), status: http.StatusUnsupportedMediaType, typ: httpx.TypeUnsupportedMediaType,
			fields: []string{"Content-Type"}},
	)

	// POST /orders
	placement := func(name, body string, status int, typ string, fields ...string) problemCase {
		return problemCase{name: "place order/" + name, method: "POST", path: "/orders", body: body, status: status, typ: typ, fields: fields}
	}
	add(
		placement("items an object", order(`{}`), bad, malformed, "items"),
		placement("items a string", order(`"x"`), bad, malformed, "items"),
		placement("item a number", order(`[1]`), bad, malformed, "items[0]"),
		placement("item an array", order(`[[]]`), bad, malformed, "items[0]"),
		placement("quantity a string", item(pid+`,"quantity":"1"`), bad, malformed, "items[0].quantity"),
		placement("quantity a fraction", item(pid+`,"quantity":1.5`), bad, malformed, "items[0].quantity"),
		placement("quantity zero", item(pid+`,"quantity":0`), invalid, validation, "items[0].quantity"),
		placement("quantity negative", item(pid+`,"quantity":-1`), invalid, validation, "items[0].quantity"),
		placement("quantity too large", item(pid+`,"quantity":10001`), invalid, validation, "items[0].quantity"),
		placement("quantity beyond any integer", item(pid+`,"quantity":99999999999999999999`), invalid, validation, "items[0].quantity"),
		placement("quantity null", item(pid+`,"quantity":null`), bad, malformed, "items[0].quantity"),
		placement("product_id a number", item(`"product_id":5,"quantity":1`), bad, malformed, "items[0].product_id"),
		placement("product_id not a UUID", item(`"product_id":"nope","quantity":1`), invalid, validation, "items[0].product_id"),
		placement("product_id nil", item(`"product_id":"00000000-0000-0000-0000-000000000000","quantity":1`), invalid, validation, "items[0].product_id"),
		placement("product_id in braces", item(`"product_id":"{`+product+`}","quantity":1`), invalid, validation, "items[0].product_id"),
		placement("product_id as a URN", item(`"product_id":"urn:uuid:`+product+`","quantity":1`), invalid, validation, "items[0].product_id"),
		placement("product_id without hyphens", item(`"product_id":"`+strings.ReplaceAll(product, "-", "")+`","quantity":1`), invalid, validation, "items[0].product_id"),
		placement("product_id null", item(`"product_id":null,"quantity":1`), bad, malformed, "items[0].product_id"),
		placement("product unknown", item(fmt.Sprintf(`"product_id":%q,"quantity":1`, unknown)), invalid, validation, "items[0].product_id"),
		placement("product inactive", item(fmt.Sprintf(`"product_id":%q,"quantity":1`, inactive)), invalid, validation, "items[0].product_id"),
		placement("item null", order(`[null]`), bad, malformed, "items[0]"),
		placement("no items", order(`[]`), invalid, validation, "items"),
		placement("items null", order(`null`), bad, malformed, "items"),
		placement("340,000 empty items", order("["+strings.Repeat(`{},`, 340_000)+"{}]"), invalid, validation, "items"),
		placement("email null", `{"user_email":null,"items":[{`+pid+`,"quantity":1}]}`, bad, malformed, "user_email"),
		placement("too many items", order("["+strings.Join(manyItems, ",")+"]"), invalid, validation, "items"),
		placement("product twice", order(fmt.Sprintf(`[{%s,"quantity":1},{%s,"quantity":2}]`, pid, pid)), invalid, validation, "items[1].product_id"),
		placement("no email", `{"items":[{`+pid+`,"quantity":1}]}`, invalid, validation, "user_email"),
		placement("email a number", `{"user_email":5,"items":[{`+pid+`,"quantity":1}]}`, bad, malformed, "user_email"),
		placement("email not an address", `{"user_email":"nope","items":[{`+pid+`,"quantity":1}]}`, invalid, validation, "user_email"),
		placement("email too long", `{"user_email":"`+strings.Repeat("a", 250)+`@example.com","items":[{`+pid+`,"quantity":1}]}`, invalid, validation, "user_email"),
		placement("NUL in email", `{"user_email":"a\u0000@example.com","items":[{`+pid+`,"quantity":1}]}`, invalid, validation, "user_email"),
		placement("email and items wrong", `{"user_email":"nope","items":[]}`, invalid, validation, "user_email", "items"),
		placement("unknown field", `{"user_email":"a@example.com","items":[{`+pid+`,"quantity":1}],"coupon":"x"}`, bad, malformed, "coupon"),
		placement("unknown item field", item(pid+`,"quantity":1,"price":"1.00"`), bad, malformed, "items[0].price"),
		placement("item field twice", item(pid+`,"quantity":1,"quantity":4`), bad, malformed, "items[0].quantity"),
		placement("every rule broken", `{"user_email":"x","items":[{"product_id":"nope","quantity":0}]}`, invalid, validation,
			"user_email", "items[0].product_id", "items[0].quantity"),
		placement("array body", `[]`, bad, malformed, "body"),
		placement("empty body", ``, bad, malformed, "body"),
		placement("huge body", `{"user_email":"`+strings.Repeat("x", httpx.MaxBody)+`"}`, http.StatusRequestEntityTooLarge, httpx.TypeBodyTooLarge, "body"),
	)
	for _, key := range []string{"", long, "\xff\xfe", "a\tb", "a\u0085b", strings.Repeat("é", 256)} {
		c := placement(fmt.Sprintf("Idempotency-Key %.10q", key), item(pid+`,"quantity":1`), bad, malformed, "Idempotency-Key")
		c.headers = []string{"Idempotency-Key", key}
		add(c)
	}
	add(problemCase{name: "place order/form content", method: "POST", path: "/orders", body: item(pid + `,"quantity":1`),
		headers: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: http.StatusUnsupportedMediaType, typ: httpx.TypeUnsupportedMediaType,
		fields: []string{"Content-Type"}})

	// The other endpoints: ids, query parameters, headers.
	get := func(name, path string, status int, typ string, fields ...string) problemCase {
		return problemCase{name: name, method: "GET", path: path, headers: admin, status: status, typ: typ, fields: fields}
	}
	add(
		problemCase{name: "cancel/bad id", method: "POST", path: "/orders/nope/cancel", status: bad, typ: malformed, fields: []string{"id"}},
		problemCase{name: "cancel/unknown id", method: "POST", path: "/orders/" + unknown + "/cancel", status: http.StatusNotFound, typ: httpx.TypeNotFound},
		get("order/bad id", "/orders/nope", bad, malformed, "id"),
		get("order/unknown id", "/orders/"+unknown, http.StatusNotFound, httpx.TypeNotFound),
		get("product/bad id", "/products/12345", bad, malformed, "id"),
		get("product/unknown id", "/products/"+unknown, http.StatusNotFound, httpx.TypeNotFound),
		get("products/limit a word", "/products?limit=ten", bad, malformed, "limit"),
		get("products/limit zero", "/products?limit=0", bad, malformed, "limit"),
		get("products/limit too large", "/products?limit=101", bad, malformed, "limit"),
		get("products/limit a fraction", "/products?limit=1.5", bad, malformed, "limit"),
		get("products/limit negative", "/products?limit=-1", bad, malformed, "limit"),
		get("products/limit with a sign", "/products?limit=%2B5", bad, malformed, "limit"),
		get("products/limit with a leading zero", "/products?limit=05", bad, malformed, "limit"),
		get("products/limit twice", "/products?limit=10&limit=200", bad, malformed, "limit"),
		get("products/cursor {}", "/products?cursor=e30", bad, malformed, "cursor"),
		get("products/cursor null", "/products?cursor=bnVsbA", bad, malformed, "cursor"),
		get("products/cursor with an unknown field", "/products?cursor=eyJ4IjoxfQ", bad, malformed, "cursor"),
		get("product/id in braces", "/products/%7B"+product+"%7D", bad, malformed, "id"),
		get("product/id as a URN", "/products/urn:uuid:"+product, bad, malformed, "id"),
		get("product/id without hyphens", "/products/"+strings.ReplaceAll(product, "-", ""), bad, malformed, "id"),
		get("products/is_active", "/products?is_active=yes", bad, malformed, "is_active"),
		get("products/cursor", "/products?cursor=not-a-cursor", bad, malformed, "cursor"),
		get("products/cursor with NUL", "/products?cursor=a%00b", bad, malformed, "cursor"),
		get("products/parameter name with NUL", "/products?a%00b=1", bad, malformed, `a\u0000b`),
		get("orders/status", "/admin/orders?status=lost", bad, malformed, "status"),
		get("orders/status twice", "/admin/orders?status=paid&status=canceled", bad, malformed, "status"),
		get("orders/email twice", "/admin/orders?email=x%40example.com&email=y%40example.com", bad, malformed, "email"),
		get("orders/cursor null", "/admin/orders?cursor=bnVsbA", bad, malformed, "cursor"),
		get("orders/limit", "/admin/orders?limit=1000", bad, malformed, "limit"),
		get("orders/cursor", "/admin/orders?cursor=%7B%7D", bad, malformed, "cursor"),
		get("orders/email with a control character", "/admin/orders?email=a%07%40example.com", bad, malformed, "email"),
		get("orders/email not UTF-8", "/admin/orders?email=%FF%40example.com", bad, malformed, "email"),
		get("history/bad id", "/admin/orders/nope/history", bad, malformed, "id"),
		get("history/unknown id", "/admin/orders/"+unknown+"/history", http.StatusNotFound, httpx.TypeNotFound),
		problemCase{name: "orders/no secret", method: "GET", path: "/admin/orders", status: http.StatusUnauthorized, typ: httpx.TypeUnauthorized},
		problemCase{name: "order/X-Min-Position", method: "GET", path: "/orders/" + orderID, headers: []string{"X-Min-Position", "soon"},
			status: bad, typ: malformed, fields: []string{"X-Min-Position"}},
		problemCase{name: "routing/unknown path", method: "GET", path: "/nowhere", status: http.StatusNotFound, typ: httpx.TypeNotFound},
		problemCase{name: "routing/unserved method", method: "DELETE", path: "/orders/" + orderID, status: http.StatusMethodNotAllowed, typ: httpx.TypeMethodNotAllowed},
		problemCase{name: "routing/unknown method, unknown path", method: "FOO", path: "/nonexistent", status: http.StatusNotFound, typ: httpx.TypeNotFound},
		problemCase{name: "order/X-Min-Position with a tab", method: "GET", path: "/orders/" + orderID, headers: []string{"X-Min-Position", "1\t/0"},
			status: bad, typ: malformed, fields: []string{"X-Min-Position"}},
	)
	// A position no store produces, or not written as returned, is 400 at
	// once: never waited for (a 503 would be retried for ever).
	for _, pos := range []string{"9223372036854775808/0", "0/9223372036854775808", "18446744073709551615/18446744073709551615", "01/0", "1/00", "+1/0"} {
		add(problemCase{name: "order/X-Min-Position " + pos, method: "GET", path: "/orders/" + orderID, headers: []string{"X-Min-Position", pos},
			status: bad, typ: malformed, fields: []string{"X-Min-Position"}})
	}

	// POST /webhooks/payment, signed: its body is decoded like any other.
	hook := func(name, body string, status int, typ string, fields ...string) problemCase {
		return problemCase{name: "webhook/" + name, method: "POST", path: "/webhooks/payment", body: body, signed: true, status: status, typ: typ, fields: fields}
	}
	add(
		hook("empty object", `{}`, invalid, validation, "order_id", "payment_id", "status", "amount"),
		hook("no amount", `{"payment_id":"`+paymentID+`","order_id":"`+orderID+`","status":"success"}`, invalid, validation, "amount"),
		hook("amount null", strings.Replace(outcome(""), `"10.00"`, `null`, 1), bad, malformed, "amount"),
		hook("amount an object", strings.Replace(outcome(""), `"10.00"`, `{}`, 1), bad, malformed, "amount"),
		hook("order_id in braces", strings.Replace(outcome(""), orderID, "{"+orderID+"}", 1), invalid, validation, "order_id"),
		hook("order_id not a UUID", strings.Replace(outcome(""), orderID, "nope", 1), invalid, validation, "order_id"),
		hook("order_id a number", `{"payment_id":"p","order_id":5,"status":"success","amount":"10.00"}`, bad, malformed, "order_id"),
		hook("amount three decimals", strings.Replace(outcome(""), `"10.00"`, `"10.001"`, 1), invalid, validation, "amount"),
		hook("amount true", strings.Replace(outcome(""), `"10.00"`, `true`, 1), bad, malformed, "amount"),
		hook("status other", strings.Replace(outcome(""), `"success"`, `"ok"`, 1), invalid, validation, "status"),
		hook("status a number", strings.Replace(outcome(""), `"success"`, `1`, 1), bad, malformed, "status"),
		hook("payment_id too long", strings.Replace(outcome(""), paymentID, long, 1), invalid, validation, "payment_id"),
		hook("NUL in payment_id", strings.Replace(outcome(""), paymentID, `p\u0000`, 1), invalid, validation, "payment_id"),
		hook("unknown field", outcome(`,"fee":"0.30"`), bad, malformed, "fee"),
		hook("array body", `[]`, bad, malformed, "body"),
		hook("not UTF-8", "{\"payment_id\":\"\xff\"}", bad, malformed, "body"),
		hook("unknown order", strings.Replace(outcome(""), orderID, unknown, 1), http.StatusNotFound, httpx.TypeNotFound),
		hook("another payment", strings.Replace(outcome(""), paymentID, "pay_other", 1), invalid, httpx.TypePaymentMismatch, "payment_id"),
		hook("another amount", strings.Replace(outcome(""), `"10.00"`, `"10.01"`, 1), invalid, httpx.TypePaymentMismatch, "amount"),
		problemCase{name: "webhook/unsigned", method: "POST", path: "/webhooks/payment", body: outcome(""), status: http.StatusUnauthorized, typ: httpx.TypeUnauthorized},
	)
	// The webhook's body is JSON and its webhook-id (stored with the
	// outcome) is text, as every request's.
	for _, ct := range []string{"text/plain", "", "application/json; charset=latin1"} {
		c := hook(fmt.Sprintf("content type %q", ct), outcome(""), http.StatusUnsupportedMediaType, httpx.TypeUnsupportedMediaType, "Content-Type")
		c.headers = []string{"Content-Type", ct}
		add(c)
	}
	for _, id := range []string{"msg\taudit", "msg\u0085audit", "msg\xffaudit"} {
		c := hook(fmt.Sprintf("webhook-id %q", id), outcome(""), bad, malformed, "webhook-id")
		c.webhookID = id
		add(c)
	}

	// Transport: what every route reads of a request beyond its body and
	// parameters, checked by the same mechanisms on every route
	// (internal/httpx): query parameters each route declares, Accept,
	// Content-Encoding, headers read once, and bounded echoes of what a
	// client sent.
	withHeaders := func(c problemCase, headers ...string) problemCase {
		c.headers = append(append([]string{}, c.headers...), headers...)
		return c
	}
	productBody := `{"name":"x","price":"1.00","stock":1}`
	placeBody := item(pid + `,"quantity":1`)
	routes := []problemCase{ // one request per route, each of them right but for what a case adds
		{name: "create product", method: "POST", path: "/admin/products", body: productBody, headers: admin},
		{name: "update product", method: "PATCH", path: "/admin/products/" + product, body: `{"stock":5}`, headers: admin},
		{name: "place order", method: "POST", path: "/orders", body: placeBody},
		{name: "cancel", method: "POST", path: "/orders/" + unknown + "/cancel"},
		{name: "products", method: "GET", path: "/products"},
		{name: "product", method: "GET", path: "/products/" + product},
		{name: "order", method: "GET", path: "/orders/" + orderID},
		{name: "orders", method: "GET", path: "/admin/orders", headers: admin},
		{name: "history", method: "GET", path: "/admin/orders/" + orderID + "/history", headers: admin},
		{name: "webhook", method: "POST", path: "/webhooks/payment", body: outcome(""), signed: true},
		{name: "healthz", method: "GET", path: "/healthz"},
		{name: "readyz", method: "GET", path: "/readyz"},
	}
	sep := func(path string) string {
		if strings.Contains(path, "?") {
			return "&"
		}
		return "?"
	}
	for _, route := range routes {
		c := route
		c.status, c.typ = bad, malformed
		// A query parameter the route does not take is refused, never
		// ignored (an unknown filter would list everything).
		unknownParam := c
		unknownParam.name, unknownParam.path, unknownParam.fields = route.name+"/unknown query parameter", route.path+sep(route.path)+"emial=x", []string{"emial"}
		longParam := c
		longName := strings.Repeat("q", 60_000)
		longParam.name, longParam.path, longParam.fields = route.name+"/unknown query parameter of 60,000 characters", route.path+sep(route.path)+longName+"=1",
			[]string{strings.Repeat("q", httpx.MaxEcho) + "… (60000 characters)"}
		bidiParam := c
		bidiParam.name, bidiParam.path, bidiParam.fields = route.name+"/unknown query parameter of bidirectional controls", route.path+sep(route.path)+
			strings.Repeat("%E2%80%AE", 6000)+"=1", []string{strings.Repeat(`\u202e`, httpx.MaxEcho/6) + "… (6000 characters)"}
		add(unknownParam, longParam, bidiParam)
		// Accept: JSON (what a success is sent as), or nothing is done.
		for _, accept := range []string{"application/xml", "application/json;q=0", "text/html", "*/*, application/json;q=0, application/problem+json;q=0",
			"application/problem+json", "application/json;q=0, */*;q=0.1", "*/*;charset=utf-8, application/json;q=0"} {
			n := withHeaders(route, "Accept", accept)
			n.name, n.status, n.typ, n.fields = fmt.Sprintf("%s/Accept %q", route.name, accept), http.StatusNotAcceptable, httpx.TypeNotAcceptable, []string{"Accept"}
			add(n)
		}
		// A body with a content coding is 415, on every route that takes one.
		if route.body != "" {
			for _, coding := range []string{"gzip", "br", "identity, deflate"} {
				e := withHeaders(route, "Content-Encoding", coding)
				e.name, e.status, e.typ, e.fields = fmt.Sprintf("%s/Content-Encoding %q", route.name, coding), http.StatusUnsupportedMediaType,
					httpx.TypeUnsupportedMediaType, []string{"Content-Encoding"}
				add(e)
			}
		}
		// A route that takes no body refuses one, whatever it is
		// declared as: 415 for a content coding, 413 over the limit, 400
		// otherwise; nothing is done.
		if route.body == "" && !route.signed {
			plain := withHeaders(route, "Content-Type", "text/plain")
			plain.body, plain.name, plain.status, plain.typ, plain.fields = "cancel me", route.name+"/a body", bad, malformed, []string{"body"}
			gz := withHeaders(route, "Content-Type", "text/plain", "Content-Encoding", "gzip")
			gz.body, gz.name, gz.status, gz.typ, gz.fields = "\x1f\x8b", route.name+"/a gzip body", http.StatusUnsupportedMediaType,
				httpx.TypeUnsupportedMediaType, []string{"Content-Encoding"}
			huge := withHeaders(route, "Content-Type", "application/json")
			huge.body, huge.name, huge.status, huge.typ, huge.fields = strings.Repeat(" ", 2<<20), route.name+"/a body of 2 MB",
				http.StatusRequestEntityTooLarge, httpx.TypeBodyTooLarge, []string{"body"}
			add(plain, gz, huge)
		}
		// The admin secret is read once: the right one and a wrong one are
		// not read as the first.
		if len(route.headers) > 0 && route.headers[0] == "X-Admin-Secret" {
			// Without it, nothing else of the request is looked at: 401,
			// whatever its query string or body.
			anon := route
			anon.headers = nil
			anon.path += sep(anon.path) + "x=1"
			anon.name, anon.status, anon.typ, anon.fields = route.name+"/no secret, unknown query parameter", http.StatusUnauthorized, httpx.TypeUnauthorized, nil
			add(anon)
			for _, second := range []string{"wrong", adminSecret} {
				twice := withHeaders(route, "X-Admin-Secret", second)
				twice.name, twice.status, twice.typ, twice.fields = route.name+"/X-Admin-Secret twice, then "+second, bad, malformed, []string{"X-Admin-Secret"}
				add(twice)
			}
		}
	}
	// Empty, overlong and undeclared values of the list endpoints'
	// parameters.
	add(
		get("products/limit empty", "/products?limit=", bad, malformed, "limit"),
		get("products/limit without a value", "/products?limit", bad, malformed, "limit"),
		get("products/is_active empty", "/products?is_active=", bad, malformed, "is_active"),
		get("products/cursor empty", "/products?cursor=", bad, malformed, "cursor"),
		get("products/cursor too long", "/products?cursor="+strings.Repeat("e", 257), bad, malformed, "cursor"),
		get("products/status (an orders filter)", "/products?status=paid", bad, malformed, "status"),
		get("products/several wrong", "/products?limit=&colour=red&is_active=", bad, malformed, "limit", "colour", "is_active"),
		get("orders/status empty", "/admin/orders?status=", bad, malformed, "status"),
		get("orders/email empty", "/admin/orders?email=", bad, malformed, "email"),
		get("orders/limit empty", "/admin/orders?limit=", bad, malformed, "limit"),
		get("orders/email of 255 characters", "/admin/orders?email="+strings.Repeat("e", 243)+"%40example.com", bad, malformed, "email"),
		get("orders/email of 60,000 characters", "/admin/orders?email="+strings.Repeat("e", 60_000), bad, malformed, "email"),
		get("orders/is_active (a products filter)", "/admin/orders?is_active=true", bad, malformed, "is_active"),
		get("orders/misspelt email", "/admin/orders?emial=x", bad, malformed, "emial"),
	)
	// Echoes of what a client sent are bounded and escaped: names, paths
	// and methods of tens of kilobytes (a megabyte in a body) are
	// answered in a few hundred bytes, with no raw bidirectional control.
	add(
		placement("unknown field of 1,000,000 characters", `{"`+strings.Repeat("k", 1_000_000)+`":1}`, bad, malformed,
			strings.Repeat("k", httpx.MaxEcho)+"… (1000000 characters)"),
		placement("unknown field of bidirectional controls", `{"`+strings.Repeat("\u202e", 300_000)+`":1}`, bad, malformed,
			strings.Repeat(`\u202e`, httpx.MaxEcho/6)+"… (300000 characters)"),
		placement("unknown item field of 1,000,000 characters", item(pid+`,"quantity":1,"`+strings.Repeat("k", 1_000_000)+`":1`), bad, malformed,
			"items[0]."+strings.Repeat("k", httpx.MaxEcho-len("items[0]."))+"… (1000009 characters)"),
		problemCase{name: "routing/path of 60,000 characters", method: "GET", path: "/" + strings.Repeat("x", 60_000), status: http.StatusNotFound, typ: httpx.TypeNotFound},
		problemCase{name: "routing/path of bidirectional controls", method: "GET", path: "/" + strings.Repeat("%e2%80%ae", 6000), status: http.StatusNotFound, typ: httpx.TypeNotFound},
		problemCase{name: "routing/unserved method, path of bidirectional controls", method: "DELETE", path: "/orders/" + strings.Repeat("%e2%80%ae", 6000),
			status: http.StatusMethodNotAllowed, typ: httpx.TypeMethodNotAllowed},
		problemCase{name: "routing/unserved method of 30,000 characters", method: strings.Repeat("FOO", 10_000), path: "/orders",
			status: http.StatusMethodNotAllowed, typ: httpx.TypeMethodNotAllowed},
	)
	// The webhook's signature headers are read once, before the signature
	// is checked.
	for _, h := range []string{payment.HeaderID, payment.HeaderTimestamp, payment.HeaderSignature} {
		add(problemCase{name: "webhook/" + h + " twice", method: "POST", path: "/webhooks/payment", body: outcome(""), signed: true, twice: h,
			status: bad, typ: malformed, fields: []string{h}})
	}

	// Domain (issue 13): a detail is worded from what an error carries,
	// never its text; identifiers from outside, names and descriptions
	// follow the one text rule (internal/textrule); messages read as
	// sentences; a body is refused for what is wrong with it.
	paidOrder, canceledOrder := domainOrders(t, cl, webhookSecret, product)
	with := func(c problemCase, detail string) problemCase { c.detail = detail; return c }
	notFound := http.StatusNotFound
	add(
		with(problemCase{name: "cancel/paid order", method: "POST", path: "/orders/" + paidOrder + "/cancel", status: http.StatusConflict,
			typ: httpx.TypeInvalidTransition}, "The order is paid; it cannot become canceled."),
		with(problemCase{name: "cancel/unknown id, its detail", method: "POST", path: "/orders/" + unknown + "/cancel", status: notFound,
			typ: httpx.TypeNotFound}, "There is no order with this id."),
		with(get("order/unknown id, its detail", "/orders/"+unknown, notFound, httpx.TypeNotFound), "There is no order with this id."),
		with(get("history/unknown id, its detail", "/admin/orders/"+unknown+"/history", notFound, httpx.TypeNotFound), "There is no order with this id."),
		with(get("product/unknown id, its detail", "/products/"+unknown, notFound, httpx.TypeNotFound), "There is no product with this id."),
		with(patch("unknown id, its detail", "/admin/products/"+unknown, `{"stock":1}`, notFound, httpx.TypeNotFound), "There is no product with this id."),
		with(patch("empty object, its detail", "/admin/products/"+product, `{}`, invalid, validation, "body"),
			"body must set at least one of name, description, price, stock or is_active."),
		with(placement("product unknown, its detail", item(fmt.Sprintf(`"product_id":%q,"quantity":1`, unknown)), invalid, validation, "items[0].product_id"),
			"items[0].product_id must name an existing product."),
		with(placement("product inactive, its detail", item(fmt.Sprintf(`"product_id":%q,"quantity":1`, inactive)), invalid, validation, "items[0].product_id"),
			"items[0].product_id must name a product that is available"),
		// Only spaces are padding in an address (docs/api.md, "Email identity").
		placement("email padded with a tab", `{"user_email":" c@example.com\t","items":[{`+pid+`,"quantity":1}]}`, invalid, validation, "user_email"),
		placement("email padded with a newline", `{"user_email":"c@example.com\n","items":[{`+pid+`,"quantity":1}]}`, invalid, validation, "user_email"),
		placement("email padded with U+00A0", `{"user_email":"c@example.com\u00a0","items":[{`+pid+`,"quantity":1}]}`, invalid, validation, "user_email"),
		// Bodies refused for what they are.
		with(newProduct("nested past the decoder's limit", `{"name":`+strings.Repeat("[", 12_000)+strings.Repeat("]", 12_000)+`,"price":"1.00","stock":1}`,
			bad, malformed, "body"), "more than 10000 levels deep"),
		with(newProduct("byte order mark", "\xef\xbb\xbf"+productBody, bad, malformed, "body"), "byte order mark (U+FEFF)"),
		with(newProduct("lone surrogate in a member name", `{"na\ud800me":"x","price":"1.00","stock":1}`, bad, malformed, "body"),
			"must have member names of Unicode text"),
		with(placement("lone surrogate in an item's member name", item(pid+`,"quantity":1,"x\udc00":1`), bad, malformed, "items[0]"),
			"must have member names of Unicode text"),
		with(newProduct("price beyond any amount", `{"name":"x","price":"99999999999999999999.00","stock":1}`, invalid, validation, "price"),
			"from -92233720368547757.99 to 92233720368547757.99"),
		with(newProduct("price beyond any amount, a number", `{"name":"x","price":99999999999999999999.00,"stock":1}`, invalid, validation, "price"),
			"to 92233720368547757.99"),
		with(hook("amount beyond any amount", strings.Replace(outcome(""), `"10.00"`, `"99999999999999999999.00"`, 1), invalid, validation, "amount"),
			"from -92233720368547757.99"),
	)
	// Names show something and reorder nothing; descriptions reorder
	// nothing; creation and change alike.
	for _, name := range []string{`\u200b`, `\ufeff`, `\u00ad`, `\udb40\udc01`, `\u3164`, `\u2800`, `\u2060\u180e`, ` \u200b `, `a\u202eb`, `\u2066x`, `x\u200f`, `\u061c`,
		`a\u2028b`, `a\u2029b`} { // line and paragraph separators, refused as \n is
		add(newProduct("name "+name, `{"name":"`+name+`","price":"1.00","stock":1}`, invalid, validation, "name"),
			patch("name "+name, "/admin/products/"+product, `{"name":"`+name+`"}`, invalid, validation, "name"))
	}
	for _, description := range []string{`\u202e`, `cheap \u202egnp.exe`, `\u2067x\u2069`, `a\u200eb`} {
		add(newProduct("description "+description, `{"name":"x","description":"`+description+`","price":"1.00","stock":1}`, invalid, validation, "description"),
			patch("description "+description, "/admin/products/"+product, `{"description":"`+description+`"}`, invalid, validation, "description"))
	}
	// Identifiers from outside: the webhook's payment_id (for an order
	// awaiting payment and for one canceled before it), Idempotency-Key,
	// webhook-id.
	for _, id := range []string{`pay_\u202e\ufeff/../x?y#z%00 😀`, `pay_\u202e1`, `pay_\u200b`, `\ufeffpay`, `pay_\u2066x`, `pay_\udb40\udc41`,
		`pay_/../x`, `pay 1`, `pay?1`, `pay#1`, `pay%2F1`, `..`, `pay_é`, `pay\u00a01`} {
		for _, o := range []struct{ name, id string }{{"awaiting payment", orderID}, {"canceled", canceledOrder}} {
			body := `{"payment_id":"` + id + `","order_id":"` + o.id + `","status":"success","amount":"10.00","occurred_at":"2025-01-01T00:00:00Z"}`
			add(hook(fmt.Sprintf("payment_id %s, order %s", id, o.name), body, invalid, validation, "payment_id"))
		}
	}
	for _, key := range []string{"key\u202e", "\ufeffkey", "k\u200by", "key\u2066", "key\u00ad", "key\U000e0041", "\u3164",
		"k\u00a0y", "k\u3000y", "k\u2028y"} { // no separator but the ASCII space
		c := placement(fmt.Sprintf("Idempotency-Key %+q", key), placeBody, bad, malformed, "Idempotency-Key")
		c.headers = []string{"Idempotency-Key", key}
		add(c)
		w := hook(fmt.Sprintf("webhook-id %+q", "msg"+key), outcome(""), bad, malformed, "webhook-id")
		w.webhookID = "msg" + key
		add(w)
	}

	signer, err := payment.NewSigner(webhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			headers := c.headers
			if c.signed {
				h := http.Header{}
				id := c.webhookID
				if id == "" {
					id = fmt.Sprintf("msg_audit_%d", i)
				}
				if err := signer.Sign(h, id, time.Now(), []byte(c.body)); err != nil {
					t.Fatal(err)
				}
				headers = append(headers, payment.HeaderID, h.Get(payment.HeaderID), payment.HeaderTimestamp, h.Get(payment.HeaderTimestamp),
					payment.HeaderSignature, h.Get(payment.HeaderSignature))
				if c.twice != "" { // the right value, then another field of it
					headers = append(headers, c.twice, h.Get(c.twice))
				}
			}
			r := cl.Do(t, c.method, c.path, c.body, headers...)
			apitest.CheckProblem(t, r, c.status, c.typ, c.fields...)
			detail, _ := r.Body["detail"].(string)
			if c.detail != "" && !strings.Contains(detail, c.detail) {
				t.Errorf("detail %q, want it to say %q", detail, c.detail)
			}
			if text := errorText(detail); text != "" || strings.Contains(detail, unknown) {
				t.Errorf("detail %q holds an error's own text (%q) or the id asked for", detail, text)
			}
			if len(r.Raw) > 1024 {
				t.Errorf("a problem of %d bytes: %.300s", len(r.Raw), r.Raw)
			}
			switch c.status {
			case http.StatusNotAcceptable:
				if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("a 406 in %q", ct)
				}
			case http.StatusUnsupportedMediaType:
				if c.fields[0] == "Content-Encoding" && r.Header.Get("Accept-Encoding") != "identity" {
					t.Errorf("a 415 for Content-Encoding with Accept-Encoding %q", r.Header.Get("Accept-Encoding"))
				}
			}
		})
	}
	// Refused outcomes changed nothing: the orders stand as they were, and
	// no payment id the rule refuses shows.
	for id, status := range map[string]string{orderID: "payment_pending", canceledOrder: "canceled", paidOrder: "paid"} {
		r := cl.Do(t, "GET", "/orders/"+id, "")
		if pid, _ := r.Body["payment_id"].(string); r.Body["status"] != status || (pid != "" && payment.IDProblem(pid) != "") {
			t.Errorf("order %s after the refused requests: %s", id, r.Raw)
		}
	}
	if r := cl.Do(t, "GET", "/orders/"+orderID, ""); r.Body["payment_id"] != paymentID {
		t.Errorf("the awaiting order's payment id changed: %s", r.Raw)
	}
}

// domainOrders places two orders of product for the problems audit: one
// paid (by a signed success webhook for its payment) and one canceled by
// its customer.
func domainOrders(t *testing.T, cl *apitest.Client, webhookSecret, product string) (paid, canceled string) {
	t.Helper()
	place := func(email string) string {
		r := cl.Do(t, "POST", "/orders", fmt.Sprintf(`{"user_email":%q,"items":[{"product_id":%q,"quantity":1}]}`, email, product))
		if r.Status != http.StatusCreated {
			t.Fatalf("place order: %d %s", r.Status, r.Raw)
		}
		return r.Body["id"].(string)
	}
	paid, canceled = place("paid@example.com"), place("canceled@example.com")
	if r := cl.Do(t, "POST", "/orders/"+canceled+"/cancel", ""); r.Status != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.Status, r.Raw)
	}
	var paymentID string
	eventually.True(t, "the order to await its payment", func() bool {
		r := cl.Do(t, "GET", "/orders/"+paid, "")
		paymentID, _ = r.Body["payment_id"].(string)
		return r.Body["status"] == "payment_pending" && paymentID != ""
	})
	signer, err := payment.NewSigner(webhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"payment_id":%q,"order_id":%q,"status":"success","amount":"10.00","occurred_at":"2025-01-01T00:00:00Z"}`, paymentID, paid)
	h := http.Header{}
	if err := signer.Sign(h, "msg_audit_paid", time.Now(), []byte(body)); err != nil {
		t.Fatal(err)
	}
	r := cl.Do(t, "POST", "/webhooks/payment", body, payment.HeaderID, h.Get(payment.HeaderID), payment.HeaderTimestamp, h.Get(payment.HeaderTimestamp),
		payment.HeaderSignature, h.Get(payment.HeaderSignature))
	if r.Status != http.StatusOK || r.Body["status"] != "paid" {
		t.Fatalf("pay: %d %s", r.Status, r.Raw)
	}
	return paid, canceled
}

// errorText returns the text of a domain error that detail holds, if
// any: a detail is worded from what an error carries, never from its text.
func errorText(detail string) string {
	for _, err := range []error{domainorder.ErrNotFound, domainorder.ErrIllegalTransition, domainorder.ErrPaymentMismatch, domainorder.ErrInvalid,
		domainproduct.ErrNotFound, domainproduct.ErrInvalid, domainproduct.ErrInactive, command.ErrValidation, command.ErrRejected,
		command.ErrIdempotencyConflict} {
		if strings.Contains(strings.ToLower(detail), err.Error()) {
			return err.Error()
		}
	}
	if strings.Contains(detail, ": not found") {
		return ": not found"
	}
	return ""
}
