// Package textrule is the one place that says which code points the
// service refuses in text it takes from outside, and where: an identifier
// (a payment id, an Idempotency-Key, a webhook-id), a name shown to people
// (a product's name), prose (a product's description), an email address
// (command/order.CanonicalEmail). The classes are Unicode's; every rule
// that refuses one of them names it by these functions, so that one
// character is not refused in one field and silently stored in another.
//
// It has no dependencies beyond the standard library, so that the domain
// (command/order, command/product), the HTTP plumbing (internal/httpx),
// the payment protocol and the command-line tools share it.
package textrule

import (
	"fmt"
	"unicode"
)

// BidiControl reports whether r is a bidirectional formatting control
// (Unicode's Bidi_Control: U+061C, U+200E-U+200F, U+202A-U+202E,
// U+2066-U+2069): it reorders the text around it as it is displayed
// (U+202E shows "abc" as "cba"), so what a reader sees is not what is
// stored.
func BidiControl(r rune) bool { return unicode.Is(unicode.Bidi_Control, r) }

// Invisible reports whether r is default-ignorable, rendered as nothing
// where it is not supported: the format characters (Cf: U+200B zero width
// space, U+FEFF, U+00AD soft hyphen, U+2060 word joiner, the tag
// characters U+E0000-U+E007F, the bidirectional controls…), the other
// default-ignorable code points (U+034F, U+115F, U+3164 Hangul filler,
// U+FFA0…) and the variation selectors. (Unicode's derived
// Default_Ignorable_Code_Point leaves out a few Cf code points that do
// render, such as U+0600; they are counted here too, which is stricter
// where a rule refuses them.)
func Invisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector, unicode.Bidi_Control)
}

// Control reports whether r is a control character (Cc: C0, DEL, C1).
func Control(r rune) bool { return unicode.Is(unicode.Cc, r) }

// Separator reports whether r is a space or a line or paragraph separator
// (Zs, Zl, Zp: U+0020, U+00A0, U+3000, U+2028…).
func Separator(r rune) bool { return unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp) }

// LineBreak reports whether r is a line or paragraph separator (Zl, Zp:
// U+2028, U+2029): it breaks the line it stands in as a newline does, so
// text that must be one line (a name, an identifier) refuses it as it
// refuses the newline, a control.
func LineBreak(r rune) bool { return unicode.In(r, unicode.Zl, unicode.Zp) }

// Visible reports whether r shows as a mark of its own: a graphic
// character that is neither white space nor invisible, and not a blank
// that only looks like one (U+2800 Braille pattern blank).
func Visible(r rune) bool {
	return unicode.IsGraphic(r) && !unicode.IsSpace(r) && !Invisible(r) && r != '\u2800'
}

// First returns the first code point of s in class, if any.
func First(s string, class func(rune) bool) (rune, bool) {
	for _, r := range s {
		if class(r) {
			return r, true
		}
	}
	return 0, false
}

// Codepoint names r as problems name code points: "U+202E".
func Codepoint(r rune) string { return fmt.Sprintf("U+%04X", r) }

// The rules, each returning what is wrong with s in the words of a
// problem's errors member ("must not contain …"), or "" if nothing is.
// They assume text the transport already accepted (valid UTF-8, no
// control character: internal/httpx.TextProblem); they add what a field
// of their kind must not hold.

// IdentifierProblem is the rule of an identifier taken from outside
// (a payment id, an Idempotency-Key, a webhook-id): one that is compared,
// stored and shown as it is must look like what it is, so it holds no
// invisible and no bidirectional-control code point, and no separator
// but the ASCII space (U+00A0 or U+3000 would make "a\u00a0b" an id that
// looks like "a b", and U+2028 breaks the line it is shown in): two ids
// that look alike would be two ids, and a shown id could show another.
func IdentifierProblem(s string) string {
	if r, ok := First(s, Invisible); ok {
		return "must not contain invisible or bidirectional-control characters (" + Codepoint(r) + ")"
	}
	if r, ok := First(s, func(r rune) bool { return Separator(r) && r != ' ' }); ok {
		return "must not contain " + Codepoint(r) + ": no space or separator but the ASCII space"
	}
	return ""
}

// NameProblem is the rule of a name shown to people (a product's name):
// no bidirectional control (it would reorder what is shown, and what
// follows it), no line or paragraph separator (LineBreak: a name is one
// line, as the newline, a control, is refused), and at least one visible
// character (a name of only
// invisible characters or blanks shows as nothing). Invisible characters
// inside a visible name stay: U+200D joins emoji, U+200C shapes
// Persian and Indic words.
func NameProblem(s string) string {
	if r, ok := First(s, BidiControl); ok {
		return "must not contain bidirectional-control characters (" + Codepoint(r) + ")"
	}
	if r, ok := First(s, LineBreak); ok {
		return "must not contain line or paragraph separators (" + Codepoint(r) + ")"
	}
	if _, ok := First(s, Visible); !ok {
		return "must contain at least one visible character"
	}
	return ""
}

// ProseProblem is the rule of free text shown to people (a product's
// description): no bidirectional control, for the reason NameProblem
// gives; it may be empty.
func ProseProblem(s string) string {
	if r, ok := First(s, BidiControl); ok {
		return "must not contain bidirectional-control characters (" + Codepoint(r) + ")"
	}
	return ""
}
