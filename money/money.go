// Package money is the amount type of Orders: an integer count of minor
// units (cents), parsed from and formatted as a decimal string with two
// fraction digits. Money is never a float.
package money

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Amount is a sum of money in minor units (1 USD = 100).
type Amount int64

// ErrInvalidAmount: the input is not a decimal amount with at most two
// fraction digits, or it overflows.
var ErrInvalidAmount = errors.New("invalid amount")

// ErrTooLarge: the input is a decimal amount beyond MaxAmount in either
// sign (an ErrInvalidAmount too): its format is right, its size is not.
var ErrTooLarge = fmt.Errorf("%w: beyond the largest amount", ErrInvalidAmount)

// MaxAmount is the largest amount Parse reads (its negative the
// smallest): 92233720368547757.99.
const MaxAmount = Amount(maxUnits*100 + 99)

// maxUnits is the most whole units an Amount holds with any cents.
const maxUnits = (math.MaxInt64 - 99) / 100

// Currency is the only currency Orders handles.
const Currency = "USD"

// Parse reads "1500", "1500.5" or "1500.00" (an optional leading minus sign;
// no exponent, no more than two fraction digits).
func Parse(s string) (Amount, error) {
	neg := strings.HasPrefix(s, "-")
	body := strings.TrimPrefix(s, "-")
	whole, frac, hasDot := strings.Cut(body, ".")
	if whole == "" || (hasDot && (frac == "" || len(frac) > 2)) || !digits(whole) || !digits(frac) {
		return 0, fmt.Errorf("%w: %q (want a decimal with at most two fraction digits)", ErrInvalidAmount, s)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	units, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || units > maxUnits {
		return 0, fmt.Errorf("%w: %q", ErrTooLarge, s)
	}
	cents, _ := strconv.ParseInt(frac, 10, 64)
	a := Amount(units*100 + cents)
	if neg {
		a = -a
	}
	return a, nil
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// String formats a as "1500.00".
func (a Amount) String() string {
	sign := ""
	u := uint64(a)
	if a < 0 {
		sign, u = "-", uint64(-a)
	}
	return fmt.Sprintf("%s%d.%02d", sign, u/100, u%100)
}

// Mul returns a times n, or an error if it overflows.
func (a Amount) Mul(n int64) (Amount, error) {
	if n != 0 && (int64(a) > math.MaxInt64/n || int64(a) < math.MinInt64/n) {
		return 0, fmt.Errorf("%w: %s × %d overflows", ErrInvalidAmount, a, n)
	}
	return a * Amount(n), nil
}

// Add returns a plus b, or an error if it overflows.
func (a Amount) Add(b Amount) (Amount, error) {
	if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
		return 0, fmt.Errorf("%w: %s + %s overflows", ErrInvalidAmount, a, b)
	}
	return a + b, nil
}

// MarshalJSON writes the decimal string, e.g. "1500.00".
func (a Amount) MarshalJSON() ([]byte, error) {
	return json.Marshal(a.String())
}

// UnmarshalJSON accepts a decimal string ("1500.00") or a JSON number
// (1500, 1500.5), read exactly from its text, never through a float.
func (a *Amount) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidAmount, err)
		}
	} else {
		s = string(b)
	}
	v, err := Parse(s)
	if err != nil {
		return err
	}
	*a = v
	return nil
}
