package mokkafake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Mokka methods.
const (
	mRegistration = "factoring/v1/limit/auth"
	mCheckout     = "factoring/v1/precheck/auth"
	mFinish       = "factoring/v1/precheck/finish"
	mLimit        = "api/external/v1/client/limit"
	mStatus       = "factoring/v1/status"
	mSchedule     = "factoring/v1/schedule"
	mChange       = "factoring/v1/precheck/change"
	mCancel       = "factoring/v1/precheck/cancel"
	mReturn       = "factoring/v1/return"
)

func isMethod(m string) bool {
	return slices.Contains([]string{mRegistration, mCheckout, mFinish, mLimit, mStatus, mSchedule, mChange, mCancel, mReturn}, m)
}

// Mokka codes (the seed's table).
const (
	codeOK                = 0
	codeJSON              = 10
	codeOrderIDMissing    = 20
	codeOrderIDFormat     = 21
	codeOrderExists       = 22
	codeOrderExpired      = 23
	codeOrderNotFound     = 24
	codeAmountFormat      = 30
	codePrepaymentFormat  = 31
	codeAmountDiffers     = 32
	codeOutsideLimits     = 33
	codeTermWrong         = 34
	codePrepaymentWrong   = 35
	codeCallbackMissing   = 40
	codeRedirectMissing   = 41
	codeStoreIDMissing    = 50
	codeStoreNotFound     = 51
	codeSignatureMissing  = 60
	codeSignatureWrong    = 61
	codeFileError         = 62
	codeNotEnoughLimit    = 71
	codeCannotFinish      = 80
	codeCannotCancel      = 81
	codeCannotChange      = 82
	codeCartMissing       = 90
	codeServer            = 100
	codeTimeFormat        = 110
	codeNotFound          = 404
	minOrderCents         = 100         // 1.00: the fake's tariff limits (code 33)
	maxOrderCents         = 100_000_000 // 1,000,000.00
	defaultValidity       = 24 * time.Hour
	validTillLayout       = "02.01.2006 15:04:05-07:00"
	scheduleDateLayout    = "2006-01-02"
	maxOrderIDLen         = 255
	defaultTerm           = 3
	monthlyOverpaymentPct = 0
)

var codeMessages = map[int]string{
	codeOK: "Payload valid", codeJSON: "JSON decode error", codeOrderIDMissing: "order_id missing",
	codeOrderIDFormat: "Wrong order_id format", codeOrderExists: "Order exists", codeOrderExpired: "Order expired",
	codeOrderNotFound: "Order with specified ID not found", codeAmountFormat: "Wrong order amount format",
	codePrepaymentFormat: "Wrong order prepayment amount format",
	codeAmountDiffers:    "Order amount is different from the amount specified before",
	codeOutsideLimits:    "Order amount is outside of tariff limits", codeTermWrong: "Order term value is wrong",
	codePrepaymentWrong: "Order prepayment amount is wrong", codeCallbackMissing: "Order callback_url missing",
	codeRedirectMissing: "Order redirect_url missing", codeStoreIDMissing: "Store ID is missing",
	codeStoreNotFound: "Store not found", codeSignatureMissing: "Signature missing", codeSignatureWrong: "Signature wrong",
	codeFileError: "Error saving file", codeNotEnoughLimit: "Client has not enough limit",
	codeCannotFinish: "Unable to finish – order is already finished / canceled",
	codeCannotCancel: "Unable to cancel – order is already finished / canceled",
	codeCannotChange: "Unable to change – order is already finished / canceled",
	codeCartMissing:  "Cart items are missing", codeServer: "At the moment, the server cannot process your request",
	codeTimeFormat: "Invalid time format value", codeNotFound: "Not found",
}

type answer struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

func mokkaError(code int) answer { return answer{Status: code, Message: codeMessages[code]} }

// codeOf returns the Mokka code of an answer body.
func codeOf(v any) int {
	switch a := v.(type) {
	case answer:
		return a.Status
	case map[string]any:
		if st, ok := a["status"].(int); ok {
			return st
		}
		if meta, ok := a["meta"].(answer); ok {
			return meta.Status
		}
	}
	return -1
}

func ok(fields map[string]any) map[string]any {
	fields["status"] = codeOK
	fields["message"] = codeMessages[codeOK]
	return fields
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"status":100}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b) //nolint:errcheck // the client went away
}

// order is one order (or registration) at the fake Mokka.
type order struct {
	id           string
	registration bool
	status       string // pending, hold, finished, canceled, expired, declined, refunded
	decision     string // "", approved, declined
	amount       int64  // cents
	prepayment   int64
	returned     int64
	term         int
	validTill    time.Time
	phone        string // digits, as given in the request (primary_phone)
	email        string
	firstName    string
	surname      string
	callbackURL  string
	redirectURL  string
	token        string
	checkNumber  string
	receipt      []byte
	createdAt    time.Time
	completed    bool
}

// client is a customer known to Mokka (registered or who bought).
type client struct {
	limit  int64 // cents
	used   int64
	status string // active, inactive
}

// Outcome of a phone number (the seed's special test numbers).
type outcome struct {
	decision string // approved, declined
	status   string // the order status after the form: hold or declined
	limit    int64  // cents; -1 means the default
	inactive bool
}

// phoneOutcome applies the seed's test numbers: 333 XXX 610 blocked,
// 333 XXX 630 not enough limit, 333 XXX 681 overdue, other 333 numbers
// accepted; the older docs' 888 221 XXXX numbers are refused at
// registration, other 888 numbers accepted. Anything else is accepted.
func phoneOutcome(phone string) outcome {
	d := digits(phone)
	switch {
	case strings.HasPrefix(d, "333") && strings.HasSuffix(d, "610"):
		return outcome{decision: "declined", status: "declined", limit: 0, inactive: true}
	case strings.HasPrefix(d, "333") && strings.HasSuffix(d, "630"):
		// Approved, with a limit too small for any real order.
		return outcome{decision: "approved", status: "hold", limit: 100}
	case strings.HasPrefix(d, "333") && strings.HasSuffix(d, "681"):
		return outcome{decision: "declined", status: "declined", limit: 0, inactive: true}
	case strings.HasPrefix(d, "888221"):
		return outcome{decision: "declined", status: "declined", limit: 0, inactive: true}
	}
	return outcome{decision: "approved", status: "hold", limit: -1}
}

// digits returns the national number in s: its digits, without a country
// code in front of a 333 test number (+40, +48, +359) or of an 888 number
// (+7).
func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	d := b.String()
	switch {
	case len(d) > 9 && strings.HasPrefix(d[len(d)-9:], "333"):
		return d[len(d)-9:]
	case len(d) == 11 && strings.HasPrefix(d, "7888"):
		return d[1:]
	}
	return d
}

var (
	amountRE  = regexp.MustCompile(`^(0|[1-9][0-9]{0,11})(\.[0-9]+)?$`)
	orderIDRE = regexp.MustCompile(`^[^\x00-\x1f\x7f]{1,255}$`)
)

// validTillLayouts: Mokka's documented dd.mm.yyyy hh:mm:ss+hh:mm, and RFC
// 3339.
var validTillLayouts = []string{validTillLayout, time.RFC3339}

func parseValidTill(s string) (time.Time, bool) {
	for _, l := range validTillLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// parseCents reads an amount into cents. Like Mokka, it looks at the
// value, not the spelling: "8300.00", "8300.0" and "8300" are all 8300.00;
// a value with more than two decimals ("10.005") is not an amount.
func parseCents(s string) (int64, bool) {
	if len(s) > 32 || !amountRE.MatchString(s) {
		return 0, false
	}
	d, err := decimal.NewFromString(s)
	if err != nil || !d.Equal(d.Truncate(2)) {
		return 0, false
	}
	return d.Shift(2).IntPart(), true
}

func cents(c int64) string { return fmt.Sprintf("%d.%02d", c/100, c%100) }

// amountField reads an amount sent as a string ("8300.00") or a number
// (51000.0, 300). present is false when the field is absent or null.
func amountField(raw json.RawMessage) (c int64, present, valid bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false, false
	}
	var s string
	if raw[0] == '"' {
		if json.Unmarshal(raw, &s) != nil {
			return 0, true, false
		}
	} else {
		s = string(raw)
	}
	c, valid = parseCents(s)
	return c, true, valid
}

func str(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// orderIDField reads an order id (a string, or a whole number).
func orderIDField(raw json.RawMessage) (string, int) {
	if len(raw) == 0 || string(raw) == "null" || string(raw) == `""` {
		return "", codeOrderIDMissing
	}
	if raw[0] == '"' {
		s := str(raw)
		if !orderIDRE.MatchString(s) || len(s) > maxOrderIDLen {
			return "", codeOrderIDFormat
		}
		return s, codeOK
	}
	if regexp.MustCompile(`^[0-9]{1,255}$`).Match(raw) {
		return string(raw), codeOK
	}
	return "", codeOrderIDFormat
}

func obj(raw json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

func urlField(raw json.RawMessage) (string, bool) {
	s := str(raw)
	u, err := url.Parse(s)
	return s, s != "" && err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// readMultipart reads a Finish: the "body" field and the "check" file.
func readMultipart(b []byte, boundary string) (body, receipt []byte, ok bool) {
	if boundary == "" {
		return nil, nil, false
	}
	mr := multipart.NewReader(bytes.NewReader(b), boundary)
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, false
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, nil, false
		}
		switch p.FormName() {
		case "body":
			body = data
		case "check":
			receipt = data
		}
	}
	return body, receipt, body != nil
}

// call runs one authenticated API call.
func (s *Server) call(method string, body, receipt []byte, contentType string) any {
	var top map[string]json.RawMessage
	if !json.Valid(body) || json.Unmarshal(body, &top) != nil || top == nil {
		return mokkaError(codeJSON)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	switch method {
	case mRegistration, mCheckout:
		return s.authLocked(method, top, now)
	case mLimit:
		c := obj(top["client"])
		phone := digits(str(c["mobile_phone"]))
		if c == nil || phone == "" {
			return mokkaError(codeJSON)
		}
		view := map[string]any{"mobile_phone": phone, "limit_amount": "0.00", "status": "new"}
		if cl := s.clients[phone]; cl != nil {
			view["limit_amount"] = cents(max(cl.limit-cl.used, 0))
			view["status"] = cl.status
		} else if oc := phoneOutcome(phone); oc.inactive {
			view["status"] = "inactive"
		}
		return map[string]any{"meta": answer{Status: codeOK, Message: codeMessages[codeOK]}, "client": view}
	case mSchedule:
		amt, present, valid := amountField(top["amount"])
		if id, code := orderIDField(top["order_id"]); code == codeOK && !present {
			o := s.orders[id]
			if o == nil || o.registration {
				return mokkaError(codeOrderNotFound)
			}
			amt, present, valid = o.amount, true, true
		}
		if !present || !valid {
			return mokkaError(codeAmountFormat)
		}
		if amt < minOrderCents || amt > maxOrderCents {
			return mokkaError(codeOutsideLimits)
		}
		var plans []map[string]any
		for _, term := range []int{3, 6} {
			plans = append(plans, map[string]any{
				"total": json.Number(cents(amt)), "monthly_payment": json.Number(cents(ceilDiv(amt, int64(term)))),
				"monthly_overpayment": json.Number("0.00"), "term": term, "payment_dates": schedule(amt, term, now),
			})
		}
		return ok(map[string]any{"payment_schedule": plans})
	}

	// The order methods.
	id, code := orderIDField(top["order_id"])
	if code != codeOK {
		return mokkaError(code)
	}
	o := s.orders[id]
	if o == nil || o.registration {
		return mokkaError(codeOrderNotFound)
	}
	s.expireLocked(o, now)
	switch method {
	case mStatus:
		var decision any
		if o.decision != "" {
			decision = o.decision
		}
		return ok(map[string]any{"current_order": map[string]any{
			"order_id": o.id, "expired": !now.Before(o.validTill), "status": o.status, "decision": decision,
			"amount": json.Number(cents(o.amount)), "term": o.term,
		}})
	case mCancel:
		if o.status != "pending" && o.status != "hold" {
			return mokkaError(codeCannotCancel)
		}
		s.releaseLocked(o)
		o.status = "canceled"
		return ok(map[string]any{})
	case mFinish:
		amt, present, valid := amountField(top["amount"])
		switch {
		case !present || !valid:
			return mokkaError(codeAmountFormat)
		case o.status == "expired":
			// Finishing an expired order cancels it (seed, Finish).
			s.releaseLocked(o)
			o.status = "canceled"
			return mokkaError(codeOrderExpired)
		case o.status != "hold":
			return mokkaError(codeCannotFinish)
		case amt != o.amount:
			return mokkaError(codeAmountDiffers)
		case strings.HasPrefix(contentType, "multipart/") && len(receipt) == 0:
			return mokkaError(codeFileError)
		}
		o.status = "finished"
		o.checkNumber = str(top["check_number"])
		o.receipt = receipt
		return ok(map[string]any{})
	case mChange:
		amt, present, valid := amountField(top["amount"])
		var items []json.RawMessage
		switch {
		case !present || !valid:
			return mokkaError(codeAmountFormat)
		case json.Unmarshal(top["cart_items"], &items) != nil || len(items) == 0:
			return mokkaError(codeCartMissing)
		case o.status != "hold" && o.status != "pending":
			return mokkaError(codeCannotChange)
		case amt < minOrderCents || amt > maxOrderCents:
			return mokkaError(codeOutsideLimits)
		}
		if cl := s.clients[o.phone]; cl != nil && o.status == "hold" {
			if cl.used-o.amount+amt > cl.limit {
				return mokkaError(codeNotEnoughLimit)
			}
			cl.used += amt - o.amount
		}
		o.amount = amt
		if raw := top["valid_till"]; len(raw) > 0 && string(raw) != "null" {
			t, ok := parseValidTill(str(raw))
			if !ok {
				return mokkaError(codeTimeFormat)
			}
			o.validTill = t
		}
		return ok(map[string]any{"schedule": schedule(o.amount, o.term, now)})
	case mReturn:
		amt, present, valid := amountField(top["amount"])
		switch {
		case !present || !valid || amt <= 0:
			return mokkaError(codeAmountFormat)
		case o.status != "finished":
			// Only a finalized order can be returned; Cancel the others.
			return mokkaError(codeServer)
		case o.returned+amt > o.amount:
			return mokkaError(codeAmountDiffers)
		}
		o.returned += amt
		if cl := s.clients[o.phone]; cl != nil {
			cl.used = max(cl.used-amt, 0)
		}
		if o.returned == o.amount {
			o.status = "refunded"
		}
		return ok(map[string]any{})
	}
	return mokkaError(codeServer)
}

// authLocked is Registration and Checkout: check, create the order, give
// the form's URL.
func (s *Server) authLocked(method string, top map[string]json.RawMessage, now time.Time) any {
	cur := obj(top["current_order"])
	if cur == nil {
		return mokkaError(codeOrderIDMissing)
	}
	id, code := orderIDField(cur["order_id"])
	if code != codeOK {
		return mokkaError(code)
	}
	o := &order{id: id, registration: method == mRegistration, status: "pending", term: defaultTerm, createdAt: now,
		validTill: now.Add(defaultValidity)}
	if method == mCheckout {
		amt, present, valid := amountField(cur["amount"])
		if !present || !valid {
			return mokkaError(codeAmountFormat)
		}
		pre, present, valid := amountField(cur["prepayment_amount"])
		if present && !valid {
			return mokkaError(codePrepaymentFormat)
		}
		if amt < minOrderCents || amt > maxOrderCents {
			return mokkaError(codeOutsideLimits)
		}
		if pre > amt {
			return mokkaError(codePrepaymentWrong)
		}
		if raw := cur["term"]; len(raw) > 0 && string(raw) != "null" {
			var term int
			if json.Unmarshal(raw, &term) != nil || (term != 3 && term != 6 && term != 12) {
				return mokkaError(codeTermWrong)
			}
			o.term = term
		}
		if raw := cur["valid_till"]; len(raw) > 0 && string(raw) != "null" {
			t, ok := parseValidTill(str(raw))
			if !ok {
				return mokkaError(codeTimeFormat)
			}
			o.validTill = t
		}
		o.amount, o.prepayment = amt, pre
	}
	var urlOK bool
	if o.callbackURL, urlOK = urlField(top["callback_url"]); !urlOK {
		return mokkaError(codeCallbackMissing)
	}
	if o.redirectURL, urlOK = urlField(top["redirect_url"]); !urlOK {
		return mokkaError(codeRedirectMissing)
	}
	o.phone = digits(str(top["primary_phone"]))
	o.email = str(top["primary_email"])
	if person := obj(top["person"]); person != nil {
		o.firstName, o.surname = str(person["first_name"]), str(person["surname"])
	}
	if prev := s.orders[id]; prev != nil {
		if prev.completed || prev.registration != o.registration {
			return mokkaError(codeOrderExists)
		}
		// The same order asked again before the customer decided: a new
		// form for the new details.
		delete(s.byToken, prev.token)
	}
	o.token = newToken()
	s.orders[id] = o
	s.byToken[o.token] = o
	if d := s.opts.AutoComplete; d > 0 {
		s.timers = append(s.timers, time.AfterFunc(d, func() {
			if _, err := s.Complete(id, ""); err != nil {
				s.log.Warn("Fake Mokka auto-complete failed", "order_id", id, "err", err)
			}
		}))
	}
	return ok(map[string]any{"iframe_url": s.baseURLLocked() + "/form/v1/" + o.token})
}

func (s *Server) baseURLLocked() string {
	if u := s.web.URL(); u != "" {
		return u
	}
	return "http://mokka.invalid"
}

// expireLocked moves a held or pending order past its valid_till to
// expired, and gives back the customer's limit.
func (s *Server) expireLocked(o *order, now time.Time) {
	if (o.status == "hold" || o.status == "pending") && !now.Before(o.validTill) {
		s.releaseLocked(o)
		o.status = "expired"
	}
}

// releaseLocked gives back the limit a held order used.
func (s *Server) releaseLocked(o *order) {
	if o.status != "hold" {
		return
	}
	if cl := s.clients[o.phone]; cl != nil {
		cl.used = max(cl.used-o.amount, 0)
	}
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// schedule splits amount into term monthly payments (the last one takes
// the rounding), starting a month from now.
func schedule(amount int64, term int, now time.Time) []map[string]any {
	if term <= 0 {
		term = defaultTerm
	}
	out := []map[string]any{}
	per := amount / int64(term)
	for i := 0; i < term; i++ {
		a := per
		if i == term-1 {
			a = amount - per*int64(term-1)
		}
		out = append(out, map[string]any{
			"date":   now.AddDate(0, i+1, 0).Format(scheduleDateLayout),
			"amount": json.Number(cents(a)),
		})
	}
	return out
}
