package httpx

import (
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"
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

// Quote quotes s for a problem's detail as JSON writes a string (a
// client reads "a\u0000", never Go's "a\x00"); invalid UTF-8 shows as
// U+FFFD.
func Quote(s string) string {
	b, _ := jsontext.AppendQuote(nil, s)
	return string(b)
}
