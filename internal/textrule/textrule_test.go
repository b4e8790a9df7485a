package textrule_test

import (
	"strings"
	"testing"
	"unicode"

	"github.com/orders-reference/orders/internal/textrule"
)

// invisibles are code points that render as nothing (or only reorder what
// is around them): each must be caught by the rule of every kind of text
// that refuses them.
var invisibles = []rune{
	'\u00ad', '\u034f', '\u061c', '\u115f', '\u1160', '\u17b4', '\u180e', '\u200b', '\u200c', '\u200d', '\u200e', '\u200f',
	'\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2060', '\u2061', '\u2064', '\u2066', '\u2067', '\u2068', '\u2069',
	'\u206f', '\u3164', '\ufe00', '\ufe0f', '\ufeff', '\uffa0', '\U0001d173', '\U000e0001', '\U000e0020', '\U000e007f', '\U000e0100',
}

func TestClasses(t *testing.T) {
	t.Parallel()
	for _, r := range invisibles {
		if !textrule.Invisible(r) || textrule.Visible(r) {
			t.Errorf("%s: invisible %v, visible %v", textrule.Codepoint(r), textrule.Invisible(r), textrule.Visible(r))
		}
	}
	for _, r := range []rune{'\u061c', '\u200e', '\u200f', '\u202a', '\u202e', '\u2066', '\u2069'} {
		if !textrule.BidiControl(r) || !textrule.Invisible(r) {
			t.Errorf("%s is a bidirectional control", textrule.Codepoint(r))
		}
	}
	for _, r := range []rune{'a', 'Z', '5', 'é', 'ж', 'ب', '中', '😀', '\u0301', '-', '.'} {
		if !textrule.Visible(r) || textrule.Invisible(r) || textrule.BidiControl(r) {
			t.Errorf("%q is visible", r)
		}
	}
	for _, r := range []rune{' ', '\u00a0', '\u2003', '\u3000', '\u2028', '\u2029', '\u2800', '\t', '\u0085'} {
		if textrule.Visible(r) {
			t.Errorf("%s is blank", textrule.Codepoint(r))
		}
	}
	for _, r := range []rune{' ', '\u00a0', '\u3000', '\u2028', '\u2029'} {
		if !textrule.Separator(r) {
			t.Errorf("%s is a separator", textrule.Codepoint(r))
		}
	}
	for _, r := range []rune{'\u2028', '\u2029'} {
		if !textrule.LineBreak(r) || !textrule.Separator(r) {
			t.Errorf("%s is a line break", textrule.Codepoint(r))
		}
	}
	for _, r := range []rune{' ', '\u00a0', '\n', 'a'} {
		if textrule.LineBreak(r) {
			t.Errorf("%s is no line break", textrule.Codepoint(r))
		}
	}
	for _, r := range []rune{0, '\t', '\n', 0x7f, 0x85, 0x9f} {
		if !textrule.Control(r) {
			t.Errorf("%s is a control", textrule.Codepoint(r))
		}
	}
	// Every Unicode Bidi_Control and default-ignorable code point is caught.
	for _, table := range []*unicode.RangeTable{unicode.Bidi_Control, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector, unicode.Cf} {
		for _, r16 := range table.R16 {
			for r := rune(r16.Lo); r <= rune(r16.Hi); r += rune(r16.Stride) {
				if !textrule.Invisible(r) || textrule.Visible(r) {
					t.Errorf("%s is not invisible", textrule.Codepoint(r))
				}
			}
		}
		for _, r32 := range table.R32 {
			for r := rune(r32.Lo); r <= rune(r32.Hi); r += rune(r32.Stride) {
				if !textrule.Invisible(r) || textrule.Visible(r) {
					t.Errorf("%s is not invisible", textrule.Codepoint(r))
				}
			}
		}
	}
}

func TestRules(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in                      string
		identifier, name, prose bool // refused by each rule
	}{
		{"pay_123", false, false, false},
		{"Laptop 15\"", false, false, false},
		{"👨\u200d👩\u200d👧", true, false, false}, // ZWJ: fine in a name, not in an id
		{"می\u200cخواهم", true, false, false},   // ZWNJ in Persian
		{"a\u202eb", true, true, true},
		{"\u2066x", true, true, true},
		{"x\u200fy", true, true, true},
		{"\u200b", true, true, false},
		{"\ufeff", true, true, false},
		{"\u00ad", true, true, false},
		{"\U000e0001", true, true, false},
		{"\u3164\u3164", true, true, false},
		{"\u2800", false, true, false},
		{"\u200b \u2060\u00a0", true, true, false},
		{"", false, true, false},
		{"pay_\u202e\ufeff/../x?y#z%00 😀", true, true, true},
		// Separators: the ASCII space is one, no other is in an id; a
		// line or paragraph separator breaks a name's line as \n does.
		{"a b", false, false, false},
		{"a\u00a0b", true, false, false},
		{"a\u3000b", true, false, false},
		{"a\u2003b", true, false, false},
		{"line\u2028next", true, true, false},
		{"para\u2029next", true, true, false},
	} {
		if got := textrule.IdentifierProblem(c.in) != ""; got != c.identifier {
			t.Errorf("IdentifierProblem(%q) = %q", c.in, textrule.IdentifierProblem(c.in))
		}
		if got := textrule.NameProblem(c.in) != ""; got != c.name {
			t.Errorf("NameProblem(%q) = %q", c.in, textrule.NameProblem(c.in))
		}
		if got := textrule.ProseProblem(c.in) != ""; got != c.prose {
			t.Errorf("ProseProblem(%q) = %q", c.in, textrule.ProseProblem(c.in))
		}
	}
	// A problem names the code point as JSON and problems do, never as Go.
	if p := textrule.IdentifierProblem("a\U000e0001"); !strings.HasSuffix(p, "(U+E0001)") {
		t.Errorf("IdentifierProblem names %q", p)
	}
}
