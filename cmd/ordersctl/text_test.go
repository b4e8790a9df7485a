package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// A table cell shows what is stored: every control character (newline
// and tab included: stored text cannot make a row or a column of its
// own), line and paragraph separators, invisible and reordering code
// points escaped, and a long text bounded.
func TestCellEscapesWhatATerminalWouldHideOrLayOut(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"pay_123":                    "pay_123",
		"pay_\u202e\ufeff/../x 😀":    `pay_\u202e\ufeff/../x 😀`,
		"msg\u200b\u2066":            `msg\u200b\u2066`,
		"tag\U000e0041":              `tag\udb40\udc41`,
		"line\nnext\tcolumn\x1b[31m": `line\nnext\tcolumn\u001b[31m`,
		"a\r\nb":                     `a\r\nb`,
		"row\u2028row\u2029para":     `row\u2028row\u2029para`,
		"nbsp\u00a0x":                `nbsp\u00a0x`,
		"é 中 ب":                      "é 中 ب",
		"bad\ufffdgateway":           "bad\ufffdgateway",
	} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
	long := strings.Repeat("é", 3000)
	got := cell(long)
	if len(got) > maxCell+40 || !strings.HasSuffix(got, "… (3000 characters)") || !utf8.ValidString(got) {
		t.Errorf("cell of 3000 characters: %d bytes, ends %q", len(got), got[len(got)-30:])
	}
}

// JSON printed keeps its meaning and its layout, with what a terminal
// would hide escaped inside its strings.
func TestTerminalTextKeepsJSON(t *testing.T) {
	t.Parallel()
	want := map[string]string{"payment_id": "pay_\u202e1\U000e0041", "last_error": "a\nb\tc\u2028d"}
	raw, _ := json.MarshalIndent(want, "", "  ")
	printed := terminalText(string(raw))
	var back map[string]string
	if err := json.Unmarshal([]byte(printed), &back); err != nil || back["payment_id"] != want["payment_id"] || back["last_error"] != want["last_error"] {
		t.Errorf("JSON printed is %s (%v), meaning %q", printed, err, back)
	}
	if strings.ContainsAny(printed, "\u202e\u2028\t") || strings.Count(printed, "\n") != 3 {
		t.Errorf("JSON printed is %q", printed)
	}
}

// Ids are read by the API's rule, and an argument is echoed bounded.
func TestParseIDIsTheAPIsRule(t *testing.T) {
	t.Parallel()
	if _, err := parseID("order id", "0b6c4f0e-7d1a-4c2e-9f3b-2a1d5e6f7a8b"); err != nil {
		t.Errorf("canonical id refused: %v", err)
	}
	for _, in := range []string{
		"{0b6c4f0e-7d1a-4c2e-9f3b-2a1d5e6f7a8b}", "urn:uuid:0b6c4f0e-7d1a-4c2e-9f3b-2a1d5e6f7a8b",
		"0b6c4f0e7d1a4c2e9f3b2a1d5e6f7a8b", "nope", strings.Repeat("x", 3000),
	} {
		_, err := parseID("order id", in)
		if err == nil {
			t.Errorf("parseID(%.40q) accepted", in)
			continue
		}
		if len(err.Error()) > 200 {
			t.Errorf("parseID(%.40q) error is %d bytes", in, len(err.Error()))
		}
	}
}

func TestNegativeDurationsAreRefused(t *testing.T) {
	t.Parallel()
	if err := checkDuration("wait", -5*time.Second); err == nil {
		t.Error("--wait -5s accepted")
	}
	for _, d := range []time.Duration{0, time.Second} {
		if err := checkDuration("wait", d); err != nil {
			t.Errorf("--wait %s: %v", d, err)
		}
	}
}

// Whatever the argument, a flag's value or cobra's own message, the
// error printed is bounded and escaped.
func TestErrorsPrintedAreBounded(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k", 3000)
	for _, args := range [][]string{
		{"orders", "history", long},
		{"orders", "history", "{0b6c4f0e-7d1a-4c2e-9f3b-2a1d5e6f7a8b}"},
		{"orders", "history", "--wait", "-5s", "0b6c4f0e-7d1a-4c2e-9f3b-2a1d5e6f7a8b"},
		{"orders", "history", "--wait", long, "0b6c4f0e-7d1a-4c2e-9f3b-2a1d5e6f7a8b"},
		{"dlq", "retry", long + "\u202e"},
		{"dlq", "list", "--limit", "0"},
		{"projections", "rebuild", long},
		{"projections", "rebuild", "--batch", "-1", "orders"},
		{"projections", "switch", long},
		{"probe", "--timeout", "-1s"},
		{long},
	} {
		out, err := ctlErr("postgres://127.0.0.1:1/none", args...)
		if err == nil {
			t.Errorf("ordersctl %.60q succeeded", args)
			continue
		}
		if len(out) > maxError+200 || strings.ContainsRune(out, '\u202e') {
			t.Errorf("ordersctl %.60q printed %d bytes: %.200q", args, len(out), out)
		}
	}
}
