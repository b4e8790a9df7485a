package payment_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/payment"
)

// A payment id is an identifier from outside: what the fake provider and
// real ones issue passes; anything invisible, reordering, or that would
// change the provider's URL it is put in does not.
func TestIDProblem(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"pay_" + uuid.NewString(), "pi_3MtwBwLkdIwHu7ix28a3tqPa", "5O190127TN364715T", "PM000ABC", "tr_WDqYK6vllg",
		"S01-1234567-1234567", "a", "1.2", "x~y", strings.Repeat("p", 255)} {
		if p := payment.IDProblem(id); p != "" {
			t.Errorf("%q refused: %s", id, p)
		}
	}
	for _, id := range []string{"", strings.Repeat("p", 256), "pay_\u202e\ufeff/../x?y#z%00 😀", "pay_\u202e1", "pay\u200b1", "pay\ufeff",
		"pay_1\U000e0041", "pay 1", "pay/1", "..", ".", "-", "_~", "pay?1", "pay#1", "pay%2F1", "pay_é", "pay:1", "pay\t1", "pay\x00"} {
		if p := payment.IDProblem(id); p == "" {
			t.Errorf("%q accepted", id)
		}
	}
	if p := payment.IDProblem("pay_\u202e1"); !strings.Contains(p, "U+202E") {
		t.Errorf("a bidirectional control is named: %q", p)
	}
}
