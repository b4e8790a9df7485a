// Package storable is the one rule for text PostgreSQL cannot store: text
// from outside (a payment provider's answers, the errors that quote them)
// that a component records, and text that earlier versions
// stored but a read model cannot hold: their API accepted NUL (U+0000),
// which PostgreSQL's text and jsonb cannot hold (the event store keeps it
// as the escape \u0000). The projections store such text with U+FFFD in
// place of each NUL and each invalid UTF-8 sequence, and the write side's
// answers show it the same way, so a client sees one text for one field
// whichever side answers.
package storable

import (
	"strings"
	"unicode/utf8"
)

// Replacement stands in for what a read model cannot store.
const Replacement = "\uFFFD"

// Is reports whether a read-model column can hold s as it is.
func Is(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// Text returns s as text every read-model column can hold: each NUL and
// each invalid UTF-8 sequence is replaced with U+FFFD; everything else,
// control characters included, is kept.
func Text(s string) string {
	if Is(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, Replacement), "\x00", Replacement)
}

// Clip returns Text(s) cut to at most n bytes, at a character boundary:
// what a bounded text column (a step's last error, a dead letter's
// reason) stores of outside text.
func Clip(s string, n int) string {
	s = Text(s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
