package payment

import (
	"fmt"
	"strings"

	"github.com/orders-reference/orders/internal/textrule"
)

// MaxProviderIDLength bounds an id the provider issues, in characters.
const MaxProviderIDLength = 255

// IDRule is what an id the provider issues must be, in the words
// problems use.
var IDRule = fmt.Sprintf("must be 1-%d characters, each an ASCII letter, a digit or one of - . _ ~, at least one a letter or digit", MaxProviderIDLength)

// IDProblem returns why id is not an id the service takes from its
// provider — a payment id (a webhook's payment_id, the answer to an
// initiation or a lookup) or a refund id — or "" if it is one. The
// contract names such ids only by example (the fake provider's are "pay_"
// or "re_" and a UUID); the service stores them, shows them (a payment id
// to customers) and puts a payment id in the provider's URLs
// (/payments/{id}/refund), so an id is an identifier from outside, by the
// one rule of such identifiers (textrule.IdentifierProblem: nothing
// invisible or reordering), and made of RFC 3986's unreserved characters
// (letters, digits, - . _ ~), which a URL path segment holds as they are:
// no "/", "?", "#", "%" or space that would change the URL it is put in,
// and not "." or "..", which name another path.
func IDProblem(id string) string {
	if p := textrule.IdentifierProblem(id); p != "" {
		return p
	}
	if id == "" || len(id) > MaxProviderIDLength || !strings.ContainsFunc(id, alphanumeric) {
		return IDRule
	}
	for i := range len(id) {
		if c := id[i]; !alphanumeric(rune(c)) && !strings.ContainsRune("-._~", rune(c)) {
			return IDRule
		}
	}
	return ""
}

func alphanumeric(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
}
