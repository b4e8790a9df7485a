package order_test

import (
	"errors"
	"testing"

	"github.com/orders-reference/orders/command/order"
)

// One customer, one spelling: case, width, Unicode form and IDNA domains
// fold to one address; invisible, bidirectional-control and control code
// points are refused, not folded away (they would make a second customer).
func TestCanonicalEmail(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"user@example.com":             "user@example.com",
		"  User@Example.COM ":          "user@example.com",
		"ＵＳＥＲ@example.com":             "user@example.com",
		"Ünïcode@Example.com":          "ünïcode@example.com",
		"u\u0308ser@example.com":       "üser@example.com", // NFC
		"user@bücher.example":          "user@xn--bcher-kva.example",
		"user@XN--BCHER-KVA.example":   "user@xn--bcher-kva.example",
		"first.last+tag@example.co.uk": "first.last+tag@example.co.uk",
	} {
		got, err := order.CanonicalEmail(in)
		if err != nil || got != want {
			t.Errorf("CanonicalEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"user\u200b@example.com", "user@exa\u200bmple.com", "\u202euser@example.com", "user\u200e@example.com",
		"us\u00aduser@example.com", "\ufeffuser@example.com", "a b@example.com", "user@localhost", "user", "@example.com",
		"user@", "us\x00er@example.com", "user@@example.com",
	} {
		if got, err := order.CanonicalEmail(in); !errors.Is(err, order.ErrInvalidEmail) {
			t.Errorf("CanonicalEmail(%q) = %q, %v; want ErrInvalidEmail", in, got, err)
		}
	}
	if order.NormalizeEmail("USER@EXAMPLE.COM") != order.NormalizeEmail("user@example.com") {
		t.Error("two spellings of one address key two customers")
	}
}

// FuzzCanonicalEmail: the canonical form is its own canonical form, and a
// valid address's is valid.
func FuzzCanonicalEmail(f *testing.F) {
	for _, s := range []string{"user@example.com", "ＵＳＥＲ@bücher.example", "a\u200b@b.c", "x@y", "Ünïcode@Example.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := order.CanonicalEmail(s)
		if err != nil {
			return
		}
		again, err := order.CanonicalEmail(c)
		if err != nil || again != c {
			t.Fatalf("%q → %q → %q (%v)", s, c, again, err)
		}
	})
}
