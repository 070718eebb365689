package checkout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// Limits of a tablet request.
const (
	// MaxBodyBytes caps a tablet request body (SPEC §7.2), the multipart
	// Finish with its receipt included.
	MaxBodyBytes = 1 << 20
	// maxDepth bounds JSON nesting; real Mokka bodies are 3 levels deep.
	maxDepth = 32
	// maxOrderIDLen is Mokka's limit ("Maximum 255 characters").
	maxOrderIDLen = 255
	maxURLLen     = 2048
)

// Request is what the gateway learned from a valid tablet request: only
// what order tracking needs, never the customer's data.
type Request struct {
	Method  string
	OrderID string // "" when the method has none (Limit, Schedule by amount)
	// Amount and Prepayment are the amounts sent, written with two
	// decimals ("8300.00" for 8300, 8300.0 or "8300.00"); "" when absent.
	// The body itself is sent to Mokka as the tablet wrote it.
	Amount     string
	Prepayment string
}

// ValidationError is a request the gateway refuses without calling Mokka.
// Detail says what is wrong without repeating the input, which may hold a
// customer's personal data.
type ValidationError struct {
	Code   int
	Detail string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("mokka code %d (%s): %s", e.Code, Message(e.Code), e.Detail)
}

func invalid(code int, format string, args ...any) *ValidationError {
	return &ValidationError{Code: code, Detail: fmt.Sprintf(format, args...)}
}

var (
	// amountRE: a plain decimal, digits with an optional point and
	// decimals; no sign, exponent, spaces, comma or leading zeros. Whether
	// it has at most two decimals is a question of its value (see amount).
	amountRE = regexp.MustCompile(`^(0|[1-9][0-9]*)(\.[0-9]+)?$`)
	// orderIDRE: what real clients use (FACTPRECH…, ORDER_…_…, Bitrix
	// "sessid:uniqid") and nothing that could bend a URL path or a key.
	orderIDRE = regexp.MustCompile(`^[A-Za-z0-9._:~@+=-]{1,255}$`)
	numericID = regexp.MustCompile(`^[0-9]{1,255}$`)
)

// validTillLayout is Mokka's valid_till format, dd.mm.yyyy hh:mm:ss+hh:mm.
const validTillLayout = "02.01.2006 15:04:05-07:00"

// Validate checks a tablet's request body for method the way Mokka would,
// so that a malformed request is refused locally with Mokka's own code:
// 10 for anything that is not one JSON object (invalid UTF-8, duplicate
// keys, trailing data, nesting deeper than 32, store_id or signature in the
// body), 20/21 for a missing or malformed order_id, 30/31 for an amount or
// prepayment amount that is not a number of at most two decimals (see
// amount: "8300.00", 51000.0 and 300 are all fine), 40/41 for a missing
// callback_url/redirect_url, 90 for a Change without cart_items and 110 for
// a valid_till that is neither dd.mm.yyyy hh:mm:ss+hh:mm nor RFC 3339. It
// never modifies body: the gateway signs and sends it as it is.
func Validate(method string, body []byte) (Request, *ValidationError) {
	req := Request{Method: method}
	if !IsMethod(method) {
		return req, invalid(CodeNotFound, "unknown method")
	}
	if len(body) == 0 {
		return req, invalid(CodeJSON, "the body is empty")
	}
	if len(body) > MaxBodyBytes {
		return req, invalid(CodeJSON, "the body is larger than 1 MiB")
	}
	if !utf8.Valid(body) {
		return req, invalid(CodeJSON, "the body is not valid UTF-8")
	}
	if err := checkJSON(body); err != nil {
		return req, invalid(CodeJSON, "%v", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return req, invalid(CodeJSON, "the body is not a JSON object")
	}
	if _, ok := top["store_id"]; ok {
		return req, invalid(CodeJSON, "store_id is added by the agent: leave it out of the body")
	}
	if _, ok := top["signature"]; ok {
		return req, invalid(CodeJSON, "signature is added by the agent: leave it out of the body")
	}

	var verr *ValidationError
	switch method {
	case MethodRegistration, MethodCheckout:
		order, err := object(top, "current_order")
		if err != nil {
			return req, invalid(CodeOrderIDMissing, "current_order must be an object with order_id")
		}
		if req.OrderID, verr = orderID(order["order_id"], "current_order.order_id"); verr != nil {
			return req, verr
		}
		if method == MethodCheckout {
			if req.Amount, verr = amount(order["amount"], true, true, CodeAmountFormat, "current_order.amount"); verr != nil {
				return req, verr
			}
			if req.Prepayment, verr = amount(order["prepayment_amount"], false, false, CodePrepaymentFormat, "current_order.prepayment_amount"); verr != nil {
				return req, verr
			}
			if verr = validTill(order["valid_till"], "current_order.valid_till"); verr != nil {
				return req, verr
			}
		}
		if verr = requiredURL(top["callback_url"], CodeCallbackURLMissing, "callback_url"); verr != nil {
			return req, verr
		}
		if verr = requiredURL(top["redirect_url"], CodeRedirectURLMissing, "redirect_url"); verr != nil {
			return req, verr
		}
	case MethodFinish, MethodReturn, MethodChange:
		if req.OrderID, verr = orderID(top["order_id"], "order_id"); verr != nil {
			return req, verr
		}
		if req.Amount, verr = amount(top["amount"], true, true, CodeAmountFormat, "amount"); verr != nil {
			return req, verr
		}
		if method == MethodChange {
			if req.Prepayment, verr = amount(top["prepayment_amount"], false, false, CodePrepaymentFormat, "prepayment_amount"); verr != nil {
				return req, verr
			}
			if verr = validTill(top["valid_till"], "valid_till"); verr != nil {
				return req, verr
			}
			var items []json.RawMessage
			if raw := top["cart_items"]; len(raw) == 0 || json.Unmarshal(raw, &items) != nil || len(items) == 0 {
				return req, invalid(CodeCartMissing, "cart_items must be a non-empty array")
			}
		}
	case MethodStatus, MethodCancel:
		if req.OrderID, verr = orderID(top["order_id"], "order_id"); verr != nil {
			return req, verr
		}
	case MethodSchedule:
		// The docs ask for the amount; some integrations send an order_id.
		if raw, ok := top["order_id"]; ok && !isNull(raw) {
			if req.OrderID, verr = orderID(raw, "order_id"); verr != nil {
				return req, verr
			}
		}
		if req.Amount, verr = amount(top["amount"], req.OrderID == "", true, CodeAmountFormat, "amount"); verr != nil {
			return req, verr
		}
	case MethodLimit:
		// {"client": {"mobile_phone": "…"}}: nothing the gateway must check.
	}
	return req, nil
}

// checkJSON requires exactly one JSON object, without duplicate keys (the
// gateway and Mokka could otherwise read different values) and nested at
// most maxDepth deep.
func checkJSON(body []byte) error {
	type frame struct {
		obj, wantKey bool
		keys         map[string]struct{}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var stack []*frame
	started := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return errors.New("the body is not valid JSON")
		}
		if len(stack) == 0 && started {
			return errors.New("data after the JSON object")
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			key, ok := tok.(string)
			if !ok {
				return errors.New("the body is not valid JSON")
			}
			if _, dup := top.keys[key]; dup {
				return errors.New("a key appears twice in one object")
			}
			top.keys[key] = struct{}{}
			top.wantKey = false
			continue
		}
		if top != nil && top.obj {
			top.wantKey = true // after this value, a key or '}'
		}
		switch d, _ := tok.(json.Delim); d {
		case '{', '[':
			if !started && d != '{' {
				return errors.New("the body is not a JSON object")
			}
			if len(stack) >= maxDepth {
				return fmt.Errorf("JSON nested deeper than %d levels", maxDepth)
			}
			f := &frame{obj: d == '{', wantKey: d == '{'}
			if f.obj {
				f.keys = make(map[string]struct{})
			}
			stack = append(stack, f)
		case ']':
			stack = stack[:len(stack)-1]
		default:
			if !started {
				return errors.New("the body is not a JSON object")
			}
		}
		started = true
	}
	if !started || len(stack) != 0 {
		return errors.New("the body is not a complete JSON object")
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

func object(m map[string]json.RawMessage, key string) (map[string]json.RawMessage, error) {
	raw := m[key]
	if len(raw) == 0 || raw[0] != '{' {
		return nil, errors.New("not an object")
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// stringValue returns the value of a JSON string; ok is false for any other
// JSON type.
func stringValue(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// orderID accepts a string of at most 255 safe characters, or a whole
// number (the docs call it "integer" in places).
func orderID(raw json.RawMessage, name string) (string, *ValidationError) {
	if isNull(raw) || string(raw) == `""` {
		return "", invalid(CodeOrderIDMissing, "%s is missing", name)
	}
	if s, ok := stringValue(raw); ok {
		if !ValidOrderID(s) {
			return "", invalid(CodeOrderIDFormat, "%s must be 1 to %d letters, digits or ._:~@+=- characters", name, maxOrderIDLen)
		}
		return s, nil
	}
	if numericID.Match(raw) {
		return string(raw), nil
	}
	return "", invalid(CodeOrderIDFormat, "%s must be a string", name)
}

// ValidOrderID reports whether id is an order id the gateway relays and
// tracks.
func ValidOrderID(id string) bool { return orderIDRE.MatchString(id) }

// Amount limits: Mokka's amounts are money in the store's currency, with
// at most two decimals. An amount of 10^12 or more is no shop's order.
const (
	maxAmountText   = 32 // characters of an amount as written
	maxAmountDigits = 12 // digits before the point
)

// amount reads an amount the way Mokka does: the value counts, not its
// spelling. A JSON string or number written as a plain decimal — "8300.00"
// (the SDKs), 51000.0 and 4999.0 (the docs' examples), 300 (the Bitrix
// plugin), "10.5" — is valid when its value has at most two decimals
// (10.500 has, 10.005 has not), is below 10^12 and, when positive is set,
// above zero. A sign, an exponent, a comma, spaces or leading zeros are
// refused: no Mokka client writes an amount so, and Mokka's own answer to
// them is not known. It returns the value with two decimals ("51000.00")
// for tracking; the body is sent as it is. It is never parsed as a float.
func amount(raw json.RawMessage, required, positive bool, code int, name string) (string, *ValidationError) {
	if isNull(raw) {
		if required {
			return "", invalid(code, "%s is missing", name)
		}
		return "", nil
	}
	text, ok := stringValue(raw)
	if !ok {
		text = string(raw) // a number; any other JSON value fails the pattern
	}
	if len(text) > maxAmountText || !amountRE.MatchString(text) {
		return "", invalid(code, "%s must be a decimal number such as \"8300.00\", 8300.0 or 300", name)
	}
	if whole, _, _ := strings.Cut(text, "."); len(whole) > maxAmountDigits {
		return "", invalid(code, "%s is too large (at most %d digits before the point)", name, maxAmountDigits)
	}
	d, err := decimal.NewFromString(text)
	if err != nil {
		return "", invalid(code, "%s must be a decimal number such as \"8300.00\", 8300.0 or 300", name)
	}
	if !d.Equal(d.Truncate(2)) {
		return "", invalid(code, "%s has more than two decimals", name)
	}
	if positive && !d.IsPositive() {
		return "", invalid(code, "%s must be more than 0", name)
	}
	return d.StringFixed(2), nil
}

// validTillLayouts are the forms of valid_till the gateway accepts: Mokka's
// documented dd.mm.yyyy hh:mm:ss+hh:mm, and RFC 3339, which it passes on
// as written for Mokka to judge.
var validTillLayouts = []string{validTillLayout, time.RFC3339}

func validTill(raw json.RawMessage, name string) *ValidationError {
	if isNull(raw) {
		return nil
	}
	s, ok := stringValue(raw)
	if !ok {
		return invalid(CodeTimeFormat, "%s must be a string dd.mm.yyyy hh:mm:ss+hh:mm", name)
	}
	for _, layout := range validTillLayouts {
		if _, err := time.Parse(layout, s); err == nil {
			return nil
		}
	}
	return invalid(CodeTimeFormat, "%s must look like 21.07.2018 12:08:01+03:00 (or RFC 3339: 2018-07-21T12:08:01+03:00)", name)
}

func requiredURL(raw json.RawMessage, code int, name string) *ValidationError {
	s, ok := stringValue(raw)
	if !ok || s == "" {
		return invalid(code, "%s is missing", name)
	}
	u, err := url.Parse(s)
	if err != nil || len(s) > maxURLLen || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return invalid(code, "%s must be an absolute http(s) URL", name)
	}
	return nil
}
