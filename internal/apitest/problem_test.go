package apitest_test

import (
	"testing"

	"github.com/orders-reference/orders/internal/apitest"
)

// GoTerm finds what Go's decoders, drivers and types would leak into a
// problem, and nothing in the API's own messages.
func TestGoTerm(t *testing.T) {
	t.Parallel()
	for _, leak := range []string{
		`json: cannot unmarshal JSON object into Go []struct { ProductID string "json:\"product_id\"" } within "/items"`,
		`json: cannot unmarshal number into Go struct field placeOrderRequest.items of type int64`,
		`cannot unmarshal JSON string into Go int64`,
		`invalid order: map[items[0].quantity:must be 1-10000]`,
		`*main.productRequest`, `httpapi.placeOrderRequest`, `uuid.UUID`, `money.Amount`,
		`invalid UUID length: 4`, `jsontext: invalid surrogate pair`,
		`ERROR: duplicate key value violates unique constraint "events_pkey" (SQLSTATE 23505)`,
		`pgx: conn closed`, `invalid byte sequence for encoding "UTF8": 0x00`, `value is <nil>`, `%!v(MISSING)`, `a bool`,
		`runtime error: invalid memory address or nil pointer dereference`,
		`Unknown field "a\x00" (names are case-sensitive).`, `payment not found: no payment with key "\x00"`,
		`At most 5 orders per 1m0s for one email.`, `retry in 2h0m0s`, `waited 1.5s`, `after 250ms`,
	} {
		if apitest.GoTerm(leak) == "" {
			t.Errorf("%q: no Go term found", leak)
		}
	}
	for _, fine := range []string{
		`Field "items" must be an array.`, `Field "items[0].quantity" must be an integer.`, `must be true or false`,
		`items[0].quantity must be 1-10000; user_email must be a valid email address.`, `must be a UUID`,
		`must be a decimal amount with at most two fraction digits, e.g. "1500.00"`, `The body is not valid JSON (at byte 12).`,
		`Unknown field "USER_EMAIL" (names are case-sensitive).`, `must not contain NUL (U+0000)`, `is out of range`,
		`No such endpoint: /nowhere (see /docs).`, `product 0193a3e0-0000-7000-8000-000000000000: not found`,
		`X-Min-Position must be a position as returned in X-Event-Position (commit/prepare).`, `must be "success" or "failed"`,
		`Send the body as application/json.`, `The body must be at most 1048576 bytes.`, `a@example.com`,
		`Unknown field "a\u0000" (names are case-sensitive).`, `At most 5 orders per minute for one email.`,
		`must be a UUID (8-4-4-4-12 hexadecimal digits)`, `At most 5 orders per 60 seconds for one email.`,
		`GET is not served at "/orders"; allowed: POST (see /docs).`, `retry in 2 seconds`, `1m of rope`,
	} {
		if term := apitest.GoTerm(fine); term != "" {
			t.Errorf("%q: found %q", fine, term)
		}
	}
}
