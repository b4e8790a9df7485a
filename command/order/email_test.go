package order_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"

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
		// Spaces other than ASCII whitespace are refused, at the ends too.
		"user@example.com\u00a0", "\u00a0user@example.com", "user@example.com\u3000", "\u3000user@example.com",
		"user@example.com\u2028", "user@example.com\u2029", "user@example.com\u0085", "user\u3000@example.com",
		"user@exa\u00a0mple.com", "\u2003user@example.com",
		// Every invisible class of the one text rule (internal/textrule).
		"user\U000e0001@example.com", "us\u3164er@example.com", "user\ufe0f@example.com", "user@example.com\u2066",
		"user\u061c@example.com", "u\u2800ser@example.com\u200d",
	} {
		if got, err := order.CanonicalEmail(in); !errors.Is(err, order.ErrInvalidEmail) {
			t.Errorf("CanonicalEmail(%q) = %q, %v; want ErrInvalidEmail", in, got, err)
		}
	}
	// Spaces at the ends are padding, trimmed; every other whitespace is
	// refused there as inside (docs/api.md, "Email identity").
	if got, err := order.CanonicalEmail("   User@Example.com  "); err != nil || got != "user@example.com" {
		t.Errorf("spaces at the ends: %q, %v; want them trimmed", got, err)
	}
	for _, in := range []string{" c@example.com\t", "\tc@example.com", "c@example.com\r\n", "\vc@example.com", "c@example.com\f", "c@example.com\n"} {
		if got, err := order.CanonicalEmail(in); !errors.Is(err, order.ErrInvalidEmail) {
			t.Errorf("CanonicalEmail(%q) = %q, %v; want ErrInvalidEmail (only spaces are trimmed)", in, got, err)
		}
	}
	if order.NormalizeEmail("USER@EXAMPLE.COM") != order.NormalizeEmail("user@example.com") {
		t.Error("two spellings of one address key two customers")
	}
}

// RFC 5321: at most 64 octets before the @ and 254 in all, counted in the
// canonical form's UTF-8; longer is ErrEmailTooLong, which ValidateRequest
// reports under user_email.
func TestCanonicalEmailLength(t *testing.T) {
	t.Parallel()
	domain := func(n int) string { // a valid domain of n octets, labels of at most 63
		var labels []string
		for n > 0 {
			l := min(n, 63)
			if n-l == 1 { // no label of 0 octets after the dot
				l--
			}
			labels = append(labels, strings.Repeat("d", l))
			n -= l + 1
		}
		labels[len(labels)-1] = labels[len(labels)-1][:len(labels[len(labels)-1])-3] + "com"
		return strings.Join(labels, ".")
	}
	for _, c := range []struct {
		in      string
		tooLong bool
	}{
		{strings.Repeat("a", 64) + "@example.com", false},
		{strings.Repeat("a", 65) + "@example.com", true},
		{strings.Repeat("é", 32) + "@example.com", false}, // 64 octets
		{strings.Repeat("é", 33) + "@example.com", true},  // 66 octets, 33 characters
		{strings.Repeat("Ａ", 64) + "@example.com", false}, // 192 octets as sent, 64 as stored
		{strings.Repeat("a", 64) + "@" + domain(189), false},
		{strings.Repeat("a", 64) + "@" + domain(190), true},
		{"a@" + domain(252), false},
		{"a@" + domain(253), true},
	} {
		got, err := order.CanonicalEmail(c.in)
		if c.tooLong != errors.Is(err, order.ErrEmailTooLong) || c.tooLong != (err != nil) || c.tooLong != errors.Is(err, order.ErrInvalidEmail) {
			t.Errorf("CanonicalEmail(%d octets) = %d octets, %v; too long: %v", len(c.in), len(got), err, c.tooLong)
		}
		problem := order.ValidateRequest(c.in, []order.Line{{ProductID: [16]byte{1}, Quantity: 1}})["user_email"]
		if c.tooLong != strings.Contains(problem, "at most 64 bytes before the @ and 254 in all") {
			t.Errorf("ValidateRequest(%d octets): user_email %q", len(c.in), problem)
		}
	}
}

// FuzzCanonicalEmail: the canonical form is its own canonical form, a
// valid address's is valid and within RFC 5321's lengths, and holds no
// space; an ASCII address's is what versions before canonical forms stored
// (trimmed and lower-cased), so that only addresses with other characters
// changed form.
func FuzzCanonicalEmail(f *testing.F) {
	for _, s := range []string{"user@example.com", "ＵＳＥＲ@bücher.example", "a\u200b@b.c", "x@y", "Ünïcode@Example.com",
		" User@XN--BCHER-KVA.example\t", "user@example.com\u3000", strings.Repeat("a", 64) + "@example.com"} {
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
		local, _, _ := strings.Cut(c, "@")
		if len(c) > order.MaxEmail || len(local) > order.MaxEmailLocal || strings.ContainsFunc(c, unicode.IsSpace) {
			t.Fatalf("%q → %q: too long or holds a space", s, c)
		}
		ascii := !strings.ContainsFunc(s, func(r rune) bool { return r > unicode.MaxASCII })
		if old := strings.ToLower(strings.TrimSpace(s)); ascii && c != old {
			t.Fatalf("ASCII %q → %q, earlier versions stored %q", s, c, old)
		}
	})
}
