package jurnalfake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// Error messages the fake answers with. Gateway errors (authentication,
// rate limits, injected faults) are {"message": …}; Jurnal's own errors are
// {"errors": …}: an object of field → messages for a validation failure, a
// string otherwise.
const (
	// MsgUnauthorized: no Authorization header.
	MsgUnauthorized = "Unauthorized"
	// MsgSignatureInvalid: an Authorization header that is not a Mekari
	// HMAC header, names another algorithm or headers, or an unknown
	// username.
	MsgSignatureInvalid = "HMAC signature cannot be verified"
	// MsgSignatureMismatch: a wrong signature, or a Digest that does not
	// match the body.
	MsgSignatureMismatch = "HMAC signature does not match"
	// MsgDateOutOfRange: Date missing, unparseable, or more than
	// MaxClockSkew from the server's clock.
	MsgDateOutOfRange = "HMAC signature cannot be verified, a valid date or x-date header is required for HMAC Authentication"
	// MsgDigestRequired: SetRequireDigest(true) and a body without Digest.
	MsgDigestRequired = "HMAC signature cannot be verified, a digest header is required"
	// MsgRateLimited: 429, both for requests_per_minute and the monthly
	// quota (the X-RateLimit-Remaining-* headers tell which).
	MsgRateLimited = "API rate limit exceeded"
	// MsgNoRoute: a path the gateway does not know.
	MsgNoRoute = "no Route matched with those values"
	// MsgNotFound: a document looked up by id, transaction_no or custom_id
	// that does not exist (422 by default, see SetNotFoundStatus).
	MsgNotFound = "Data not found"
	// MsgDuplicateCustomID: a second document of one kind with the same
	// custom_id (409).
	MsgDuplicateCustomID = "Custom id has already been taken"
	// MsgMemoEmoji: an emoji in the memo (422).
	MsgMemoEmoji = "Memo may not contain emoji"
	// MsgDiscountTooLarge: a line discount over 100 % (422).
	MsgDiscountTooLarge = "Discount cannot exceed the total item amount"
	// MsgPaymentMethodMissing: a receive payment without payment method.
	MsgPaymentMethodMissing = "Payment method must be sent"
)

// Field length limits, in characters. AddressLimit is from public code; the
// others are the fake's choice (Rails string columns).
const (
	AddressLimit     = 250
	MemoLimit        = 1000
	StringLimit      = 255 // custom_id, reference_no, person_name, names, tags, transaction_no
	DescriptionLimit = 1000
)

// maxBodyBytes bounds a request body.
const maxBodyBytes = 1 << 20

// response is an answer not written yet.
type response struct {
	status int
	header http.Header
	body   []byte
}

func jsonResponse(status int, v any) *response {
	b, err := json.Marshal(v)
	if err != nil { // only maps, slices and plain structs are marshalled
		panic(fmt.Sprintf("jurnalfake: marshal: %v", err))
	}
	return &response{status: status, header: http.Header{}, body: append(b, '\n')}
}

// gatewayError is an error of the API gateway: {"message": msg}.
func gatewayError(status int, msg string) *response {
	return jsonResponse(status, map[string]string{"message": msg})
}

// jurnalError is an error of Jurnal itself: {"errors": msg}.
func jurnalError(status int, msg string) *response {
	return jsonResponse(status, map[string]string{"errors": msg})
}

// fieldErrors collects validation messages per field, in order.
type fieldErrors struct {
	fields []string
	msgs   map[string][]string
}

func (f *fieldErrors) add(field, msg string) {
	if f.msgs == nil {
		f.msgs = make(map[string][]string)
	}
	if _, ok := f.msgs[field]; !ok {
		f.fields = append(f.fields, field)
	}
	f.msgs[field] = append(f.msgs[field], msg)
}

func (f *fieldErrors) empty() bool { return len(f.fields) == 0 }

// response is 422 {"errors": {field: [messages]}}.
func (f *fieldErrors) response() *response {
	return jsonResponse(http.StatusUnprocessableEntity, map[string]any{"errors": f.msgs})
}

// first is the first message, for the request log.
func (f *fieldErrors) first() string {
	if f.empty() {
		return ""
	}
	return f.msgs[f.fields[0]][0]
}

// decodeBody reads a JSON request body into v: 400 on malformed JSON, 413
// when too large. Unknown fields are ignored, as Rails does.
func decodeBody(body []byte, v any) *response {
	if len(bytes.TrimSpace(body)) == 0 {
		return jurnalError(http.StatusBadRequest, "Request body is empty")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return jurnalError(http.StatusBadRequest, "Request body is not valid JSON")
	}
	return nil
}

// amount is a number Jurnal accepts as a JSON number or a numeric string
// ("25000", "2.5"). The zero value means "not sent".
type amount struct {
	Set   bool
	Value decimal.Decimal
	Bad   bool // sent, but not a number
}

// UnmarshalJSON accepts a number, a numeric string or null.
func (a *amount) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		*a = amount{}
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		s = strings.TrimSpace(str)
	}
	a.Set = true
	d, err := parseDecimal(s)
	if err != nil {
		a.Bad = true
		return nil
	}
	a.Value = d
	return nil
}

// maxAmount bounds the numbers the fake accepts (Jurnal's amounts are
// decimal columns; a bound keeps exponents like 1e999999 from costing
// memory).
var maxAmount = decimal.New(1, 15)

// parseDecimal parses a decimal as JSON or Ruby's BigDecimal reads it
// ("-12.50", "1e5"), at most 15 integer digits and 12 fractional ones; NaN,
// thousands separators and spaces are refused.
func parseDecimal(s string) (decimal.Decimal, error) {
	if s == "" || len(s) > 40 || strings.ContainsAny(s, "_, ") {
		return decimal.Decimal{}, errors.New("not a plain decimal")
	}
	mant, exp, _ := strings.Cut(strings.ToLower(s), "e")
	if exp != "" {
		if n, err := strconv.Atoi(exp); err != nil || n < -30 || n > 30 || len(mant) > 30 {
			return decimal.Decimal{}, errors.New("exponent out of range")
		}
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, err
	}
	if d.Abs().GreaterThanOrEqual(maxAmount) || !d.Equal(d.Round(12)) {
		return decimal.Decimal{}, errors.New("out of range")
	}
	return d, nil
}

// idParam is a document or product id, sent as a JSON number or string.
type idParam struct {
	Set   bool
	Value int64
	Bad   bool
}

// UnmarshalJSON accepts a number, a numeric string or null.
func (id *idParam) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		*id = idParam{}
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		s = strings.TrimSpace(str)
	}
	id.Set = true
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		id.Bad = true
		return nil
	}
	id.Value = n
	return nil
}

// money renders an amount as Jurnal does: a string with at least one
// fractional digit ("200000.0", "13636.36").
func money(d decimal.Decimal) string {
	if d.IsInteger() {
		return d.Truncate(0).String() + ".0"
	}
	return d.String()
}

// currency renders an amount like Jurnal's *_currency_format fields:
// "Rp. 200.000,00" (negative: "-Rp. 5.000,00").
func currency(d decimal.Decimal) string {
	sign := ""
	if d.IsNegative() {
		sign = "-"
		d = d.Neg()
	}
	s := d.StringFixed(2)
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte('.')
		}
		b.WriteRune(c)
	}
	return sign + "Rp. " + b.String() + "," + frac
}

// parseDate reads a transaction date as Jurnal accepts it: "2026-09-11" or
// "11/09/2026". It returns the ISO form.
func parseDate(s string) (string, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02", "02/01/2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Format("2006-01-02"), true
		}
	}
	return "", false
}

// showDate renders an ISO date as Jurnal's answers do: DD/MM/YYYY.
func showDate(iso string) string {
	t, err := time.Parse("2006-01-02", iso)
	if err != nil {
		return iso
	}
	return t.Format("02/01/2006")
}

// containsEmoji reports whether s holds a pictographic character: the
// emoji blocks of the Supplementary Multilingual Plane, miscellaneous
// symbols and dingbats, a few stars and marks, and the emoji variation
// selector and keycap.
func containsEmoji(s string) bool {
	for _, r := range s {
		switch {
		case r >= 0x1F000 && r <= 0x1FAFF,
			r >= 0x2600 && r <= 0x27BF,
			r >= 0x2300 && r <= 0x23FF,
			r == 0x2B50, r == 0x2B55, r == 0x2B1B, r == 0x2B1C,
			r == 0x3030, r == 0x303D, r == 0x3297, r == 0x3299,
			r == 0xFE0F, r == 0x20E3:
			return true
		}
	}
	return false
}

// checkLength adds a Rails-like "is too long" message when s has more than
// limit characters.
func checkLength(errs *fieldErrors, field, label, s string, limit int) {
	if utf8.RuneCountInString(s) > limit {
		errs.add(field, fmt.Sprintf("%s is too long (maximum is %d characters)", label, limit))
	}
}
