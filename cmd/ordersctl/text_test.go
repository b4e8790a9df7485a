package main

import (
	"encoding/json"
	"testing"
)

// What ordersctl prints shows what is stored: invisible and reordering
// code points escaped, JSON still JSON meaning the same.
func TestTerminalTextEscapesWhatATerminalWouldHide(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"pay_123":                    "pay_123",
		"pay_\u202e\ufeff/../x 😀":    `pay_\u202e\ufeff/../x 😀`,
		"msg\u200b\u2066":            `msg\u200b\u2066`,
		"tag\U000e0041":              `tag\udb40\udc41`,
		"line\nnext\tcolumn\x1b[31m": "line\nnext\tcolumn\\u001b[31m",
		"é 中 ب":                      "é 中 ب",
	} {
		if got := terminalText(in); got != want {
			t.Errorf("terminalText(%q) = %q, want %q", in, got, want)
		}
	}
	raw, _ := json.Marshal(map[string]string{"payment_id": "pay_\u202e1\U000e0041"})
	var back map[string]string
	if err := json.Unmarshal([]byte(terminalText(string(raw))), &back); err != nil || back["payment_id"] != "pay_\u202e1\U000e0041" {
		t.Errorf("JSON printed is %s (%v), meaning %q", terminalText(string(raw)), err, back["payment_id"])
	}
}
