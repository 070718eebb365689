package unified

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestDecimalCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0", "0"},
		{"-0", "0"},
		{"0.000", "0"},
		{"-0.00", "0"},
		{"150000", "150000"},
		{"150000.00", "150000"},
		{"150000.50", "150000.5"},
		{"150000.05", "150000.05"},
		{"13636.36", "13636.36"},
		{"007", "7"},
		{"00.100", "0.1"},
		{"-12.3400", "-12.34"},
		{"0.000000000000000000000001", "0.000000000000000000000001"},
		{"123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789"},
		{"100000000000000000000000000000000000000", "100000000000000000000000000000000000000"},
		{"-9223372036854775808", "-9223372036854775808"},
		{"9223372036854775807.0", "9223372036854775807"},
		{"-92233720368547758080.0", "-92233720368547758080"},
	} {
		d, err := ParseDecimal(tc.in)
		if err != nil {
			t.Errorf("ParseDecimal(%q): %v", tc.in, err)
			continue
		}
		if got := d.String(); got != tc.want {
			t.Errorf("ParseDecimal(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
		j, _ := d.MarshalJSON()
		if string(j) != `"`+tc.want+`"` {
			t.Errorf("MarshalJSON(%q) = %s", tc.in, j)
		}
	}
}

func TestDecimalCanonicalIgnoresShopspringKnobs(t *testing.T) {
	// Package-level knobs of shopspring/decimal must not change our bytes.
	old1, old2 := decimal.MarshalJSONWithoutQuotes, decimal.UseScientificNotation
	old3 := decimal.TrimTrailingZeros
	t.Cleanup(func() {
		decimal.MarshalJSONWithoutQuotes, decimal.UseScientificNotation = old1, old2
		decimal.TrimTrailingZeros = old3
	})
	decimal.MarshalJSONWithoutQuotes = true
	decimal.UseScientificNotation = true
	decimal.TrimTrailingZeros = false
	d := NewDecimal(decimal.New(15, 4)) // 150000 with a positive exponent
	if got, _ := d.MarshalJSON(); string(got) != `"150000"` {
		t.Errorf("MarshalJSON = %s", got)
	}
	if got := MustDecimal("1.500").String(); got != "1.5" {
		t.Errorf("String = %s", got)
	}
}

func TestParseDecimalRejects(t *testing.T) {
	for _, in := range []string{
		"", "-", "+1", "1e5", "1E5", "1.5e3", "NaN", "Inf", "-Inf", "0x10", ".5", "5.", "1,5",
		"1 000", " 1", "1 ", "12a", "--1", "1.2.3", "١٢", "1_000", "−1", // U+2212 minus
		strings.Repeat("9", MaxDecimalLen+1),
	} {
		if _, err := ParseDecimal(in); !errors.Is(err, ErrBadDecimal) {
			t.Errorf("ParseDecimal(%q) error = %v, want ErrBadDecimal", in, err)
		}
	}
}

func TestDecimalArithmeticExact(t *testing.T) {
	q, p := MustDecimal("1.5"), MustDecimal("27500.50")
	if got := q.Mul(p).String(); got != "41250.75" {
		t.Errorf("1.5 × 27500.50 = %s", got)
	}
	if got := MustDecimal("150000").Sub(MustDecimal("13636.36")).String(); got != "136363.64" {
		t.Errorf("150000 − 13636.36 = %s", got)
	}
	// 0.1 + 0.2 is exactly 0.3 (no float anywhere).
	if got := MustDecimal("0.1").Add(MustDecimal("0.2")).String(); got != "0.3" {
		t.Errorf("0.1 + 0.2 = %s", got)
	}
}

func TestDecimalUnmarshalJSON(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`"150000.00"`, "150000"}, {`150000`, "150000"}, {`"1.5"`, "1.5"}, {`2`, "2"}, {`null`, "0"},
	} {
		var d Decimal
		if err := json.Unmarshal([]byte(tc.in), &d); err != nil {
			t.Errorf("Unmarshal(%s): %v", tc.in, err)
			continue
		}
		if d.String() != tc.want {
			t.Errorf("Unmarshal(%s) = %s, want %s", tc.in, d, tc.want)
		}
	}
	for _, in := range []string{`1e5`, `"1e5"`, `"abc"`, `true`, `"NaN"`} {
		var d Decimal
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("Unmarshal(%s) accepted", in)
		}
	}
}

func sampleTransaction() Transaction {
	jkt := time.FixedZone("WIB", 7*3600)
	return Transaction{
		ExternalID:    "MOK123",
		SourceSystem:  SourceMoka,
		BusinessID:    "biz_1",
		OutletID:      "outlet_456",
		ReceiptNo:     "INV3BO4LP",
		Status:        StatusCompleted,
		Currency:      "IDR",
		Amount:        MustDecimal("150000"),
		Subtotal:      MustDecimal("136364"),
		TaxAmount:     MustDecimal("13636"),
		PaymentMethod: "cash",
		Timestamp:     time.Date(2025, 12, 26, 10, 30, 0, 0, jkt),
		BusinessDate:  "2025-12-26",
		Items: []Item{{
			Name: "Es Kopi Susu", Variant: "Large", Quantity: MustDecimal("2"),
			UnitPrice: MustDecimal("25000"), Total: MustDecimal("50000"),
			Modifiers: []Modifier{{Name: "Extra shot", Price: MustDecimal("5000")}},
		}},
	}
}

func TestCanonicalMatchesSpecExample(t *testing.T) {
	got, err := sampleTransaction().Canonical()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"external_id":"MOK123","source_system":"moka","business_id":"biz_1","outlet_id":"outlet_456",` +
		`"receipt_no":"INV3BO4LP","status":"completed","currency":"IDR","amount":"150000","subtotal":"136364",` +
		`"tax_amount":"13636","service_charge_amount":"0","discount_amount":"0","refund_amount":"0",` +
		`"payment_method":"cash","timestamp":"2025-12-26T10:30:00+07:00","business_date":"2025-12-26",` +
		`"items":[{"name":"Es Kopi Susu","variant":"Large","sku":"","quantity":"2","unit_price":"25000",` +
		`"total":"50000","discount_amount":"0","modifiers":[{"name":"Extra shot","price":"5000"}],` +
		`"item_id":"","variant_id":"","category":""}]}`
	if string(got) != want {
		t.Errorf("Canonical =\n%s\nwant\n%s", got, want)
	}
}

// TestCanonicalCatalogueIDs: the catalogue ids of an item (SPEC §4) come
// after every field that existed before them, so the bytes of those fields
// are unchanged; a product's item_id, variant_id and variant likewise.
func TestCanonicalCatalogueIDs(t *testing.T) {
	tx := sampleTransaction()
	tx.Items[0].ItemID, tx.Items[0].VariantID, tx.Items[0].Category = "20", "21", "Kopi"
	got, err := tx.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	wantItem := `{"name":"Es Kopi Susu","variant":"Large","sku":"","quantity":"2","unit_price":"25000",` +
		`"total":"50000","discount_amount":"0","modifiers":[{"name":"Extra shot","price":"5000"}],` +
		`"item_id":"20","variant_id":"21","category":"Kopi"}`
	if !bytes.Contains(got, []byte(`"items":[`+wantItem+`]}`)) {
		t.Errorf("item = %s", got)
	}
	p := Product{ExternalID: "21", SourceSystem: SourceMoka, BusinessID: "b", OutletID: "o", Name: "Es Kopi Susu (Large)",
		Category: "Kopi", SKU: "K-1", Currency: "IDR", Price: MustDecimal("25000"), ItemID: "20", VariantID: "21", Variant: "Large"}
	gp, _ := p.Canonical()
	want := `{"external_id":"21","source_system":"moka","business_id":"b","outlet_id":"o","name":"Es Kopi Susu (Large)",` +
		`"category":"Kopi","sku":"K-1","currency":"IDR","price":"25000","item_id":"20","variant_id":"21","variant":"Large"}`
	if string(gp) != want {
		t.Errorf("product =\n%s\nwant\n%s", gp, want)
	}
	// The version changes with the ids: they are content.
	tx2 := sampleTransaction()
	tx2.Items[0].ItemID, tx2.Items[0].VariantID, tx2.Items[0].Category = "20", "22", "Kopi"
	other, _ := tx2.Canonical()
	if bytes.Equal(got, other) {
		t.Error("a different variant id gives the same bytes")
	}
}

func TestCanonicalZeroValues(t *testing.T) {
	got, err := Transaction{Timestamp: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	if m["amount"] != "0" || m["items"] == nil || len(m["items"].([]any)) != 0 || m["receipt_no"] != "" {
		t.Errorf("zero values not rendered as \"0\", \"\", []: %s", got)
	}
	got, _ = Transaction{Items: []Item{{}}, Timestamp: time.Unix(0, 0).UTC()}.Canonical()
	if !bytes.Contains(got, []byte(`"modifiers":[]`)) {
		t.Errorf("nil modifiers not []: %s", got)
	}
}

// TestCanonicalEqualsEncodingJSON holds the hand-written encoder to
// encoding/json's output, on random content with awkward strings.
func TestCanonicalEqualsEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	strs := []string{"", "Teh Tarik 🍵", "Nasi Goreng Spésial", `a"b\c`, "<script>&amp;", "tab\tnew\nline\r",
		"\x00\x01\x1f\x7f", "\u2028\u2029", "bad utf8 \xff\xfe", "\xe2\x82", "日本語", "a/b%c"}
	rs := func() string { return strs[r.IntN(len(strs))] }
	decs := []string{"0", "1", "-1", "150000.50", "0.001", "99999999999999999999999.99"}
	rd := func() Decimal { return MustDecimal(decs[r.IntN(len(decs))]) }
	zones := []*time.Location{time.UTC, time.FixedZone("WIT", 9*3600), time.FixedZone("X", -(3*3600 + 30*60))}
	for range 500 {
		tx := Transaction{
			ExternalID: rs(), SourceSystem: rs(), BusinessID: rs(), OutletID: rs(), ReceiptNo: rs(),
			Status: Status(rs()), Currency: rs(), Amount: rd(), Subtotal: rd(), TaxAmount: rd(),
			ServiceChargeAmount: rd(), DiscountAmount: rd(), RefundAmount: rd(), PaymentMethod: rs(),
			Timestamp:    time.Unix(r.Int64N(4e9), r.Int64N(3)*500_000_000).In(zones[r.IntN(len(zones))]),
			BusinessDate: rs(), Items: []Item{},
		}
		for range r.IntN(3) {
			it := Item{Name: rs(), Variant: rs(), SKU: rs(), Quantity: rd(), UnitPrice: rd(), Total: rd(),
				DiscountAmount: rd(), Modifiers: []Modifier{}, ItemID: rs(), VariantID: rs(), Category: rs()}
			for range r.IntN(3) {
				it.Modifiers = append(it.Modifiers, Modifier{Name: rs(), Price: rd()})
			}
			tx.Items = append(tx.Items, it)
		}
		got, err := tx.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(tx)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Canonical differs from encoding/json:\n got %s\nwant %s", got, want)
		}
		// Round trip: decoding and re-encoding gives the same bytes.
		var back Transaction
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		again, _ := back.Canonical()
		if !bytes.Equal(again, got) && !bytes.Contains(got, []byte(`\ufffd`)) {
			t.Fatalf("round trip changed bytes:\n%s\n%s", got, again)
		}

		p := Product{ExternalID: rs(), SourceSystem: rs(), BusinessID: rs(), OutletID: rs(), Name: rs(),
			Category: rs(), SKU: rs(), Currency: rs(), Price: rd(), ItemID: rs(), VariantID: rs(), Variant: rs()}
		gp, _ := p.Canonical()
		wp, _ := json.Marshal(p)
		if !bytes.Equal(gp, wp) {
			t.Fatalf("product Canonical differs:\n got %s\nwant %s", gp, wp)
		}
	}
}

func TestCanonicalDeterministicAcrossEqualValues(t *testing.T) {
	a := sampleTransaction()
	b := sampleTransaction()
	b.Amount = MustDecimal("150000.00")
	b.Items[0].Quantity = MustDecimal("2.0")
	b.Timestamp = b.Timestamp.In(time.FixedZone("WIB", 7*3600)) // same offset, new *Location
	ca, _ := a.Canonical()
	cb, _ := b.Canonical()
	if !bytes.Equal(ca, cb) {
		t.Errorf("equal content, different bytes:\n%s\n%s", ca, cb)
	}
	b.Amount = MustDecimal("150000.01")
	cb, _ = b.Canonical()
	if bytes.Equal(ca, cb) {
		t.Error("different content, same bytes")
	}
}

func TestCanonicalRejectsUnrepresentableTimestamp(t *testing.T) {
	for _, ts := range []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("odd", 25*3600)),
	} {
		if _, err := (Transaction{Timestamp: ts}).Canonical(); !errors.Is(err, ErrBadTimestamp) {
			t.Errorf("Canonical(%v) error = %v", ts, err)
		}
	}
}

func TestKey(t *testing.T) {
	for _, tc := range []struct{ b, o, e, want string }{
		{"biz_1", "outlet_456", "MOK123", "moka/biz_1/outlet_456/MOK123"},
		{"biz", "out/1", "a/b", "moka/biz/out%2F1/a%2Fb"},
		{"biz", "o", "50%", "moka/biz/o/50%25"},
		{"biz", "o", "a%2Fb", "moka/biz/o/a%252Fb"}, // distinct from "a/b"
		{"biz", "o", "", "moka/biz/o/"},
	} {
		if got := Key(tc.b, tc.o, tc.e); got != tc.want {
			t.Errorf("Key(%q,%q,%q) = %q, want %q", tc.b, tc.o, tc.e, got, tc.want)
		}
	}
	if got := ProductKey("biz", "", "PRD/1"); got != "moka/biz//products/PRD%2F1" {
		t.Errorf("ProductKey = %q", got)
	}
	if got := (Transaction{BusinessID: "b", OutletID: "o", ExternalID: "e"}).Key(); got != "moka/b/o/e" {
		t.Errorf("Transaction.Key = %q", got)
	}
	if strings.Count(ProductKey("b", "o", "p"), "/") == strings.Count(Key("b", "o", "p"), "/") {
		t.Error("product and transaction keys have the same shape")
	}
}

func TestStatusValid(t *testing.T) {
	for _, s := range []Status{StatusCompleted, StatusVoid, StatusRefunded, StatusPartiallyRefunded} {
		if !s.Valid() {
			t.Errorf("%q not valid", s)
		}
	}
	if Status("paid").Valid() {
		t.Error("paid is valid")
	}
}

func BenchmarkCanonical(b *testing.B) {
	tx := sampleTransaction()
	tx.Items = append(tx.Items, tx.Items[0], tx.Items[0])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tx.Canonical(); err != nil {
			b.Fatal(err)
		}
	}
}
