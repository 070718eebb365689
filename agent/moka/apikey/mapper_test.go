package apikey

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zone tests must not depend on the host's zoneinfo

	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/store"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func jakartaCtx(t testing.TB) MapContext {
	return MapContext{BusinessID: "biz_1", Currency: "IDR", Location: mustLoc(t, "Asia/Jakarta")}
}

// guideExample is the transaction of the integration guide, completed with
// line items.
const guideExample = `{
	"id": "MOK123",
	"grand_total": "150000",
	"tax_amount": "13636",
	"discount_amount": "0",
	"payment_type": "cash",
	"created_at": "2025-12-26 10:30:00",
	"outlet_id": "outlet_456",
	"receipt_no": "INV3BO4LP",
	"line_items": [
		{"item_name": "Es Kopi Susu", "quantity": "2", "price": "25000"},
		{"item_name": "Nasi Goreng Spésial", "quantity": 1, "price": 100000}
	]
}`

func TestMapTransactionGuideExample(t *testing.T) {
	tx, err := MapTransaction(json.RawMessage(guideExample), jakartaCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	got, err := tx.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"external_id":"MOK123","source_system":"moka","business_id":"biz_1","outlet_id":"outlet_456",` +
		`"receipt_no":"INV3BO4LP","status":"completed","currency":"IDR","amount":"150000","subtotal":"136364",` +
		`"tax_amount":"13636","service_charge_amount":"0","discount_amount":"0","refund_amount":"0",` +
		`"payment_method":"cash","timestamp":"2025-12-26T10:30:00+07:00","business_date":"2025-12-26",` +
		`"items":[{"name":"Es Kopi Susu","variant":"","sku":"","quantity":"2","unit_price":"25000",` +
		`"total":"50000","discount_amount":"0","modifiers":[],"item_id":"","variant_id":"","category":""},` +
		`{"name":"Nasi Goreng Spésial","variant":"","sku":"","quantity":"1","unit_price":"100000",` +
		`"total":"100000","discount_amount":"0","modifiers":[],"item_id":"","variant_id":"","category":""}]}`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestMapTransactionCatalogueIDs: the guide's lines carry no catalogue
// ids, but a line that has them keeps them, so the sale joins the
// products (whose item_id is their id).
func TestMapTransactionCatalogueIDs(t *testing.T) {
	tx, err := mapOne(t, jakartaCtx(t), `,"line_items":[{"item_name":"Teh","quantity":1,"price":1,"item_id":"PRD-1","variant_id":9,"category":"Teh"},`+
		`{"item_name":"Kopi","quantity":1,"price":1,"product_id":"PRD-2"}]`)
	if err != nil {
		t.Fatal(err)
	}
	a, b := tx.Items[0], tx.Items[1]
	if a.ItemID != "PRD-1" || a.VariantID != "9" || a.Category != "Teh" || b.ItemID != "PRD-2" || b.VariantID != "" || b.Category != "" {
		t.Fatalf("items %+v", tx.Items)
	}
	for _, bad := range []string{`"item_id":{}`, `"product_id":[]`, `"variant_id":true`, `"category":5`} {
		if _, err := mapOne(t, jakartaCtx(t), `,"line_items":[{"item_name":"Teh","quantity":1,"price":1,`+bad+`}]`); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// mapOne maps a transaction built from fields over a valid base.
func mapOne(t *testing.T, m MapContext, fields string) (unified.Transaction, error) {
	t.Helper()
	raw := `{"id":"T1","outlet_id":"o1","grand_total":"100","created_at":"2025-12-26 10:30:00"` + fields + `}`
	return MapTransaction(json.RawMessage(raw), m)
}

func TestMapTransactionNumbers(t *testing.T) {
	m := jakartaCtx(t)
	for _, tc := range []struct {
		name, field, want string
	}{
		{"string", `"150000"`, "150000"},
		{"string .00", `"150000.00"`, "150000"},
		{"string .50", `"150000.50"`, "150000.5"},
		{"number", `150000`, "150000"},
		{"number fraction", `150000.50`, "150000.5"},
		{"many digits", `"12345678901234567890.123456789"`, "12345678901234567890.123456789"},
		{"beyond float64", `9007199254740993`, "9007199254740993"},
		{"leading zeros", `"000150"`, "150"},
		{"spaces in string", `" 150000 "`, "150000"},
		{"negative", `"-5000"`, "-5000"},
		{"negative zero", `"-0.00"`, "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx, err := mapOne(t, m, `,"grand_total":`+tc.field)
			if err != nil {
				t.Fatal(err)
			}
			if got := tx.Amount.String(); got != tc.want {
				t.Errorf("amount = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestMapTransactionBadNumbers(t *testing.T) {
	m := jakartaCtx(t)
	for _, tc := range []struct{ name, fields, field string }{
		{"letters", `,"grand_total":"12a"`, "grand_total"},
		{"exponent string", `,"grand_total":"1e5"`, "grand_total"},
		{"exponent number", `,"grand_total":1e5`, "grand_total"},
		{"exponent upper", `,"grand_total":1E+5`, "grand_total"},
		{"NaN", `,"grand_total":"NaN"`, "grand_total"},
		{"Infinity", `,"grand_total":"Infinity"`, "grand_total"},
		{"plus", `,"grand_total":"+5"`, "grand_total"},
		{"comma", `,"grand_total":"150,000"`, "grand_total"},
		{"empty string", `,"grand_total":""`, "grand_total"},
		{"bool", `,"grand_total":true`, "grand_total"},
		{"object", `,"grand_total":{}`, "grand_total"},
		{"array", `,"grand_total":[1]`, "grand_total"},
		{"missing grand_total", `,"grand_total":null`, "grand_total"},
		{"too long", `,"grand_total":"` + strings.Repeat("9", 33) + `"`, "grand_total"},
		{"bad tax", `,"tax_amount":"x"`, "tax_amount"},
		{"bad discount", `,"discount_amount":"1.2.3"`, "discount_amount"},
		{"bad subtotal", `,"subtotal":"1e2"`, "subtotal"},
		{"bad item quantity", `,"line_items":[{"item_name":"a","quantity":"two","price":"1"}]`, "line_items[0].quantity"},
		{"bad item price", `,"line_items":[{"item_name":"a","quantity":1,"price":"1"},{"item_name":"b","quantity":1,"price":"x"}]`, "line_items[1].price"},
		{"missing item quantity", `,"line_items":[{"item_name":"a","price":"1"}]`, "line_items[0].quantity"},
		{"missing item price", `,"line_items":[{"item_name":"a","quantity":"1"}]`, "line_items[0].price"},
		{"bad modifier price", `,"line_items":[{"item_name":"a","quantity":1,"price":"1","modifiers":[{"name":"x","price":"?"}]}]`, "line_items[0].modifiers[0].price"},
		{"line_items not array", `,"line_items":"none"`, "line_items"},
		{"line item not object", `,"line_items":[1]`, "line_items[0]"},
		{"modifiers not array", `,"line_items":[{"item_name":"a","quantity":1,"price":"1","modifiers":"x"}]`, "line_items[0].modifiers"},
		{"modifier not object", `,"line_items":[{"item_name":"a","quantity":1,"price":"1","modifiers":[{},2]}]`, "line_items[0].modifiers[1]"},
		{"item_name number", `,"line_items":[{"item_name":5,"quantity":1,"price":"1"}]`, "line_items[0].item_name"},
		{"payment_type object", `,"payment_type":{"a":1}`, "payment_type"},
		{"outlet_id bool", `,"outlet_id":false`, "outlet_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mapOne(t, m, tc.fields)
			var me *MapError
			if !errors.As(err, &me) {
				t.Fatalf("error = %v, want *MapError", err)
			}
			if me.Field != tc.field || me.ID != "T1" || me.Kind != "transaction" {
				t.Errorf("MapError = %+v, want field %q id T1", me, tc.field)
			}
		})
	}
}

func TestMapTransactionQuantities(t *testing.T) {
	m := jakartaCtx(t)
	tx, err := mapOne(t, m, `,"line_items":[
		{"item_name":"a","quantity":"2","price":"25000"},
		{"item_name":"b","quantity":2,"price":25000},
		{"item_name":"Kopi Bubuk (100 g)","quantity":"1.5","price":"27500.50"},
		{"item_name":"c","quantity":"3","price":"0.10"},
		{"item_name":"retur","quantity":"-1","price":"8000"},
		{"item_name":"x","quantity":"1.000","price":"1500.50"}]`)
	if err != nil {
		t.Fatal(err)
	}
	want := [][3]string{ // quantity, unit_price, total
		{"2", "25000", "50000"},
		{"2", "25000", "50000"},
		{"1.5", "27500.5", "41250.75"},
		{"3", "0.1", "0.3"},
		{"-1", "8000", "-8000"},
		{"1", "1500.5", "1500.5"},
	}
	if len(tx.Items) != len(want) {
		t.Fatalf("%d items", len(tx.Items))
	}
	for i, w := range want {
		it := tx.Items[i]
		if got := [3]string{it.Quantity.String(), it.UnitPrice.String(), it.Total.String()}; got != w {
			t.Errorf("item %d = %v, want %v", i, got, w)
		}
	}
}

func TestMapTransactionOptionalFields(t *testing.T) {
	m := jakartaCtx(t)
	// The bare minimum: no tax, discount, payment type, receipt, line items.
	tx, err := mapOne(t, m, "")
	if err != nil {
		t.Fatal(err)
	}
	if tx.TaxAmount.String() != "0" || tx.DiscountAmount.String() != "0" || tx.ServiceChargeAmount.String() != "0" ||
		tx.RefundAmount.String() != "0" || tx.Subtotal.String() != "100" {
		t.Errorf("zero amounts wrong: %+v", tx)
	}
	if tx.PaymentMethod != "unknown" || tx.ReceiptNo != "" || tx.Items == nil || len(tx.Items) != 0 {
		t.Errorf("optional fields wrong: %+v", tx)
	}
	if tx.Status != unified.StatusCompleted || tx.Currency != "IDR" || tx.SourceSystem != "moka" {
		t.Errorf("constants wrong: %+v", tx)
	}
	// null everywhere is the same as absent.
	tx, err = mapOne(t, m, `,"tax_amount":null,"discount_amount":null,"payment_type":null,"receipt_no":null,"line_items":null`)
	if err != nil {
		t.Fatal(err)
	}
	if tx.PaymentMethod != "unknown" || len(tx.Items) != 0 || tx.TaxAmount.String() != "0" {
		t.Errorf("nulls wrong: %+v", tx)
	}
	// An empty payment type is unknown too.
	if tx, _ = mapOne(t, m, `,"payment_type":""`); tx.PaymentMethod != "unknown" {
		t.Errorf("empty payment_type → %q", tx.PaymentMethod)
	}
	// payment_no stands in for receipt_no; receipt_no wins when both exist.
	if tx, _ = mapOne(t, m, `,"payment_no":"PAY1"`); tx.ReceiptNo != "PAY1" {
		t.Errorf("payment_no → %q", tx.ReceiptNo)
	}
	if tx, _ = mapOne(t, m, `,"payment_no":"PAY1","receipt_no":"R1"`); tx.ReceiptNo != "R1" {
		t.Errorf("receipt_no+payment_no → %q", tx.ReceiptNo)
	}
	// subtotal: computed as amount − tax − service charge, or taken as given.
	if tx, _ = mapOne(t, m, `,"grand_total":"150000","tax_amount":"13636.36"`); tx.Subtotal.String() != "136363.64" {
		t.Errorf("subtotal = %s", tx.Subtotal)
	}
	if tx, _ = mapOne(t, m, `,"grand_total":"165000","tax_amount":"15000","service_charge_amount":"7500"`); tx.Subtotal.String() != "142500" {
		t.Errorf("subtotal with service = %s", tx.Subtotal)
	}
	if tx, _ = mapOne(t, m, `,"subtotal":"120000.00"`); tx.Subtotal.String() != "120000" {
		t.Errorf("given subtotal = %s", tx.Subtotal)
	}
	// Unknown fields are ignored; numeric ids are kept as text.
	tx, err = mapOne(t, m, `,"id":12345,"outlet_id":7,"table_no":"T4","customer":{"name":"Budi"}`)
	if err != nil || tx.ExternalID != "12345" || tx.OutletID != "7" {
		t.Errorf("numeric ids: %v %+v", err, tx)
	}
	// Line item extras.
	tx, err = mapOne(t, m, `,"line_items":[{"item_name":"Latte","variant_name":"Large","sku":"KOP-1","quantity":"1","price":"30000",
		"discount_amount":"3000","modifiers":[{"name":"Extra shot","price":"5000"},{"name":"Oat milk"}]}]`)
	if err != nil {
		t.Fatal(err)
	}
	it := tx.Items[0]
	if it.Variant != "Large" || it.SKU != "KOP-1" || it.DiscountAmount.String() != "3000" || it.Total.String() != "30000" ||
		len(it.Modifiers) != 2 || it.Modifiers[0].Price.String() != "5000" || it.Modifiers[1].Price.String() != "0" {
		t.Errorf("item extras: %+v", it)
	}
}

func TestMapTransactionIDAndOutlet(t *testing.T) {
	m := jakartaCtx(t)
	for _, tc := range []struct{ name, raw string }{
		{"missing id", `{"grand_total":"1","outlet_id":"o","created_at":"2025-01-01 00:00:00"}`},
		{"empty id", `{"id":"","grand_total":"1","outlet_id":"o","created_at":"2025-01-01 00:00:00"}`},
		{"blank id", `{"id":"  ","grand_total":"1","outlet_id":"o","created_at":"2025-01-01 00:00:00"}`},
		{"null id", `{"id":null,"grand_total":"1","outlet_id":"o","created_at":"2025-01-01 00:00:00"}`},
		{"object id", `{"id":{},"grand_total":"1","outlet_id":"o","created_at":"2025-01-01 00:00:00"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := MapTransaction(json.RawMessage(tc.raw), m)
			var me *MapError
			if !errors.As(err, &me) || me.Field != "id" {
				t.Errorf("error = %v, want id MapError", err)
			}
		})
	}
	// No outlet_id: the default outlet, else an error.
	raw := json.RawMessage(`{"id":"T1","grand_total":"1","created_at":"2025-01-01 00:00:00"}`)
	if _, err := MapTransaction(raw, m); err == nil || !strings.Contains(err.Error(), "outlet_id: missing") {
		t.Errorf("no outlet: %v", err)
	}
	m.DefaultOutletID = "polled"
	if tx, err := MapTransaction(raw, m); err != nil || tx.OutletID != "polled" {
		t.Errorf("default outlet: %v %q", err, tx.OutletID)
	}
	// Not an object at all.
	for _, raw := range []string{`null`, `[]`, `"MOK1"`, `12`, `{"id":"T1"`, ``, `{} {}`} {
		_, err := MapTransaction(json.RawMessage(raw), m)
		var me *MapError
		if !errors.As(err, &me) {
			t.Errorf("MapTransaction(%q) error = %v, want *MapError", raw, err)
		}
	}
	// A missing business id is a configuration error, not a bad record.
	_, err := MapTransaction(json.RawMessage(guideExample), MapContext{})
	var me *MapError
	if !errors.Is(err, ErrNoBusinessID) || errors.As(err, &me) {
		t.Errorf("no business id: %v", err)
	}
}

func TestMapTransactionTimes(t *testing.T) {
	jkt, mks, jyp := mustLoc(t, "Asia/Jakarta"), mustLoc(t, "Asia/Makassar"), mustLoc(t, "Asia/Jayapura")
	for _, tc := range []struct {
		name      string
		loc       *time.Location
		createdAt string
		wantTS    string
		wantDate  string
	}{
		{"guide format", jkt, "2025-12-26 10:30:00", "2025-12-26T10:30:00+07:00", "2025-12-26"},
		{"23:30 Jakarta stays on its day", jkt, "2025-12-26 23:30:00", "2025-12-26T23:30:00+07:00", "2025-12-26"},
		{"00:10 Jakarta is the next day (UTC still the day before)", jkt, "2025-12-27 00:10:00", "2025-12-27T00:10:00+07:00", "2025-12-27"},
		{"RFC 3339 UTC late evening is the next Jakarta day", jkt, "2025-12-26T17:30:00Z", "2025-12-27T00:30:00+07:00", "2025-12-27"},
		{"RFC 3339 UTC 16:59 is still the Jakarta day", jkt, "2025-12-26T16:59:59Z", "2025-12-26T23:59:59+07:00", "2025-12-26"},
		{"RFC 3339 with Jakarta offset", jkt, "2025-12-26T10:30:00+07:00", "2025-12-26T10:30:00+07:00", "2025-12-26"},
		{"RFC 3339 other offset converted", jkt, "2025-12-26T23:30:00+09:00", "2025-12-26T21:30:00+07:00", "2025-12-26"},
		{"ISO without offset is local", jkt, "2025-12-26T23:30:00", "2025-12-26T23:30:00+07:00", "2025-12-26"},
		{"fractional seconds kept", jkt, "2025-12-26 10:30:00.250", "2025-12-26T10:30:00.25+07:00", "2025-12-26"},
		{"Makassar", mks, "2025-12-26 23:30:00", "2025-12-26T23:30:00+08:00", "2025-12-26"},
		{"Makassar from UTC", mks, "2025-12-26T16:30:00Z", "2025-12-27T00:30:00+08:00", "2025-12-27"},
		{"Jayapura", jyp, "2025-12-31 23:59:59", "2025-12-31T23:59:59+09:00", "2025-12-31"},
		{"Jayapura from UTC crosses the year", jyp, "2025-12-31T15:00:00Z", "2026-01-01T00:00:00+09:00", "2026-01-01"},
		{"nil location is UTC", nil, "2025-12-26 23:30:00", "2025-12-26T23:30:00Z", "2025-12-26"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := MapContext{BusinessID: "b", Location: tc.loc}
			tx, err := mapOne(t, m, `,"created_at":"`+tc.createdAt+`"`)
			if err != nil {
				t.Fatal(err)
			}
			if got := tx.Timestamp.Format(time.RFC3339Nano); got != tc.wantTS {
				t.Errorf("timestamp = %s, want %s", got, tc.wantTS)
			}
			if tx.BusinessDate != tc.wantDate {
				t.Errorf("business_date = %s, want %s", tx.BusinessDate, tc.wantDate)
			}
			c, err := tx.Canonical()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(c), `"timestamp":"`+tc.wantTS+`"`) {
				t.Errorf("canonical timestamp wrong: %s", c)
			}
		})
	}
}

func TestMapTransactionBadTimes(t *testing.T) {
	m := jakartaCtx(t)
	for _, v := range []string{
		`null`, `""`, `"  "`, `1735200000`, `"26/12/2025 10:30"`, `"2025-12-26"`, `"2025-13-01 10:00:00"`,
		`"2025-02-30 10:00:00"`, `"2025-12-26 24:00:00"`, `"2025-12-26 10:30"`, `"yesterday"`,
		`"1969-12-31 23:59:59"`, `"0001-01-01 00:00:00"`, `"9999-12-31T23:00:00-07:00"`,
		`"2025-12-26T10:30:00+25:00"`, `"` + strings.Repeat("2", 70) + `"`,
	} {
		_, err := mapOne(t, m, `,"created_at":`+v)
		var me *MapError
		if !errors.As(err, &me) || me.Field != "created_at" {
			t.Errorf("created_at %s: error = %v", v, err)
		}
	}
	if _, err := MapTransaction(json.RawMessage(`{"id":"T1","outlet_id":"o","grand_total":"1"}`), m); err == nil {
		t.Error("missing created_at accepted")
	}
}

func TestMapErrorMessage(t *testing.T) {
	_, err := mapOne(t, jakartaCtx(t), `,"grand_total":"12a"`)
	if got, want := err.Error(), `moka transaction "T1": grand_total: bad number "12a"`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestMapTransactionDeterministicCanonical(t *testing.T) {
	// The same sale written differently maps to the same bytes, so the
	// store sees no change; a real change gives different bytes.
	m := jakartaCtx(t)
	a := `{"id":"T1","outlet_id":"o1","grand_total":"150000.00","tax_amount":13636,"created_at":"2025-12-26 10:30:00",
		"line_items":[{"item_name":"Teh Tarik 🍵","quantity":2,"price":"75000"}]}`
	b := `{"line_items":[{"price":75000,"quantity":"2.0","item_name":"Teh Tarik 🍵"}],"created_at":"2025-12-26T03:30:00Z",
		"tax_amount":"13636.00","grand_total":150000,"outlet_id":"o1","id":"T1","note":"ignored"}`
	ia, err := mapInput(t, a, m)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := mapInput(t, b, m)
	if err != nil {
		t.Fatal(err)
	}
	if string(ia.Data) != string(ib.Data) || ia.Key != ib.Key || ia.Kind != store.KindTransaction {
		t.Errorf("equal content, different inputs:\n%s\n%s", ia.Data, ib.Data)
	}
	if ia.Key != "moka/biz_1/o1/T1" {
		t.Errorf("key = %q", ia.Key)
	}
	c := strings.Replace(a, `"quantity":2`, `"quantity":3`, 1)
	ic, _ := mapInput(t, c, m)
	if store.Version(ic.Data) == store.Version(ia.Data) {
		t.Error("changed content, same version")
	}
}

func mapInput(t *testing.T, raw string, m MapContext) (store.Input, error) {
	t.Helper()
	tx, err := MapTransaction(json.RawMessage(raw), m)
	if err != nil {
		return store.Input{}, err
	}
	return TransactionInput(tx)
}

func TestTransactionInputs(t *testing.T) {
	m := jakartaCtx(t)
	items := []json.RawMessage{
		json.RawMessage(guideExample),
		json.RawMessage(`{"id":"BAD1","outlet_id":"o","grand_total":"1e5","created_at":"2025-01-01 00:00:00"}`),
		json.RawMessage(`null`),
		json.RawMessage(`{"id":"T2","outlet_id":"o/2","grand_total":"5","created_at":"2025-01-01 00:00:00"}`),
	}
	ins, rejects, err := TransactionInputs(items, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 2 || ins[0].Key != "moka/biz_1/outlet_456/MOK123" || ins[1].Key != "moka/biz_1/o%2F2/T2" {
		t.Errorf("inputs = %+v", ins)
	}
	if len(rejects) != 2 || rejects[0].Err.ID != "BAD1" || rejects[0].Err.Field != "grand_total" ||
		string(rejects[0].Raw) != string(items[1]) || rejects[1].Err.ID != "" {
		t.Errorf("rejects = %+v", rejects)
	}
	if _, _, err := TransactionInputs(items, MapContext{}); !errors.Is(err, ErrNoBusinessID) {
		t.Errorf("no business id: %v", err)
	}
}

func TestMapProduct(t *testing.T) {
	m := jakartaCtx(t)
	p, err := MapProduct(json.RawMessage(`{"id":"PRD-1","name":"Es Kopi Susu Gula Aren","price":"22000.00",
		"category":"Kopi","outlet_id":"outlet_1","sku":"KOP-001","stock":5}`), m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"external_id":"PRD-1","source_system":"moka","business_id":"biz_1","outlet_id":"outlet_1",` +
		`"name":"Es Kopi Susu Gula Aren","category":"Kopi","sku":"KOP-001","currency":"IDR","price":"22000",` +
		`"item_id":"PRD-1","variant_id":"","variant":""}`
	if c, _ := p.Canonical(); string(c) != want {
		t.Errorf("got %s", c)
	}
	in, err := ProductInput(p)
	if err != nil || in.Kind != store.KindProduct || in.Key != "moka/biz_1/outlet_1/products/PRD-1" {
		t.Errorf("ProductInput = %+v, %v", in, err)
	}
	// Minimal product, numeric id and price.
	p, err = MapProduct(json.RawMessage(`{"id":77,"price":15000}`), m)
	if err != nil || p.ExternalID != "77" || p.Price.String() != "15000" || p.OutletID != "" || p.Name != "" {
		t.Errorf("minimal product: %+v %v", p, err)
	}
	for _, raw := range []string{`{"name":"x"}`, `{"id":"P","price":"1e3"}`, `{"id":"P","name":1}`, `[]`} {
		_, err := MapProduct(json.RawMessage(raw), m)
		var me *MapError
		if !errors.As(err, &me) || me.Kind != "product" {
			t.Errorf("MapProduct(%s) = %v", raw, err)
		}
	}
	ins, rej, err := ProductInputs([]json.RawMessage{json.RawMessage(`{"id":"P1"}`), json.RawMessage(`{}`)}, m)
	if err != nil || len(ins) != 1 || len(rej) != 1 {
		t.Errorf("ProductInputs = %v %v %v", ins, rej, err)
	}
}
