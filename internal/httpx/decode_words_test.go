package httpx_test

import (
	"strings"
	"testing"

	"github.com/orders-reference/orders/internal/apitest"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/money"
)

// Each way a body can be refused is said as what it is: valid JSON that
// nests too deeply is not "not valid JSON", half a surrogate pair reads
// alike in a member name and in a value, a byte order mark is named, and
// an amount too large is a range, not a format, problem.
func TestDecodeSaysWhatIsWrong(t *testing.T) {
	t.Parallel()
	type item struct {
		X string `json:"x"`
	}
	type request struct {
		Name       *string           `json:"name"`
		Price      *money.Amount     `json:"price"`
		Items      []item            `json:"items"`
		Attributes map[string]string `json:"attributes"`
		Raw        []byte            `json:"raw"`
	}
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, c := range []struct {
		name, body string
		typ, field string
		says       string // in the detail
	}{
		{"nested past the limit in a field", `{"name":` + nest(10_001) + `}`, httpx.TypeMalformedRequest, "body", "more than 10000 levels deep"},
		{"nested past the limit, unclosed", `{"name":` + strings.Repeat("[", 20_000) + `}`, httpx.TypeMalformedRequest, "body", "more than 10000 levels deep"},
		{"nested past the limit in an object", `{"attributes":` + strings.Repeat(`{"a":`, 10_001) + `1` + strings.Repeat("}", 10_001) + `}`,
			httpx.TypeMalformedRequest, "body", "more than 10000 levels deep"},
		{"brackets in a string are not nesting", `{"name":"` + strings.Repeat("[", 10_001) + `"}`, "", "", ""},
		{"lone surrogate in a value", `{"name":"a\ud800"}`, httpx.TypeMalformedRequest, "name", "must be Unicode text"},
		{"lone surrogate in a member name", `{"na\ud800me":"x"}`, httpx.TypeMalformedRequest, "body", "must have member names of Unicode text"},
		{"low surrogate in a nested member name", `{"items":[{"x\uDC00":"1"}]}`, httpx.TypeMalformedRequest, "items[0]", "must have member names of Unicode text"},
		{"lone surrogate in a map key", `{"attributes":{"k\udbff":"v"}}`, httpx.TypeMalformedRequest, "attributes", "must have member names of Unicode text"},
		{"lone surrogate in an array", `{"items":[{"x":"\udfff"}]}`, httpx.TypeMalformedRequest, "items[0].x", "must be Unicode text"},
		{"a surrogate pair is text", `{"name":"\ud83d\ude00"}`, "", "", ""},
		{"byte order mark", "\xef\xbb\xbf{\"name\":\"x\"}", httpx.TypeMalformedRequest, "body", "byte order mark (U+FEFF)"},
		{"byte order mark after spaces", " \xef\xbb\xbf{\"name\":\"x\"}", httpx.TypeMalformedRequest, "body", "RFC 8259"},
		{"price too large as a string", `{"price":"99999999999999999999.00"}`, httpx.TypeValidation, "price", "from -92233720368547757.99 to 92233720368547757.99"},
		{"price too large as a number", `{"price":99999999999999999999.00}`, httpx.TypeValidation, "price", "to 92233720368547757.99"},
		{"price too small", `{"price":"-99999999999999999999"}`, httpx.TypeValidation, "price", "from -92233720368547757.99"},
		{"price of three decimals is a format problem", `{"price":"1.001"}`, httpx.TypeValidation, "price", "at most two fraction digits"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := httpx.Decode([]byte(c.body), new(request))
			if c.typ == "" {
				if p != nil {
					t.Fatalf("refused: %s", p.Detail)
				}
				return
			}
			if p == nil {
				t.Fatal("accepted")
			}
			errs, _ := p.Extensions["errors"].(map[string]string)
			if p.Type != c.typ || errs[c.field] == "" || len(errs) != 1 || !strings.Contains(p.Detail, c.says) || apitest.GoTerm(p.Detail) != "" {
				t.Fatalf("%s %q %v; want %s naming %s, saying %q", p.Type, p.Detail, errs, c.typ, c.field, c.says)
			}
			if strings.Contains(p.Detail, "not valid JSON") {
				t.Errorf("valid JSON called invalid: %q", p.Detail)
			}
		})
	}
}
