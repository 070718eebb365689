package jurnalfake

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jonboulle/clockwork"
	"github.com/shopspring/decimal"
)

// serve runs one signed request through the handler, without a network.
func serve(s *Server, method, path string, body []byte, mutate func(*http.Request)) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, APIPrefix+path, bytes.NewReader(body))
	sign(req, body, s.ClientID(), s.ClientSecret(), t0)
	if mutate != nil {
		mutate(req)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func fuzzServer() *Server {
	return NewUnstarted(Options{Clock: clockwork.NewFakeClockAt(t0), Products: []Product{
		{Name: "Es Kopi Susu", Code: "KOPI-01", SellPrice: decimal.NewFromInt(25000)},
		{Name: "Croissant", Code: "PAS-02", SellPrice: decimal.NewFromInt(18500)},
	}})
}

// FuzzCreateInvoice feeds arbitrary bodies to POST /sales_invoices: the
// fake answers 201, 400, 409 or 422 with a JSON object, never panics, and
// an invoice it keeps has exact, consistent amounts.
func FuzzCreateInvoice(f *testing.F) {
	for _, seed := range []string{
		`{"sales_invoice":{"transaction_date":"2026-09-16","person_name":"Pelanggan Umum","custom_id":"moka-1-p1","memo":"ok","tags":["A"],"transaction_lines_attributes":[{"product_code":"KOPI-01","quantity":2,"rate":25000,"discount":10,"line_tax_name":"PB1"}]}}`,
		`{"sales_invoice":{"transaction_date":"16/09/2026","person_name":"pelanggan umum","custom_id":"x#1","tags":"A, B","deposit":"100","deposit_to_name":"Kas","transaction_lines_attributes":[{"product_name":"croissant","quantity":"0.333","rate":"18500.555"}]}}`,
		`{"sales_invoice":{"transaction_date":"2026-02-30","memo":"☕","transaction_lines_attributes":[{"quantity":1e5,"rate":-1,"discount":101}]}}`,
		`{"sales_invoice":{"transaction_lines_attributes":[{"quantity":"NaN","rate":"1,000"}]}}`,
		`{"sales_invoice":null}`, `[]`, `{"sales_invoice":{"tags":[1]}}`, ``, `{`,
	} {
		f.Add([]byte(seed))
	}
	s := fuzzServer()
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(s.Invoices()) > 100 { // keep iterations fast; 409s need only a few
			s.Reset()
		}
		before := len(s.Invoices())
		rec := serve(s, http.MethodPost, "sales_invoices", body, nil)
		switch rec.Code {
		case http.StatusCreated, http.StatusBadRequest, http.StatusConflict, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		var answer map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("answer is not a JSON object: %v: %s", err, rec.Body)
		}
		invs := s.Invoices()
		if rec.Code != http.StatusCreated {
			if len(invs) != before {
				t.Fatalf("answer %d but an invoice was kept", rec.Code)
			}
			return
		}
		if len(invs) != before+1 {
			t.Fatalf("201 but %d invoices (had %d)", len(invs), before)
		}
		inv := invs[len(invs)-1]
		sub, tax := decimal.Zero, decimal.Zero
		for _, l := range inv.Lines {
			if !l.Amount.Equal(l.Amount.Round(2)) || !l.Tax.Equal(l.Tax.Round(2)) {
				t.Fatalf("line amounts not in cents: %v %v", l.Amount, l.Tax)
			}
			sub, tax = sub.Add(l.Amount), tax.Add(l.Tax)
		}
		if !sub.Equal(inv.Subtotal) || !tax.Equal(inv.Tax) || !inv.Total.Equal(sub.Add(tax)) ||
			!inv.Remaining.Equal(inv.Total.Sub(inv.Paid)) || inv.Remaining.IsNegative() {
			t.Fatalf("inconsistent invoice %+v", inv)
		}
		if got := answer["sales_invoice"].(map[string]any)["original_amount"]; got != money(inv.Total) {
			t.Fatalf("answer total %v, kept %v", got, inv.Total)
		}
	})
}

// FuzzAuthorization feeds arbitrary Authorization and Date headers: only
// the correctly signed request is let through.
func FuzzAuthorization(f *testing.F) {
	s := fuzzServer()
	good := httptest.NewRequest(http.MethodGet, APIPrefix+"products?q=a", nil)
	sign(good, nil, s.ClientID(), s.ClientSecret(), t0)
	f.Add(good.Header.Get("Authorization"), good.Header.Get("Date"))
	f.Add(`hmac username="jurnal-test-client", algorithm="hmac-sha256", headers="request-line date", signature="AAAA"`, good.Header.Get("Date"))
	f.Add(`HMAC username="a,b", signature="=="`, "Mon, 02 Jan 2006 15:04:05 GMT")
	f.Add(`hmac username=""", headers="date`, "")
	f.Fuzz(func(t *testing.T, auth, date string) {
		rec := serve(s, http.MethodGet, "products?q=a", nil, func(r *http.Request) {
			r.Header.Set("Authorization", auth)
			r.Header.Set("Date", date)
		})
		switch rec.Code {
		case http.StatusOK:
			if auth != good.Header.Get("Authorization") && !equivalentAuth(auth, good.Header.Get("Authorization")) {
				t.Fatalf("let through %q / %q", auth, date)
			}
		case http.StatusUnauthorized:
		default:
			t.Fatalf("status %d for %q / %q", rec.Code, auth, date)
		}
	})
}

// equivalentAuth: the same username and signature, however written.
func equivalentAuth(a, b string) bool {
	fa, oka := parseHMAC(a)
	fb, okb := parseHMAC(b)
	return oka && okb && fa.username == fb.username && fa.signature == fb.signature
}
