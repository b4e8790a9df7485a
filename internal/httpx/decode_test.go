package httpx_test

import (
	"encoding/json"
	"maps"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/internal/apitest"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/money"
)

type outcome struct {
	OrderID  uuid.UUID    `json:"order_id"`
	Amount   money.Amount `json:"amount"`
	Quantity int64        `json:"quantity"`
	Lines    []struct {
		Quantity int64 `json:"quantity"`
	} `json:"lines"`
	Active *bool  `json:"active"`
	Note   string `json:"note"`
}

// Every decoding failure about a field names it in errors, by its path in
// the request, with a message in JSON's terms: 400 for a value of another
// JSON kind, an unknown or repeated member; 422 for a value of the right
// kind that breaks the field's format or range (as a field rule does).
func TestDecodeNamesTheFieldInErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		body   string
		status int
		errors map[string]string
	}{
		{`{"order_id":"nope"}`, 422, map[string]string{"order_id": "must be a UUID"}},
		{`{"order_id":5}`, 400, map[string]string{"order_id": "must be a UUID"}},
		{`{"amount":"1.001"}`, 422, map[string]string{"amount": `must be a decimal amount with at most two fraction digits, e.g. "1500.00"`}},
		{`{"amount":{}}`, 422, map[string]string{"amount": `must be a decimal amount with at most two fraction digits, e.g. "1500.00"`}},
		{`{"quantity":"1"}`, 400, map[string]string{"quantity": "must be an integer"}},
		{`{"quantity":1.5}`, 400, map[string]string{"quantity": "must be an integer"}},
		{`{"quantity":99999999999999999999}`, 422, map[string]string{"quantity": "is out of range"}},
		{`{"lines":{}}`, 400, map[string]string{"lines": "must be an array"}},
		{`{"lines":[true]}`, 400, map[string]string{"lines[0]": "must be an object"}},
		{`{"lines":[{"quantity":[]}]}`, 400, map[string]string{"lines[0].quantity": "must be an integer"}},
		{`{"active":"yes"}`, 400, map[string]string{"active": "must be true or false"}},
		{`{"note":"\ud800"}`, 400, map[string]string{"note": `must be Unicode text (a \u escape names half a surrogate pair)`}},
		{`{"note":"a","NOTE":"b"}`, 400, map[string]string{"NOTE": "is not a field of this request (names are case-sensitive)"}},
		{`{"lines":[{"quantity":1,"quantity":2}]}`, 400, map[string]string{"lines[0].quantity": "appears more than once"}},
		{`{"note":"a\u0000"}`, 422, map[string]string{"note": "must not contain NUL (U+0000)"}},
		{`null`, 400, nil},
		{` [] `, 400, nil},
		{`{"note":`, 400, nil},
	} {
		rec := httptest.NewRecorder()
		var v outcome
		if httpx.DecodeJSON(rec, httptest.NewRequest("POST", "/", strings.NewReader(c.body)), &v) {
			t.Errorf("%s: accepted", c.body)
			continue
		}
		var p struct {
			Type   string
			Detail string
			Errors map[string]string
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if rec.Code != c.status || !maps.Equal(p.Errors, c.errors) {
			t.Errorf("%s: %d %s, want %d with errors %v", c.body, rec.Code, rec.Body, c.status, c.errors)
		}
		if term := apitest.GoTerm(p.Detail); term != "" {
			t.Errorf("%s: the detail %q names Go (%q)", c.body, p.Detail, term)
		}
		for field, msg := range p.Errors {
			if !strings.Contains(p.Detail, field) || !strings.Contains(p.Detail, msg) && field != "NOTE" {
				t.Errorf("%s: the detail %q does not say what errors says", c.body, p.Detail)
			}
		}
	}
}

// A detail spells out the first few field problems, in name order.
func TestFieldsDetail(t *testing.T) {
	t.Parallel()
	got := httpx.FieldsDetail(map[string]string{"user_email": "must be a valid email address", "items[0].quantity": "must be 1-10000"})
	if want := "items[0].quantity must be 1-10000; user_email must be a valid email address."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	got = httpx.FieldsDetail(map[string]string{"a": "x", "b": "x", "c": "x", "d": "x", "e": "x"})
	if want := "a x; b x; c x; and 2 more (see errors)."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
