package jurnalsink

import (
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/pwbi/edge-agent/agent/unified"
)

func TestCustomIDSafe(t *testing.T) {
	for _, c := range []struct {
		outlet string
		parts  []string
		want   string
	}{
		{"outlet_456", []string{"MOK123"}, "moka-outlet_456-MOK123"},
		{"o1", []string{"A#1"}, "moka-o1-A~231"},
		{"o 1", []string{"a/b", "ret", "25000.5"}, "moka-o~201-a~2Fb-ret-25000.5"},
		{"o1", []string{"x~y"}, "moka-o1-x~7Ey"},
	} {
		if got := CustomID(c.outlet, c.parts...); got != c.want {
			t.Errorf("CustomID(%q, %q) = %q, want %q", c.outlet, c.parts, got, c.want)
		}
	}
	if CustomID("o", "a#") == CustomID("o", "a~23") {
		t.Error("two ids collide")
	}
}

func TestClip(t *testing.T) {
	if got := clip("Kopi ☕ Susu 😀", 255); got != "Kopi  Susu" {
		t.Errorf("clip = %q: emoji must go (Jurnal refuses them)", got)
	}
	if got := clip(strings.Repeat("é", 300), 255); len([]rune(got)) != 255 {
		t.Errorf("clip kept %d characters, want 255", len([]rune(got)))
	}
}

func dec(s string) unified.Decimal { return unified.MustDecimal(s) }

// TestSaleLinesExact: the lines of a sale add up to its amount to the
// rupiah, whatever its discounts, quantities and rounding: a discount
// folded into the rate when exact, else one unit; an order discount taken
// off the largest lines; a rounding line when short; no negative rate.
func TestSaleLinesExact(t *testing.T) {
	tx := unified.Transaction{
		Amount: dec("100000"), TaxAmount: dec("9091"), ServiceChargeAmount: dec("0"),
		Items: []unified.Item{
			{Name: "Kopi", Quantity: dec("3"), UnitPrice: dec("25000"), Total: dec("75000"), DiscountAmount: dec("10000")}, // 65000 / 3: not exact
			{Name: "Roti", Quantity: dec("2"), UnitPrice: dec("20000"), Total: dec("40000"), DiscountAmount: dec("0")},
		},
	}
	ls := saleLines(tx, []string{"Kopi", "Roti"})
	if !total(ls).Equal(tx.Amount) {
		t.Fatalf("lines %+v total %s, want %s", ls, total(ls), tx.Amount)
	}
	for _, l := range ls {
		if l.Rate.Sign() < 0 {
			t.Errorf("negative rate: %+v", l)
		}
	}
	if ls[0].Quantity.String() != "1" || ls[0].Description != "3 × Kopi" {
		t.Errorf("inexact line %+v: want one unit described as 3 × Kopi", ls[0])
	}
}

func FuzzSaleLines(f *testing.F) {
	f.Add(int64(100000), int64(9091), int64(500), int64(3), int64(25000), int64(10000), int64(2), int64(20000))
	f.Add(int64(0), int64(0), int64(0), int64(1), int64(1), int64(0), int64(7), int64(3))
	f.Add(int64(1), int64(5), int64(5), int64(9), int64(111), int64(3), int64(1), int64(1))
	f.Fuzz(func(t *testing.T, amount, tax, service, q1, p1, d1, q2, p2 int64) {
		abs := func(v, m int64) int64 {
			if v < 0 {
				v = -v
			}
			return v % m
		}
		amount, tax, service = abs(amount, 1e9), abs(tax, 1e7), abs(service, 1e7)
		q1, q2 = abs(q1, 50)+1, abs(q2, 50)+1
		p1, p2 = abs(p1, 1e6), abs(p2, 1e6)
		d1 = abs(d1, p1*q1+1)
		tx := unified.Transaction{
			Amount: unified.NewDecimal(decimal.New(amount, -2)), TaxAmount: unified.DecimalFromInt(tax), ServiceChargeAmount: unified.DecimalFromInt(service),
			Items: []unified.Item{
				{Name: "A", Quantity: unified.DecimalFromInt(q1), UnitPrice: unified.DecimalFromInt(p1), Total: unified.DecimalFromInt(p1 * q1), DiscountAmount: unified.DecimalFromInt(d1)},
				{Name: "B", Quantity: unified.DecimalFromInt(q2), UnitPrice: unified.DecimalFromInt(p2), Total: unified.DecimalFromInt(p2 * q2), DiscountAmount: unified.DecimalFromInt(0)},
			},
		}
		ls := saleLines(tx, []string{"A", "B"})
		if !total(ls).Equal(tx.Amount) {
			t.Fatalf("lines %+v add up to %s, want %s", ls, total(ls), tx.Amount)
		}
		for _, l := range ls {
			if l.Rate.Sign() < 0 || l.Quantity.Sign() <= 0 || !l.Rate.Dec().Mul(hundred).IsInteger() {
				t.Fatalf("line %+v: Jurnal needs a positive quantity and a rate ≥ 0 exact to the cent", l)
			}
		}
		sum := sumLines(ls, ls)
		if !total(sum).Equal(tx.Amount.Add(tx.Amount)) {
			t.Fatalf("summed lines %s, want %s", total(sum), tx.Amount.Add(tx.Amount))
		}
	})
}
