package unified

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/shopspring/decimal"
)

// MaxDecimalLen bounds the text of a decimal accepted by [ParseDecimal] (and
// so by [Decimal.UnmarshalJSON]). It is far above any real amount; it exists
// so that hostile input cannot make the agent do big-number arithmetic on
// megabyte-long numbers.
const MaxDecimalLen = 256

// ErrBadDecimal is wrapped by every error of [ParseDecimal].
var ErrBadDecimal = errors.New("bad decimal")

// Decimal is an exact decimal number for money and quantities. It never
// passes through a float.
//
// Its text form (String, MarshalJSON) is canonical: an optional "-", the
// integer digits, and a fractional part only when it is not zero, with
// trailing zeros removed — "150000.00" and "150000" are both "150000",
// "150000.50" is "150000.5", "-0" is "0". No exponent, "." as the separator,
// whatever shopspring/decimal's package-level formatting knobs
// (MarshalJSONWithoutQuotes, TrimTrailingZeros, UseScientificNotation) say.
// Trimming zeros never loses digits: the value is unchanged, so the same
// amount always yields the same bytes and the same record version.
//
// The zero value is 0.
type Decimal struct {
	d decimal.Decimal
}

// NewDecimal wraps a shopspring decimal.
func NewDecimal(d decimal.Decimal) Decimal { return Decimal{d: d} }

// DecimalFromInt returns the decimal of an integer.
func DecimalFromInt(i int64) Decimal { return Decimal{d: decimal.NewFromInt(i)} }

// ParseDecimal parses a plain decimal: an optional "-", one or more ASCII
// digits, and optionally "." followed by one or more digits. Exponents
// ("1e5"), a leading "+", NaN, Inf, separators other than "." and empty
// parts (".5", "5.") are rejected, as is text longer than MaxDecimalLen.
func ParseDecimal(s string) (Decimal, error) {
	if err := CheckDecimalText(s, MaxDecimalLen); err != nil {
		return Decimal{}, err
	}
	d, err := decimal.NewFromString(s)
	if err != nil { // unreachable after CheckDecimalText; kept for safety
		return Decimal{}, fmt.Errorf("%w: %q", ErrBadDecimal, s)
	}
	return Decimal{d: d}, nil
}

// CheckDecimalText reports whether s is a plain decimal in the grammar of
// [ParseDecimal] of at most maxLen bytes.
func CheckDecimalText(s string, maxLen int) error {
	if s == "" {
		return fmt.Errorf("%w: empty", ErrBadDecimal)
	}
	if len(s) > maxLen {
		return fmt.Errorf("%w: longer than %d characters", ErrBadDecimal, maxLen)
	}
	i := 0
	if s[0] == '-' {
		i++
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == start {
		return fmt.Errorf("%w: %s", ErrBadDecimal, quoteShort(s))
	}
	if i < len(s) && s[i] == '.' {
		i++
		fracStart := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == fracStart {
			return fmt.Errorf("%w: %s", ErrBadDecimal, quoteShort(s))
		}
	}
	if i != len(s) {
		return fmt.Errorf("%w: %s", ErrBadDecimal, quoteShort(s))
	}
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// quoteShort quotes s for an error message, cut to a readable length.
func quoteShort(s string) string {
	const max = 40
	if len(s) > max {
		return strconv.Quote(s[:max]) + "…"
	}
	return strconv.Quote(s)
}

// MustDecimal is ParseDecimal for constants in tests and examples; it panics
// on a malformed literal.
func MustDecimal(s string) Decimal {
	d, err := ParseDecimal(s)
	if err != nil {
		panic(err)
	}
	return d
}

// Dec returns the underlying shopspring decimal for arithmetic.
func (x Decimal) Dec() decimal.Decimal { return x.d }

// Add returns x + y, exactly.
func (x Decimal) Add(y Decimal) Decimal { return Decimal{d: x.d.Add(y.d)} }

// Sub returns x − y, exactly.
func (x Decimal) Sub(y Decimal) Decimal { return Decimal{d: x.d.Sub(y.d)} }

// Mul returns x × y, exactly.
func (x Decimal) Mul(y Decimal) Decimal { return Decimal{d: x.d.Mul(y.d)} }

// Equal reports whether x and y have the same value ("1.50" equals "1.5").
func (x Decimal) Equal(y Decimal) bool { return x.d.Equal(y.d) }

// Cmp returns -1, 0 or +1 as x is less than, equal to or greater than y.
func (x Decimal) Cmp(y Decimal) int { return x.d.Cmp(y.d) }

// IsZero reports whether x is 0.
func (x Decimal) IsZero() bool { return x.d.IsZero() }

// Sign returns -1, 0 or 1.
func (x Decimal) Sign() int { return x.d.Sign() }

// String returns the canonical text (see [Decimal]).
func (x Decimal) String() string { return string(x.appendCanonical(nil)) }

// AppendText appends the canonical text to b. It implements
// encoding.TextAppender.
func (x Decimal) AppendText(b []byte) ([]byte, error) {
	return x.appendCanonical(b), nil
}

// MarshalText implements encoding.TextMarshaler.
func (x Decimal) MarshalText() ([]byte, error) { return x.appendCanonical(nil), nil }

// MarshalJSON renders the canonical text as a JSON string.
func (x Decimal) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 24)
	b = append(b, '"')
	b = x.appendCanonical(b)
	return append(b, '"'), nil
}

// UnmarshalText parses the strict grammar of ParseDecimal.
func (x *Decimal) UnmarshalText(b []byte) error {
	d, err := ParseDecimal(string(b))
	if err != nil {
		return err
	}
	*x = d
	return nil
}

// UnmarshalJSON accepts a JSON string or a JSON number holding a plain
// decimal (no exponent). JSON null leaves x unchanged, like encoding/json
// does for other types.
func (x *Decimal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("%w: %v", ErrBadDecimal, err)
		}
		return x.UnmarshalText([]byte(s))
	}
	return x.UnmarshalText(b)
}

// appendCanonical appends the canonical text without going through
// shopspring's String, whose output depends on package-level knobs.
func (x Decimal) appendCanonical(b []byte) []byte {
	if x.d.Sign() == 0 {
		return append(b, '0')
	}
	exp := x.d.Exponent()
	if x.d.NumDigits() <= 18 { // the coefficient fits an int64: no copy
		return appendInt64Canonical(b, x.d.CoefficientInt64(), exp)
	}
	coef := x.d.Coefficient() // a copy; safe to modify
	return appendDigitsCanonical(b, coef.Sign() < 0, coef.Abs(coef).String(), exp)
}

func appendInt64Canonical(b []byte, c int64, exp int32) []byte {
	// Strip trailing zeros from the coefficient while the exponent is
	// negative, so that 15000000 × 10^-2 renders as 150000.
	for exp < 0 && c%10 == 0 {
		c /= 10
		exp++
	}
	neg := c < 0
	var buf [24]byte
	var digits []byte
	if neg {
		// c may be math.MinInt64; format the negative number and drop "-".
		digits = strconv.AppendInt(buf[:0], c, 10)[1:]
	} else {
		digits = strconv.AppendUint(buf[:0], uint64(c), 10)
	}
	return appendPlaced(b, neg, digits, exp)
}

func appendDigitsCanonical(b []byte, neg bool, digits string, exp int32) []byte {
	d := []byte(digits)
	for exp < 0 && len(d) > 1 && d[len(d)-1] == '0' {
		d = d[:len(d)-1]
		exp++
	}
	return appendPlaced(b, neg, d, exp)
}

// appendPlaced writes digits × 10^exp in plain notation. digits has no
// trailing zeros when exp < 0 and is not "0".
func appendPlaced(b []byte, neg bool, digits []byte, exp int32) []byte {
	if neg {
		b = append(b, '-')
	}
	switch {
	case exp >= 0:
		b = append(b, digits...)
		for range exp {
			b = append(b, '0')
		}
	case int(-exp) < len(digits):
		split := len(digits) + int(exp)
		b = append(b, digits[:split]...)
		b = append(b, '.')
		b = append(b, digits[split:]...)
	default:
		b = append(b, '0', '.')
		for range int(-exp) - len(digits) {
			b = append(b, '0')
		}
		b = append(b, digits...)
	}
	return b
}
