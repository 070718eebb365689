package apikey

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/unified"
)

// FuzzMapTransaction: whatever the bytes, MapTransaction never panics and
// returns either a *MapError or a transaction whose amounts are canonical
// decimal strings and whose timestamp is valid RFC 3339 that round-trips.
func FuzzMapTransaction(f *testing.F) {
	for _, seed := range []string{
		guideExample,
		`{"id":"T1","outlet_id":"o1","grand_total":150000.50,"created_at":"2025-12-26T23:30:00+09:00"}`,
		`{"id":1,"outlet_id":2,"grand_total":"1","tax_amount":"0.5","created_at":"2025-12-26 00:00:00",
		  "line_items":[{"item_name":"Teh Tarik 🍵","quantity":"1.5","price":"27500.50",
		  "modifiers":[{"name":"x","price":"1"}]}]}`,
		`{"id":"x","grand_total":"1e5","created_at":"bad"}`,
		`{"id":"x","outlet_id":"o","grand_total":"-0","subtotal":"9","created_at":"9998-12-31T23:59:59Z"}`,
		`{"id":"\u0000\ud800","outlet_id":"<&>","grand_total":"00000000000000000000000000000001"}`,
		`null`, `[]`, `{`, `"s"`,
	} {
		f.Add([]byte(seed))
	}
	loc, err := time.LoadLocation("Asia/Jayapura")
	if err != nil {
		f.Fatal(err)
	}
	m := MapContext{BusinessID: "biz", Location: loc}
	f.Fuzz(func(t *testing.T, data []byte) {
		tx, err := MapTransaction(json.RawMessage(data), m)
		if err != nil {
			var me *MapError
			if !errors.As(err, &me) {
				t.Fatalf("error %v is not a *MapError", err)
			}
			return
		}
		for _, d := range []unified.Decimal{tx.Amount, tx.Subtotal, tx.TaxAmount, tx.ServiceChargeAmount,
			tx.DiscountAmount, tx.RefundAmount} {
			checkDecimal(t, d)
		}
		for _, it := range tx.Items {
			for _, d := range []unified.Decimal{it.Quantity, it.UnitPrice, it.Total, it.DiscountAmount} {
				checkDecimal(t, d)
			}
			if !it.Total.Equal(it.Quantity.Mul(it.UnitPrice)) {
				t.Fatalf("total %s ≠ %s × %s", it.Total, it.Quantity, it.UnitPrice)
			}
			for _, mod := range it.Modifiers {
				checkDecimal(t, mod.Price)
			}
		}
		if tx.ExternalID == "" || tx.OutletID == "" {
			t.Fatalf("empty id or outlet: %+v", tx)
		}
		c, err := tx.Canonical()
		if err != nil {
			t.Fatalf("Canonical: %v", err)
		}
		var back struct {
			Timestamp    string `json:"timestamp"`
			BusinessDate string `json:"business_date"`
		}
		if err := json.Unmarshal(c, &back); err != nil {
			t.Fatalf("canonical JSON invalid: %v\n%s", err, c)
		}
		ts, err := time.Parse(time.RFC3339Nano, back.Timestamp)
		if err != nil || !ts.Equal(tx.Timestamp) {
			t.Fatalf("timestamp %q does not round-trip: %v", back.Timestamp, err)
		}
		if back.BusinessDate != tx.Timestamp.In(loc).Format("2006-01-02") {
			t.Fatalf("business_date %q for %s", back.BusinessDate, back.Timestamp)
		}
		again, err := tx.Canonical()
		if err != nil || string(again) != string(c) {
			t.Fatal("Canonical not deterministic")
		}
	})
}

func checkDecimal(t *testing.T, d unified.Decimal) {
	t.Helper()
	s := d.String()
	if err := unified.CheckDecimalText(s, 200); err != nil {
		t.Fatalf("amount %q is not a plain decimal: %v", s, err)
	}
	back, err := unified.ParseDecimal(s)
	if err != nil || back.String() != s || !back.Equal(d) {
		t.Fatalf("amount %q is not canonical", s)
	}
	if len(s) > 1 && (s[0] == '0' && s[1] != '.' || s[len(s)-1] == '0' && containsDot(s) || s == "-0") {
		t.Fatalf("amount %q is not canonical", s)
	}
}

func containsDot(s string) bool {
	for i := range len(s) {
		if s[i] == '.' {
			return true
		}
	}
	return false
}

// FuzzListPage runs the page decoder and the product mapper on any bytes
// (the seeds of wire's FuzzScanner, which holds the scanner itself to
// json.Valid): neither panics, and every item of a page that decodes is
// valid JSON.
func FuzzListPage(f *testing.F) {
	for _, seed := range []string{
		`{"data":[{"id":"a"},1,"s",null,true,false,[],{}],"next_cursor":"c"}`,
		`{"a":"\u00e9\n\"","b":-0.5e+10,"c":[[[]]],"d":{"e":{}}}`,
		`[1,2`, `{"a" 1}`, `01`, `1.`, `-`, `"\x"`, "\"\x01\"", ` {} `, `{}x`, `{"a":1,}`, `[1,]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		items, _, err := decodeListPage(data)
		if err == nil {
			for _, it := range items {
				if !json.Valid(it) {
					t.Fatalf("item %q of a valid page is not valid JSON", it)
				}
			}
		}
		_, _ = MapProduct(data, MapContext{BusinessID: "b"})
	})
}
