package money_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/orders-reference/orders/money"
)

func TestParseAndFormat(t *testing.T) {
	ok := map[string]string{
		"1500": "1500.00", "1500.5": "1500.50", "1500.05": "1500.05", "0.01": "0.01", "0": "0.00", "-2.5": "-2.50",
		"007.10": "7.10",
	}
	for in, want := range ok {
		a, err := money.Parse(in)
		if err != nil || a.String() != want {
			t.Errorf("Parse(%q) = %v, %v; want %s", in, a, err, want)
		}
	}
	for _, in := range []string{"", ".5", "1.", "1.234", "1e3", "abc", "1,00", "+1", "--1", "1.-1", "92233720368547758.08"} {
		if _, err := money.Parse(in); !errors.Is(err, money.ErrInvalidAmount) {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}

func TestJSONNumberOrString(t *testing.T) {
	var v struct{ Price money.Amount }
	for in, want := range map[string]money.Amount{`{"Price":1500.00}`: 150000, `{"Price":"19.99"}`: 1999, `{"Price":3}`: 300} {
		if err := json.Unmarshal([]byte(in), &v); err != nil || v.Price != want {
			t.Errorf("%s: %v, %v", in, v.Price, err)
		}
	}
	for _, in := range []string{`{"Price":1e2}`, `{"Price":0.001}`, `{"Price":"x"}`, `{"Price":true}`} {
		if err := json.Unmarshal([]byte(in), &v); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
	out, _ := json.Marshal(struct{ P money.Amount }{150000})
	if string(out) != `{"P":"1500.00"}` {
		t.Errorf("marshal: %s", out)
	}
}

func TestOverflow(t *testing.T) {
	if _, err := money.Amount(1 << 62).Mul(4); err == nil {
		t.Error("Mul overflow not caught")
	}
	if _, err := money.Amount(1 << 62).Add(1 << 62); err == nil {
		t.Error("Add overflow not caught")
	}
	if v, err := money.Amount(150).Mul(3); err != nil || v != 450 {
		t.Errorf("Mul: %v %v", v, err)
	}
}

// An amount of the right format beyond MaxAmount is ErrTooLarge (and
// ErrInvalidAmount), so that a problem can say it is its size, not its
// format, that is wrong.
func TestTooLarge(t *testing.T) {
	t.Parallel()
	if got, err := money.Parse(money.MaxAmount.String()); err != nil || got != money.MaxAmount || money.MaxAmount.String() != "92233720368547757.99" {
		t.Fatalf("MaxAmount %s parses as %v, %v", money.MaxAmount, got, err)
	}
	for _, s := range []string{"92233720368547758", "92233720368547758.00", "99999999999999999999.00", "-99999999999999999999", "1" + strings.Repeat("0", 40)} {
		if _, err := money.Parse(s); !errors.Is(err, money.ErrTooLarge) || !errors.Is(err, money.ErrInvalidAmount) {
			t.Errorf("Parse(%q): %v, want ErrTooLarge", s, err)
		}
	}
	for _, s := range []string{"1.001", "1e3", " 1.00", "abc"} {
		if _, err := money.Parse(s); errors.Is(err, money.ErrTooLarge) || !errors.Is(err, money.ErrInvalidAmount) {
			t.Errorf("Parse(%q): %v, want a format error", s, err)
		}
	}
}
