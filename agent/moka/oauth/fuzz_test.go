package oauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/pwbi/edge-agent/agent/moka/oauth/oauthfake"
	"github.com/pwbi/edge-agent/agent/unified"
)

// FuzzMapPaymentOAuth holds MapPayment to its contract on arbitrary input:
// no panic; a bad record is a *MapError; a mapped one has a valid status,
// canonical exact decimals (the amount equals total_collected's own text
// read as a decimal, never a float's rounding), subtotal = amount − tax −
// service charge, item totals = quantity × unit price, a timestamp RFC 3339
// can carry, and the same bytes every time.
func FuzzMapPaymentOAuth(f *testing.F) {
	f.Add([]byte(samplePayment))
	fake := oauthfake.New(oauthfake.Options{Seed: 9, Outlets: 3, Days: 9, TxPerDay: 4, Now: func() time.Time { return t0 }})
	for i, p := range fake.Payments("") {
		if i%7 == 0 {
			f.Add([]byte(p))
		}
	}
	for _, s := range []string{
		`{}`, `null`, `[]`, `{"id":1,"total_collected":1e5,"created_at":"2026-01-01T00:00:00Z"}`,
		`{"id":"a","outlet_id":"o","total_collected":0.1,"taxes":-0.3,"created_at":"2026-01-01T00:00:00.123456789+09:00","checkouts":[{"quantity":0.5,"price":3}]}`,
		`{"id":"a","total_collected":"  12.50 ","is_refunded":true,"created_at":"2026-01-01 10:00:00"}`,
	} {
		f.Add([]byte(s))
	}
	m := MapContext{BusinessID: "b", Currency: "IDR", Location: jakarta, DefaultOutletID: "o"}
	f.Fuzz(func(t *testing.T, raw []byte) {
		tx, err := MapPayment(raw, m)
		if err != nil {
			var me *MapError
			if !errors.As(err, &me) {
				t.Fatalf("error is not a MapError: %v", err)
			}
			return
		}
		if !json.Valid(raw) {
			t.Fatalf("mapped invalid JSON %q", raw)
		}
		if !tx.Status.Valid() || tx.ExternalID == "" || tx.OutletID == "" {
			t.Fatalf("bad record %+v", tx)
		}
		for _, d := range []unified.Decimal{tx.Amount, tx.Subtotal, tx.TaxAmount, tx.ServiceChargeAmount, tx.DiscountAmount, tx.RefundAmount} {
			checkCanonical(t, d)
		}
		if tx.TaxAmount.Sign() < 0 || tx.ServiceChargeAmount.Sign() < 0 || tx.DiscountAmount.Sign() < 0 || tx.RefundAmount.Sign() < 0 {
			t.Fatalf("negative magnitude %+v", tx)
		}
		if !tx.Subtotal.Equal(tx.Amount.Sub(tx.TaxAmount).Sub(tx.ServiceChargeAmount)) {
			t.Fatal("subtotal")
		}
		for _, it := range tx.Items {
			checkCanonical(t, it.Quantity)
			checkCanonical(t, it.UnitPrice)
			if !it.Total.Equal(it.Quantity.Mul(it.UnitPrice)) {
				t.Fatal("item total")
			}
		}
		// Exactness: total_collected, read independently, is the amount.
		var top map[string]json.RawMessage
		if json.Unmarshal(raw, &top) == nil {
			if lit := string(bytes.Trim(bytes.TrimSpace(top["total_collected"]), `"`)); lit != "" && lit != "null" {
				lit = strings.TrimSpace(lit)
				if want, err := decimal.NewFromString(lit); err == nil && !strings.ContainsAny(lit, "eE") && !tx.Amount.Dec().Equal(want) {
					t.Fatalf("amount %s from %s", tx.Amount, lit)
				}
			}
		}
		a, err := tx.Canonical()
		if err != nil {
			t.Fatalf("canonical: %v", err)
		}
		tx2, err := MapPayment(raw, m)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := tx2.Canonical()
		if !bytes.Equal(a, b) {
			t.Fatal("not deterministic")
		}
	})
}

func checkCanonical(t *testing.T, d unified.Decimal) {
	t.Helper()
	s := d.String()
	back, err := unified.ParseDecimal(s)
	if err != nil || !back.Equal(d) || strings.ContainsAny(s, "eE+") {
		t.Fatalf("decimal %q not canonical", s)
	}
}

// FuzzPaymentsPage holds the page decoder, which decodes the payments in
// the same pass, to the plain path: a page it accepts is valid JSON, and
// every payment maps exactly as MapPayment maps its raw bytes alone.
func FuzzPaymentsPage(f *testing.F) {
	fake := oauthfake.New(oauthfake.Options{Seed: 5, Outlets: 1, Days: 2, TxPerDay: 3, Now: func() time.Time { return t0 }})
	var page []byte
	page = append(page, `{"data":{"payments":[`...)
	for i, p := range fake.Payments("") {
		if i > 0 {
			page = append(page, ',')
		}
		page = append(page, p...)
	}
	page = append(page, `],"next_url":"https://x/y?since=1","completed":false}}`...)
	f.Add(page)
	f.Add([]byte(`{"data":{"payments":[1,{"id":2},null],"completed":true}}`))
	f.Add([]byte(`{"data":{"payments":null}}`))
	m := MapContext{BusinessID: "b", Location: jakarta, DefaultOutletID: "o"}
	f.Fuzz(func(t *testing.T, body []byte) {
		items, decoded, _, _, err := decodePaymentsPageDecoded(body)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error not a bad response: %v", err)
			}
			return
		}
		if !json.Valid(body) || len(items) != len(decoded) {
			t.Fatalf("accepted %q", body)
		}
		p := PaymentPage{Payments: items, decoded: decoded}
		_ = p.MapPayments(m, func(raw json.RawMessage, got unified.Transaction, gotErr error) error {
			want, wantErr := MapPayment(raw, m)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("page path %v, alone %v for %s", gotErr, wantErr, raw)
			}
			if gotErr != nil {
				return nil
			}
			a, _ := got.Canonical()
			b, _ := want.Canonical()
			if !bytes.Equal(a, b) {
				t.Fatalf("page path %s, alone %s", a, b)
			}
			return nil
		})
	})
}

// FuzzMapRefund holds MapRefund to its contract on arbitrary input: no
// panic; a bad refund row is a *MapError; a refund row has an id, a
// parent other than itself, a canonical non-negative amount, and is never
// a sale (MapPayment refuses it on parent_payment_id); the same input
// always gives the same refund.
func FuzzMapRefund(f *testing.F) {
	for _, s := range []string{
		`{"id":"r1","parent_payment_id":"p1","refund_amount":1500.5,"refund_type":"partial","created_at":"2026-03-10T10:00:00.000+07:00"}`,
		`{"id":7,"parent_payment_id":6,"total_collected":-72650.5395}`,
		`{"id":7,"parent_payment_id":6,"payment_refunds":[{"refund_amount":-3,"refund_type":"partial"},{"refund_amount":"4"}]}`,
		`{"id":7,"parent_payment_id":7}`, `{"parent_payment_id":1}`, `{"id":1,"parent_payment_id":{}}`, `[]`, `{}`,
	} {
		f.Add([]byte(s))
	}
	m := MapContext{BusinessID: "b", Currency: "IDR", Location: jakarta, DefaultOutletID: "o"}
	f.Fuzz(func(t *testing.T, raw []byte) {
		parent, rf, ok, err := MapRefund(raw)
		if err != nil {
			var me *MapError
			if !errors.As(err, &me) {
				t.Fatalf("error is not a MapError: %v", err)
			}
			return
		}
		if !ok {
			return
		}
		if rf.ID == "" || parent == "" || parent == rf.ID {
			t.Fatalf("refund %q of %q", rf.ID, parent)
		}
		checkCanonical(t, rf.Amount)
		if rf.Amount.Sign() < 0 {
			t.Fatalf("negative refund %s", rf.Amount)
		}
		var me *MapError
		if _, err := MapPayment(raw, m); !errors.As(err, &me) || me.Field != "parent_payment_id" {
			t.Fatalf("a refund row mapped as a sale: %v", err)
		}
		p2, rf2, ok2, err2 := MapRefund(raw)
		if err2 != nil || !ok2 || p2 != parent || rf2.ID != rf.ID || !rf2.Amount.Equal(rf.Amount) || rf2.Partial != rf.Partial || !rf2.At.Equal(rf.At) {
			t.Fatal("not deterministic")
		}
	})
}
