package main

import (
	"fmt"
	"strings"
	"unicode/utf16"

	"github.com/orders-reference/orders/internal/textrule"
)

// terminalText returns s as a terminal may print it: every code point that
// would make it show other text than what is stored — a bidirectional
// control (U+202E shows what follows it reversed), any other invisible
// (default-ignorable) code point, a control character other than tab and
// newline — is written as JSON escapes it, \u202e (a pair of escapes
// beyond U+FFFF). Earlier versions stored such text (a payment id, a
// webhook id); the tables and the JSON ordersctl prints show it escaped,
// and JSON stays JSON (these code points only ever stand inside its
// strings).
func terminalText(s string) string {
	if !strings.ContainsFunc(s, escaped) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if !escaped(r) {
			b.WriteRune(r)
			continue
		}
		if r1, r2 := utf16.EncodeRune(r); r1 != '\uFFFD' {
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
			continue
		}
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	return b.String()
}

func escaped(r rune) bool {
	return r != '\n' && r != '\t' && (textrule.Invisible(r) || textrule.Control(r))
}
