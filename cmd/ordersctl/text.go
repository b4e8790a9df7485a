package main

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/internal/httpx"
)

// What ordersctl prints of stored text (a step's last error, which may
// quote a payment provider; an event's data; a projection's error) and of
// its own arguments shows what is stored or typed, never what it would
// display as: every code point that does not show as itself
// (httpx.Hidden: control characters, newline and tab included, so that no
// text makes a table row or column of its own; line and paragraph
// separators U+2028, U+2029 and other separators but the space;
// bidirectional controls such as U+202E, which shows what follows it
// reversed; invisible code points) is written as JSON escapes it.

// maxCell bounds a table cell, in bytes of its escaped text: a longer one
// is cut and marked "… (N characters)" (--json prints it whole).
const maxCell = 500

// cell returns stored text s for a table cell or a line: escaped (see
// above) and bounded by maxCell.
func cell(s string) string {
	text, cut := escapeText(s, false, maxCell)
	if !cut {
		return text
	}
	return fmt.Sprintf("%s… (%d characters)", text, utf8.RuneCountInString(s))
}

// terminalText returns JSON that ordersctl prints (json.Marshal's output)
// with the code points a terminal would hide escaped too: JSON escapes
// control characters inside its strings already, so the only newlines
// left are its indentation's, kept; JSON stays JSON meaning the same
// (these code points only ever stand inside its strings).
func terminalText(s string) string {
	text, _ := escapeText(s, true, -1)
	return text
}

// escapeText escapes s (see above), keeping newlines if json, up to max
// bytes of the result if max >= 0; cut reports that some were left out.
func escapeText(s string, json bool, max int) (text string, cut bool) {
	var b strings.Builder
	var esc []byte
	for _, r := range s { // an invalid byte is U+FFFD
		esc = esc[:0]
		switch {
		case json && r == '\n', !httpx.Hidden(r):
			esc = utf8.AppendRune(esc, r)
		case r == '\n':
			esc = append(esc, `\n`...)
		case r == '\t':
			esc = append(esc, `\t`...)
		case r == '\r':
			esc = append(esc, `\r`...)
		default:
			if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
				esc = fmt.Appendf(esc, `\u%04x\u%04x`, r1, r2)
			} else {
				esc = fmt.Appendf(esc, `\u%04x`, r)
			}
		}
		if max >= 0 && b.Len()+len(esc) > max {
			return b.String(), true
		}
		b.Write(esc)
	}
	return b.String(), false
}

// parseID reads an id argument by the API's rule (httpx.ParseUUID: the
// canonical form only, not {…}, urn:uuid: or without hyphens); the
// error quotes the argument bounded (httpx.Quote).
func parseID(what, raw string) (uuid.UUID, error) {
	id, err := httpx.ParseUUID(raw)
	if err != nil {
		return id, fmt.Errorf("%s %s %s", what, httpx.Quote(raw), httpx.UUIDRule)
	}
	return id, nil
}

// errNegative: a duration flag that is below zero.
var errNegative = errors.New("must not be negative")

// checkDuration refuses a negative duration flag: --wait -5s has no
// meaning, and taking it as zero would hide the mistake.
func checkDuration(flag string, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("--%s %s: %w", flag, d, errNegative)
	}
	return nil
}
