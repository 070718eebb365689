package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/pwbi/edge-agent/agent/unified"
)

// This file reads the fields of a Moka record from their raw JSON (a
// sub-slice the Scanner handed out; nil when the field is absent), the
// same way in both dialects: numbers from their text, never through
// float64; identifiers as strings or numbers; text as JSON strings.

// maxNumberLen bounds a numeric field of a Moka record (characters, sign and
// point included). 32 is far beyond any real rupiah amount; longer input is
// rejected rather than fed to big-number arithmetic.
const maxNumberLen = 32

// ErrMissing is the reason of a required field that is absent or null.
var ErrMissing = errors.New("missing")

var (
	errWantString  = errors.New("want a string")
	errWantIDValue = errors.New("want a string or a number")
	errWantNumber  = errors.New("want a decimal number or a string holding one")
)

// IsNull reports whether a raw field is absent (nil) or JSON null.
func IsNull(raw []byte) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// JSONString decodes a raw JSON string literal. The raw bytes were validated
// by the decoder that produced them; without escapes they are the string
// itself (invalid UTF-8 included, which the canonical encoder turns into
// U+FFFD exactly as encoding/json would).
func JSONString(raw []byte) (string, error) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && !hasBackslash(raw) {
		return string(raw[1 : len(raw)-1]), nil
	}
	return unquote(raw)
}

// unquote decodes a JSON string literal with escapes.
func unquote(raw []byte) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errWantString
	}
	return s, nil
}

// TextField reads an optional text field: a JSON string, or null/absent.
func TextField(raw []byte) (string, error) {
	if IsNull(raw) {
		return "", nil
	}
	if raw[0] != '"' {
		return "", errWantString
	}
	return JSONString(raw)
}

// IDField reads an optional identifier: a JSON string or a JSON number
// (kept as its literal text), or null/absent (""). Surrounding spaces are
// trimmed.
func IDField(raw []byte) (string, error) {
	if IsNull(raw) {
		return "", nil
	}
	switch c := raw[0]; {
	case c == '"':
		s, err := JSONString(raw)
		return strings.TrimSpace(s), err
	case c == '-' || ('0' <= c && c <= '9'):
		return string(raw), nil
	}
	return "", errWantIDValue
}

// DecimalField reads an optional decimal field: a JSON string or JSON
// number in the plain grammar of unified.ParseDecimal (no exponent), at
// most 32 characters, or null/absent (ok false, 0). The literal never goes
// through float64.
func DecimalField(raw []byte) (d unified.Decimal, ok bool, err error) {
	if IsNull(raw) {
		return d, false, nil
	}
	text := raw
	switch c := raw[0]; {
	case c == '"':
		if hasBackslash(raw) { // escapes in a number: decode, then check
			s, err := unquote(raw)
			if err != nil {
				return d, false, errWantNumber
			}
			text = []byte(s)
		} else {
			text = raw[1 : len(raw)-1]
		}
		text = trimSpace(text)
		if len(text) == 0 {
			return d, false, errors.New("empty string, want a decimal number")
		}
	case c == '-' || isDigit(c):
	default:
		return d, false, errWantNumber
	}
	if d, ok := smallDecimal(text); ok {
		return d, true, nil
	}
	s := string(text)
	if err := unified.CheckDecimalText(s, maxNumberLen); err != nil {
		return d, false, fmt.Errorf("bad number %s", QuoteShort(s))
	}
	d, err = unified.ParseDecimal(s)
	if err != nil {
		return d, false, fmt.Errorf("bad number %s", QuoteShort(s))
	}
	return d, true, nil
}

// smallDecimal parses the common case without allocating a string: a plain
// decimal ([-]digits[.digits]) of at most 18 digits. ok is false for
// anything else, which the general path then accepts or rejects.
func smallDecimal(b []byte) (unified.Decimal, bool) {
	i, neg := 0, false
	if len(b) > 0 && b[0] == '-' {
		neg, i = true, 1
	}
	var v int64
	digits, frac, intDigits := 0, 0, 0
	dot := false
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case isDigit(c):
			digits++
			if digits > 18 {
				return unified.Decimal{}, false
			}
			v = v*10 + int64(c-'0')
			if dot {
				frac++
			} else {
				intDigits++
			}
		case c == '.' && !dot && intDigits > 0:
			dot = true
		default:
			return unified.Decimal{}, false
		}
	}
	if intDigits == 0 || (dot && frac == 0) {
		return unified.Decimal{}, false
	}
	if neg {
		v = -v
	}
	return unified.NewDecimal(decimal.New(v, int32(-frac))), true
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// MaxDateTimeLen bounds the text of a date-time field.
const MaxDateTimeLen = 64

// DateTimeText reads a date-time field as its text, trimmed, for the
// dialect to parse: a JSON string of at most MaxDateTimeLen bytes. Absent,
// null or blank is ErrMissing.
func DateTimeText(raw []byte) (string, error) {
	if IsNull(raw) {
		return "", ErrMissing
	}
	if raw[0] != '"' {
		return "", errors.New("want a date-time string")
	}
	s, err := JSONString(raw)
	if err != nil {
		return "", err
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", ErrMissing
	}
	if len(s) > MaxDateTimeLen {
		return "", errors.New("too long for a date-time")
	}
	return s, nil
}

// QuoteShort quotes s for an error reason, cut after 40 bytes with "…", so
// that a reason never echoes a long input.
func QuoteShort(s string) string {
	const max = 40
	if len(s) > max {
		return strconv.Quote(s[:max]) + "…"
	}
	return strconv.Quote(s)
}
