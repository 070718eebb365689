package checkout

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

const (
	cbURL  = `"callback_url":"https://shop.example/cb"`
	redURL = `"redirect_url":"https://shop.example/back"`
)

func TestValidate(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)
	for _, tc := range []struct {
		name, method, body string
		code               int
		order, amount      string
	}{
		// Anything that is not one JSON object: 10.
		{"empty", MethodStatus, ``, CodeJSON, "", ""},
		{"not json", MethodStatus, `order_id=1`, CodeJSON, "", ""},
		{"array", MethodStatus, `[{"order_id":"A"}]`, CodeJSON, "", ""},
		{"string", MethodStatus, `"A"`, CodeJSON, "", ""},
		{"truncated", MethodStatus, `{"order_id":"A"`, CodeJSON, "", ""},
		{"trailing data", MethodStatus, `{"order_id":"A"} x`, CodeJSON, "", ""},
		{"two objects", MethodStatus, `{"order_id":"A"}{"order_id":"B"}`, CodeJSON, "", ""},
		{"duplicate key", MethodStatus, `{"order_id":"A","order_id":"B"}`, CodeJSON, "", ""},
		{"nested duplicate key", MethodCheckout, `{` + cbURL + `,` + redURL + `,"current_order":{"order_id":"A","amount":"1.00","amount":"9.00"}}`, CodeJSON, "", ""},
		{"invalid utf-8", MethodStatus, "{\"order_id\":\"A\xff\"}", CodeJSON, "", ""},
		{"too deep", MethodStatus, deep, CodeJSON, "", ""},
		{"store_id in body", MethodStatus, `{"order_id":"A","store_id":"99"}`, CodeJSON, "", ""},
		{"signature in body", MethodStatus, `{"order_id":"A","signature":"x"}`, CodeJSON, "", ""},
		// order_id: 20 missing, 21 malformed.
		{"status ok", MethodStatus, `{"order_id":"FACTPRECHR152632"}`, CodeOK, "FACTPRECHR152632", ""},
		{"status numeric id", MethodStatus, `{"order_id":107356}`, CodeOK, "107356", ""},
		{"status no id", MethodStatus, `{}`, CodeOrderIDMissing, "", ""},
		{"status null id", MethodStatus, `{"order_id":null}`, CodeOrderIDMissing, "", ""},
		{"status empty id", MethodStatus, `{"order_id":""}`, CodeOrderIDMissing, "", ""},
		{"status id with slash", MethodStatus, `{"order_id":"a/b"}`, CodeOrderIDFormat, "", ""},
		{"status id too long", MethodStatus, `{"order_id":"` + strings.Repeat("x", 256) + `"}`, CodeOrderIDFormat, "", ""},
		{"status id object", MethodStatus, `{"order_id":{"x":1}}`, CodeOrderIDFormat, "", ""},
		{"status id float", MethodStatus, `{"order_id":1.5}`, CodeOrderIDFormat, "", ""},
		{"key case matters", MethodStatus, `{"Order_ID":"A"}`, CodeOrderIDMissing, "", ""},
		{"cancel ok", MethodCancel, `{"order_id":"sess1:5f0c"}`, CodeOK, "sess1:5f0c", ""},
		{"cancel no id", MethodCancel, `{"amount":"1.00"}`, CodeOrderIDMissing, "", ""},
		// Amounts: 30, prepayment 31.
		{"return ok", MethodReturn, `{"order_id":"R001233","amount":"2010.00"}`, CodeOK, "R001233", "2010.00"},
		{"return number two decimals", MethodReturn, `{"order_id":"R1","amount":2010.00}`, CodeOK, "R1", "2010.00"},
		// Issue 12: the value counts, not its spelling, as with Mokka
		// (the docs send 51000.0 and 4999.0, the Bitrix plugin 300).
		{"return one decimal", MethodReturn, `{"order_id":"R1","amount":"2010.0"}`, CodeOK, "R1", "2010.00"},
		{"return number one decimal", MethodReturn, `{"order_id":"R1","amount":4999.0}`, CodeOK, "R1", "4999.00"},
		{"return integer", MethodReturn, `{"order_id":"R1","amount":2010}`, CodeOK, "R1", "2010.00"},
		{"return integer string", MethodReturn, `{"order_id":"R1","amount":"300"}`, CodeOK, "R1", "300.00"},
		{"return trailing zeros", MethodReturn, `{"order_id":"R1","amount":10.500}`, CodeOK, "R1", "10.50"},
		{"return cents", MethodReturn, `{"order_id":"R1","amount":0.01}`, CodeOK, "R1", "0.01"},
		{"return largest", MethodReturn, `{"order_id":"R1","amount":"999999999999.99"}`, CodeOK, "R1", "999999999999.99"},
		{"return three decimals", MethodReturn, `{"order_id":"R1","amount":10.005}`, CodeAmountFormat, "", ""},
		{"return three decimals string", MethodReturn, `{"order_id":"R1","amount":"10.005"}`, CodeAmountFormat, "", ""},
		{"return float noise", MethodReturn, `{"order_id":"R1","amount":1.0000000000000002}`, CodeAmountFormat, "", ""},
		{"return zero", MethodReturn, `{"order_id":"R1","amount":0}`, CodeAmountFormat, "", ""},
		{"return zero string", MethodReturn, `{"order_id":"R1","amount":"0.00"}`, CodeAmountFormat, "", ""},
		{"return too large", MethodReturn, `{"order_id":"R1","amount":1000000000000}`, CodeAmountFormat, "", ""},
		{"return comma", MethodReturn, `{"order_id":"R1","amount":"2010,00"}`, CodeAmountFormat, "", ""},
		{"return negative", MethodReturn, `{"order_id":"R1","amount":"-1.00"}`, CodeAmountFormat, "", ""},
		{"return negative number", MethodReturn, `{"order_id":"R1","amount":-1}`, CodeAmountFormat, "", ""},
		{"return plus sign", MethodReturn, `{"order_id":"R1","amount":"+1.00"}`, CodeAmountFormat, "", ""},
		{"return exponent", MethodReturn, `{"order_id":"R1","amount":2.01e3}`, CodeAmountFormat, "", ""},
		{"return exponent string", MethodReturn, `{"order_id":"R1","amount":"2010E0"}`, CodeAmountFormat, "", ""},
		{"return point only", MethodReturn, `{"order_id":"R1","amount":"10."}`, CodeAmountFormat, "", ""},
		{"return no whole part", MethodReturn, `{"order_id":"R1","amount":".50"}`, CodeAmountFormat, "", ""},
		{"return spaces", MethodReturn, `{"order_id":"R1","amount":" 10.00"}`, CodeAmountFormat, "", ""},
		{"return empty string", MethodReturn, `{"order_id":"R1","amount":""}`, CodeAmountFormat, "", ""},
		{"return missing amount", MethodReturn, `{"order_id":"R1"}`, CodeAmountFormat, "", ""},
		{"return amount bool", MethodReturn, `{"order_id":"R1","amount":true}`, CodeAmountFormat, "", ""},
		{"return amount array", MethodReturn, `{"order_id":"R1","amount":[1]}`, CodeAmountFormat, "", ""},
		{"return leading zero", MethodReturn, `{"order_id":"R1","amount":"01.00"}`, CodeAmountFormat, "", ""},
		{"return huge text", MethodReturn, `{"order_id":"R1","amount":"1.` + strings.Repeat("0", 40) + `"}`, CodeAmountFormat, "", ""},
		{"finish ok", MethodFinish, `{"order_id":"R107356","amount":"6700.00","check_number":"ZDDS3123F"}`, CodeOK, "R107356", "6700.00"},
		{"finish no amount", MethodFinish, `{"order_id":"R107356","check_number":"Z"}`, CodeAmountFormat, "", ""},
		{"finish no id", MethodFinish, `{"amount":"6700.00"}`, CodeOrderIDMissing, "", ""},
		{"change ok", MethodChange, `{"order_id":"R1","amount":"59999.00","cart_items":[{"name":"x","price":1,"quantity":1}]}`, CodeOK, "R1", "59999.00"},
		{"change no cart", MethodChange, `{"order_id":"R1","amount":"59999.00"}`, CodeCartMissing, "", ""},
		{"change empty cart", MethodChange, `{"order_id":"R1","amount":"59999.00","cart_items":[]}`, CodeCartMissing, "", ""},
		{"change prepayment integer", MethodChange, `{"order_id":"R1","amount":"5.00","prepayment_amount":"1","cart_items":[{}]}`, CodeOK, "R1", "5.00"},
		{"change bad prepayment", MethodChange, `{"order_id":"R1","amount":"5.00","prepayment_amount":"1.001","cart_items":[{}]}`, CodePrepaymentFormat, "", ""},
		{"change valid_till rfc3339", MethodChange, `{"order_id":"R1","amount":5,"valid_till":"2030-07-21T12:08:01+03:00","cart_items":[{}]}`, CodeOK, "R1", "5.00"},
		{"change bad valid_till", MethodChange, `{"order_id":"R1","amount":"5.00","valid_till":"tomorrow","cart_items":[{}]}`, CodeTimeFormat, "", ""},
		{"schedule amount", MethodSchedule, `{"amount":"5000.00"}`, CodeOK, "", "5000.00"},
		{"schedule order", MethodSchedule, `{"order_id":"R1"}`, CodeOK, "R1", ""},
		{"schedule nothing", MethodSchedule, `{}`, CodeAmountFormat, "", ""},
		{"schedule number amount", MethodSchedule, `{"amount":5000}`, CodeOK, "", "5000.00"},
		{"schedule bad amount", MethodSchedule, `{"amount":"5000,00"}`, CodeAmountFormat, "", ""},
		{"limit", MethodLimit, `{"client":{"mobile_phone":"333000001"}}`, CodeOK, "", ""},
		{"limit not object", MethodLimit, `[]`, CodeJSON, "", ""},
		// Checkout: order, amounts, valid_till, URLs.
		{"checkout ok", MethodCheckout, `{` + cbURL + `,` + redURL + `,"current_order":{"order_id":"120R","amount":"51000.00","prepayment_amount":"1000.00","valid_till":"21.07.2018 12:08:01+03:00"}}`, CodeOK, "120R", "51000.00"},
		{"checkout seed example amount", MethodCheckout, `{` + cbURL + `,` + redURL + `,"current_order":{"order_id":"120R","amount":51000.0,"prepayment_amount":1000.0}}`, CodeOK, "120R", "51000.00"},
		{"checkout bitrix amount", MethodCheckout, `{` + cbURL + `,` + redURL + `,"current_order":{"order_id":"s1:5f0c","amount":300}}`, CodeOK, "s1:5f0c", "300.00"},
		{"checkout zero prepayment", MethodCheckout, `{` + cbURL + `,` + redURL + `,"current_order":{"order_id":"A","amount":"1.00","prepayment_amount":0.0}}`, CodeOK, "A", "1.00"},
		{"checkout zero amount", MethodCheckout, `{` + cbURL + `,` + redURL + `,"current_order":{"order_id":"A","amount":0.0}}`, CodeAmountFormat, "", ""},
		{"checkout valid_till rfc3339", MethodCheckout, `{` + cbURL + `,` + redURL + `,"current_order":{"order_id":"A","amount":1,"valid_till":"2018-07-21T12:08:01Z"}}`, CodeOK, "A", "1.00"},
		{"checkout valid_till rfc3339 fraction", MethodCheckout, `{` + cbURL + `,` + redURL + `,"current_order":{"order_id":"A","amount":1,"valid_till":"2018-07-21T12:08:01.5+07:00"}}`, CodeOK, "A", "1.00"},
		{"checkout no current_order", MethodCheckout, `{` + cbURL + `,` + redURL + `}`, CodeOrderIDMissing, "", ""},
		{"checkout no order id", MethodCheckout, `{` + cbURL + `,` + redURL + `,"current_order":{"amount":"1.00"}}`, CodeOrderIDMissing, "", ""},
		{"checkout no amount", MethodCheckout, `{` + cbURL + `,` + redURL + `,"current_order":{"order_id":"A"}}`, CodeAmountFormat, "", ""},
		{"checkout bad prepayment", MethodCheckout, `{` + cbURL + `,` + redURL + `,"current_order":{"order_id":"A","amount":"1.00","prepayment_amount":"-5"}}`, CodePrepaymentFormat, "", ""},
		{"checkout prepayment three decimals", MethodCheckout, `{` + cbURL + `,` + redURL + `,"current_order":{"order_id":"A","amount":"1.00","prepayment_amount":0.125}}`, CodePrepaymentFormat, "", ""},
		{"checkout bad valid_till", MethodCheckout, `{` + cbURL + `,` + redURL + `,"current_order":{"order_id":"A","amount":"1.00","valid_till":"21/07/2018 12:08"}}`, CodeTimeFormat, "", ""},
		{"checkout valid_till no zone", MethodCheckout, `{` + cbURL + `,` + redURL + `,"current_order":{"order_id":"A","amount":"1.00","valid_till":"21.07.2018 12:08:01"}}`, CodeTimeFormat, "", ""},
		{"checkout valid_till no seconds", MethodCheckout, `{` + cbURL + `,` + redURL + `,"current_order":{"order_id":"A","amount":"1.00","valid_till":"21.07.2018 12:08+03:00"}}`, CodeTimeFormat, "", ""},
		{"checkout valid_till bad day", MethodCheckout, `{` + cbURL + `,` + redURL + `,"current_order":{"order_id":"A","amount":"1.00","valid_till":"32.07.2018 12:08:01+03:00"}}`, CodeTimeFormat, "", ""},
		{"checkout valid_till number", MethodCheckout, `{` + cbURL + `,` + redURL + `,"current_order":{"order_id":"A","amount":"1.00","valid_till":1532164081}}`, CodeTimeFormat, "", ""},
		{"checkout no callback", MethodCheckout, `{` + redURL + `,"current_order":{"order_id":"A","amount":"1.00"}}`, CodeCallbackURLMissing, "", ""},
		{"checkout callback not url", MethodCheckout, `{"callback_url":"decision",` + redURL + `,"current_order":{"order_id":"A","amount":"1.00"}}`, CodeCallbackURLMissing, "", ""},
		{"checkout callback javascript", MethodCheckout, `{"callback_url":"javascript:alert(1)",` + redURL + `,"current_order":{"order_id":"A","amount":"1.00"}}`, CodeCallbackURLMissing, "", ""},
		{"checkout no redirect", MethodCheckout, `{` + cbURL + `,"current_order":{"order_id":"A","amount":"1.00"}}`, CodeRedirectURLMissing, "", ""},
		{"checkout redirect number", MethodCheckout, `{` + cbURL + `,"redirect_url":1,"current_order":{"order_id":"A","amount":"1.00"}}`, CodeRedirectURLMissing, "", ""},
		{"registration ok", MethodRegistration, `{` + cbURL + `,` + redURL + `,"primary_phone":"333000001","current_order":{"order_id":"119R"}}`, CodeOK, "119R", ""},
		{"registration no callback", MethodRegistration, `{` + redURL + `,"current_order":{"order_id":"119R"}}`, CodeCallbackURLMissing, "", ""},
		{"registration no redirect", MethodRegistration, `{` + cbURL + `,"current_order":{"order_id":"119R"}}`, CodeRedirectURLMissing, "", ""},
		{"registration no order", MethodRegistration, `{` + cbURL + `,` + redURL + `}`, CodeOrderIDMissing, "", ""},
		{"unknown method", "factoring/v1/other", `{}`, CodeNotFound, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := Validate(tc.method, []byte(tc.body))
			got := CodeOK
			if err != nil {
				got = err.Code
				if err.Detail == "" || Message(err.Code) == "" {
					t.Errorf("error without detail or message: %+v", err)
				}
			}
			if got != tc.code {
				t.Fatalf("code %d (%v), want %d", got, err, tc.code)
			}
			if err == nil && (req.OrderID != tc.order || req.Amount != tc.amount) {
				t.Errorf("request %+v, want order %q amount %q", req, tc.order, tc.amount)
			}
		})
	}
}

// Validation errors never repeat the input: it may hold personal data.
func TestValidateDetailHasNoInput(t *testing.T) {
	_, err := Validate(MethodCheckout, []byte(`{"primary_phone":"333123610","callback_url":"x","current_order":{"order_id":"A","amount":"1.00"}}`))
	if err == nil || strings.Contains(err.Detail, "333123610") || strings.Contains(err.Error(), "333123610") {
		t.Fatalf("err = %v", err)
	}
}

// trackedAmountRE is the form of every amount the gateway tracks.
var trackedAmountRE = regexp.MustCompile(`^(0|[1-9][0-9]{0,11})\.[0-9]{2}$`)

func FuzzValidate(f *testing.F) {
	for _, s := range []string{
		`{"order_id":"A","amount":"1.00"}`, `{"order_id":1}`, `{}`, `[]`, `{"a":{"b":[1,2,{"c":null}]}}`,
		`{"callback_url":"https://a/b","redirect_url":"http://c","current_order":{"order_id":"x","amount":"0.50","valid_till":"21.07.2018 12:08:01+03:00"}}`,
		`{"order_id":"A","order_id":"B"}`, `{"order_id":"\u00e9"}`, "{\"a\":\"\xff\"}", `{"cart_items":[{}],"order_id":"x","amount":1.00}`,
		`{"order_id":"A","amount":51000.0,"prepayment_amount":0}`, `{"order_id":"A","amount":"300"}`, `{"order_id":"A","amount":10.005}`,
		`{"order_id":"A","amount":1e3}`, `{"callback_url":"https://a/b","redirect_url":"http://c","current_order":{"order_id":"x","amount":4999.0,"valid_till":"2030-01-02T03:04:05Z"}}`,
	} {
		for _, m := range Methods {
			f.Add(m, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, method string, body []byte) {
		req, err := Validate(method, body)
		if err != nil {
			if Message(err.Code) == "" {
				t.Fatalf("code %d has no message", err.Code)
			}
			return
		}
		// Accepted: one JSON object, valid UTF-8, and what was learned is
		// well formed.
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) != nil {
			t.Fatalf("accepted a body that is not a JSON object: %q", body)
		}
		if _, ok := m["store_id"]; ok {
			t.Fatal("accepted store_id in the body")
		}
		if req.OrderID != "" && !ValidOrderID(req.OrderID) {
			t.Fatalf("accepted order id %q", req.OrderID)
		}
		// Whatever the tablet wrote, what is tracked has two decimals
		// and fits the limits; an amount (unlike a prepayment) is more
		// than zero.
		for _, a := range []string{req.Amount, req.Prepayment} {
			if a != "" && !trackedAmountRE.MatchString(a) {
				t.Fatalf("accepted amount %q", a)
			}
		}
		if req.Amount != "" && strings.Trim(req.Amount, "0.") == "" {
			t.Fatalf("accepted amount %q", req.Amount)
		}
		switch method {
		case MethodStatus, MethodCancel, MethodFinish, MethodReturn, MethodChange, MethodCheckout, MethodRegistration:
			if req.OrderID == "" {
				t.Fatalf("%s accepted without order_id: %q", method, body)
			}
		}
	})
}
