package eventstore_test

import (
	"errors"
	"testing"

	"github.com/orders-reference/orders/eventstore"
)

// ParsePosition reads the form String writes and nothing else: no
// leading zero, sign or space, and no part beyond what a store produces
// (PostgreSQL's bigints, KurrentDB's int64 log positions).
func TestParsePosition(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]eventstore.Position{
		"0/0": {},
		"1/2": {Commit: 1, Prepare: 2},
		"9223372036854775807/9223372036854775807": {Commit: 9223372036854775807, Prepare: 9223372036854775807},
	} {
		got, err := eventstore.ParsePosition(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParsePosition(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{
		"", "/", "1", "1/", "/1", "1/2/3", "01/0", "1/00", "00/0", "+1/0", "-1/0", " 1/0", "1/0 ", "1 /0", "0x1/0", "1_0/0", "١/0",
		"9223372036854775808/0", "0/9223372036854775808", "18446744073709551615/0", "18446744073709551616/0",
	} {
		if got, err := eventstore.ParsePosition(in); !errors.Is(err, eventstore.ErrInvalidPosition) {
			t.Errorf("ParsePosition(%q) = %v, %v; want ErrInvalidPosition", in, got, err)
		}
	}
}
