package httpx

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/internal/textrule"
)

// The formats of the values the API reads from text (path and query
// parameters, headers, body strings), one parser each, so that every
// input of one kind is read alike.

// UUIDRule is what an id must be, in the words problems use.
const UUIDRule = "must be a UUID (8-4-4-4-12 hexadecimal digits)"

// errNotUUID: the text is not a UUID in its canonical form.
var errNotUUID = errors.New("not a UUID in its canonical form")

// ParseUUID reads a UUID in its canonical form only (RFC 9562 §4: 36
// characters, hexadecimal digits in groups of 8-4-4-4-12 separated by
// hyphens; either case, as RFC 9562 asks of a reader). uuid.Parse would
// also take it in braces, as a urn:uuid: URN or without hyphens: one id
// would have several spellings, and an id that is not the API's would
// pass.
func ParseUUID(s string) (uuid.UUID, error) {
	if len(s) != 36 {
		return uuid.Nil, errNotUUID
	}
	for i := range len(s) {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return uuid.Nil, errNotUUID
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return uuid.Nil, errNotUUID
			}
		}
	}
	return uuid.Parse(s)
}

// ParseInt reads a decimal integer from lo to hi written as one: digits
// only, no sign, no leading zero, no space ("+5", "05" and " 5" are not
// how the API writes 5).
func ParseInt(s string, lo, hi int) (int, bool) {
	if s == "" || len(s) > 18 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, false
	}
	return n, true
}

// URLRule is what a URL the service will call must be.
const URLRule = "must be an absolute http or https URL"

// HTTPURLProblem returns why s is not an absolute http(s) URL with a host
// (a URL the service can call back), or "" if it is one.
func HTTPURLProblem(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" ||
		strings.ContainsAny(s, " \t\r\n") {
		return URLRule
	}
	return ""
}

// MaxEcho bounds what a problem or a log line repeats of a text a client
// sent: at most this many bytes of it, as Quote writes it (escapes
// included): every name, path and id of the API in full (the longest
// route, /admin/orders/{id}/history, is 58 characters), while a name,
// path or value of a megabyte is answered in a few hundred bytes, and
// the 20 names a problem's errors member may hold in a few KB.
const MaxEcho = 64

// Quote quotes s, a text a client sent (a field name, a path, a method, a
// header or query value, an id), for a problem's detail or a log line:
// as JSON writes a string (a client reads "a\u0000", never Go's "a\x00";
// invalid UTF-8 shows as U+FFFD), with every code point that does not
// show as itself escaped the same way (control characters, bidirectional
// controls such as U+202E, which would reorder the answer around them,
// invisible and default-ignorable code points such as U+200B, separators
// other than the space, unassigned and private-use code points), and at
// most MaxEcho bytes of that: a longer text is cut, marked with "…" and
// followed by its length in characters, `"kkkk…" (1000000 characters)`.
// Every problem and log line that repeats what a client sent repeats it
// through Quote, or Clip where it stands unquoted (an errors member's
// name, a log attribute), so an answer or a line is bounded whatever was
// sent, and shows what was sent, not what it would display as.
func Quote(s string) string {
	text, n, cut := echo(s, MaxEcho)
	if !cut {
		return `"` + text + `"`
	}
	return fmt.Sprintf(`"%s…" (%d characters)`, text, n)
}

// Clip is Quote without the quotes, for a text that stands on its own: an
// errors member's name, a log attribute. A name of the API (items[0].
// quantity, /orders) is itself; a longer text is cut as Quote cuts it,
// `kkkk… (1000000 characters)`.
func Clip(s string) string {
	return ClipTo(s, MaxEcho)
}

// ClipTo is Clip with a bound of max bytes instead of MaxEcho, for a tool
// that shows stored text (ordersctl's tables: a step's last error, an
// event's data): every control character (newline and tab included, so
// that no text makes a row or a column of its own), separator other than
// the space (U+2028, U+00A0) and invisible code point is escaped, and a
// longer text is cut and marked as Clip marks it.
func ClipTo(s string, max int) string {
	text, n, cut := echo(s, max)
	if !cut {
		return text
	}
	return fmt.Sprintf("%s… (%d characters)", text, n)
}

// echo escapes s as Quote says, up to max bytes of the escaped text (cut
// between two code points), and returns that with the number of
// characters in s and whether some were cut.
func echo(s string, max int) (text string, n int, cut bool) {
	var b strings.Builder
	var esc []byte
	for _, r := range s { // an invalid byte is U+FFFD
		esc = appendEscaped(esc[:0], r)
		if b.Len()+len(esc) > max {
			return b.String(), utf8.RuneCountInString(s), true
		}
		b.Write(esc)
	}
	return b.String(), utf8.RuneCountInString(s), false
}

// appendEscaped appends r to b as Quote writes it.
func appendEscaped(b []byte, r rune) []byte {
	switch r {
	case '"':
		return append(b, `\"`...)
	case '\\':
		return append(b, `\\`...)
	case '\n':
		return append(b, `\n`...)
	case '\r':
		return append(b, `\r`...)
	case '\t':
		return append(b, `\t`...)
	case '\b':
		return append(b, `\b`...)
	case '\f':
		return append(b, `\f`...)
	}
	if !Hidden(r) {
		return utf8.AppendRune(b, r)
	}
	if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
		return fmt.Appendf(b, `\u%04x\u%04x`, r1, r2) // as JSON writes it: a surrogate pair
	}
	return fmt.Appendf(b, `\u%04x`, r)
}

// Hidden reports whether r does not show as itself where a text is
// displayed (the classes of internal/textrule, and what has no glyph).
func Hidden(r rune) bool {
	return textrule.Control(r) || textrule.Invisible(r) || textrule.Separator(r) && r != ' ' ||
		!unicode.IsGraphic(r) && r != ' ' || unicode.Is(unicode.Co, r)
}
