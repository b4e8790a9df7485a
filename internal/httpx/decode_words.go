package httpx

import (
	"bytes"
	"errors"

	"github.com/go-json-experiment/json/jsontext"
)

// What describe needs to say of a body that the decoder refuses for a
// reason its error does not name in so many words: a byte order mark, a
// surrogate escape in a member name, nesting beyond the decoder's limit.

// maxJSONDepth is the decoder's limit on nested arrays and objects
// (go-json-experiment's jsontext); a deeper body is valid JSON that it
// refuses.
const maxJSONDepth = 10000

// utf8BOM is U+FEFF encoded in UTF-8, which RFC 8259 §8.1 forbids at the
// start of JSON text sent over a network.
var utf8BOM = []byte("\xef\xbb\xbf")

// errBOM: the body starts with a byte order mark.
var errBOM = errors.New("the body starts with a byte order mark")

// tooDeep reports whether body nests arrays and objects deeper than
// maxJSONDepth (strings are skipped, escapes included).
func tooDeep(body []byte) bool {
	depth, inString := 0, false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			if depth++; depth > maxJSONDepth {
				return true
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return false
}

// surrogateAt reports whether the decoder stopped at offset on a \u
// escape of half a surrogate pair (U+D800-U+DFFF: the body is UTF-8, so
// that is the only way a string can fail to be Unicode), and whether that
// string is a member name (followed by a colon) rather than a value.
func surrogateAt(body []byte, offset int64) (ok, name bool) {
	if offset < 0 || offset+6 > int64(len(body)) {
		return false, false
	}
	esc := bytes.ToLower(body[offset : offset+4])
	if !bytes.Equal(esc[:3], []byte(`\ud`)) || !bytes.ContainsRune([]byte("89abcdef"), rune(esc[3])) {
		return false, false
	}
	rest := body[offset:]
	for i := 0; i < len(rest); i++ { // the end of the string, then what follows it
		switch rest[i] {
		case '\\':
			i++
		case '"':
			after := bytes.TrimLeft(rest[i+1:], " \t\r\n")
			return true, len(after) > 0 && after[0] == ':'
		}
	}
	return true, false
}

// surrogate reports whether syn stopped on half a surrogate pair.
func surrogate(body []byte, syn *jsontext.SyntacticError) bool {
	ok, _ := surrogateAt(body, syn.ByteOffset)
	return ok
}

// surrogateProblem says of half a surrogate pair what it is, alike in a
// value (named by its field) and in a member name (named by the object
// it is in, "body" at the top).
func surrogateProblem(body []byte, syn *jsontext.SyntacticError) Problem {
	const why = `(a \u escape names half a surrogate pair)`
	field := fieldPath(syn.JSONPointer)
	if _, name := surrogateAt(body, syn.ByteOffset); name {
		if field == "" {
			return bodyProblem(TypeMalformedRequest, "must have member names of Unicode text "+why)
		}
		return fieldProblem(TypeMalformedRequest, field, "must have member names of Unicode text "+why)
	}
	return fieldProblem(TypeMalformedRequest, orBody(field), "must be Unicode text "+why)
}
