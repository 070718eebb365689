package oauth

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/unified"
)

// samplePayment is a v3 payment in the shape of the reference's field list
// (pastebin dump + SDK), trimmed to what matters plus some noise.
const samplePayment = `{
 "id": "0f8d2c1e-3a4b-4c5d-8e9f-0a1b2c3d4e5f", "payment_no": "INV3BO4LP", "status": "Done",
 "payment_type": "cash", "payment_type_label": "Cash",
 "created_at": "2018-01-27T20:40:14.872+07:00", "updated_at": "2018-01-27T20:40:15.102+07:00",
 "transaction_date": "2018-01-27", "transaction_time": "20:40:14",
 "outlet_id": 12345, "business_id": 678,
 "customer_name": "Budi Santoso", "customer_phone": "+6281234567890", "customer_email": "budi@example.com",
 "subtotal": 68001, "discounts": 5100.1, "gratuities": 3145.045, "taxes": 6604.5945, "total_collected": 72650.5395,
 "tendered": 73000, "change": 349.4605,
 "is_deleted": false, "is_refunded": false, "refund_amount": 0, "refund_type": null,
 "payment_taxes": [{"id": 1, "tax_id": 2, "name": "PB1", "amount": 10.0, "total": -6604.5945, "taxable_amount": 62900.9}],
 "payment_gratuities": [{"id": 3, "gratuity_id": 4, "name": "Service", "amount": 5, "total": 3145.045}],
 "payment_discounts": [{"id": 5, "discount_id": 6, "discount_name": "Promo", "discount_type": "cash", "discount_amount": -5100.1, "is_deleted": false}],
 "payment_refunds": [],
 "checkouts": [
  {"id": 10, "item_id": 20, "item_name": "Es Kopi Susu", "item_variant_id": 21, "item_variant_name": "Large",
   "category_name": "Kopi", "sku": "", "quantity": 2, "price": 25000.0, "item_price": 25000, "item_price_library": 25000,
   "total_price": 60000, "discount_amount": 0, "refunded_quantity": 0, "is_deleted": false,
   "modifiers": [{"modifier_id": 1, "modifier_name": "Tambahan", "modifier_option_id": 2, "modifier_option_name": "Extra shot", "price": 5000}],
   "discounts": []},
  {"id": 11, "item_name": "Nasi Goreng Spésial", "item_variant_name": "", "sku": "NG-01", "quantity": 1, "price": 8001,
   "discount_amount": -800.1, "modifiers": null,
   "discounts": [{"discount_id": 9, "discount_name": "10%", "discount_amount": -800.1}]},
  {"id": 12, "item_name": "Dihapus", "quantity": 1, "price": 99999, "is_deleted": true}
 ]
}`

func sampleCtx() MapContext {
	return MapContext{BusinessID: "678", Currency: "IDR", Location: jakarta}
}

func TestMapPaymentSample(t *testing.T) {
	got, err := MapPayment(json.RawMessage(samplePayment), sampleCtx())
	if err != nil {
		t.Fatal(err)
	}
	canon, _ := got.Canonical()
	want := `{"external_id":"0f8d2c1e-3a4b-4c5d-8e9f-0a1b2c3d4e5f","source_system":"moka","business_id":"678","outlet_id":"12345",` +
		`"receipt_no":"INV3BO4LP","status":"completed","currency":"IDR","amount":"72650.5395","subtotal":"62900.9",` +
		`"tax_amount":"6604.5945","service_charge_amount":"3145.045","discount_amount":"5100.1","refund_amount":"0",` +
		`"payment_method":"cash","timestamp":"2018-01-27T20:40:14.872+07:00","business_date":"2018-01-27","items":[` +
		`{"name":"Es Kopi Susu","variant":"Large","sku":"","quantity":"2","unit_price":"25000","total":"50000","discount_amount":"0",` +
		`"modifiers":[{"name":"Extra shot","price":"5000"}],"item_id":"20","variant_id":"21","category":"Kopi"},` +
		`{"name":"Nasi Goreng Spésial","variant":"","sku":"NG-01","quantity":"1","unit_price":"8001","total":"8001","discount_amount":"800.1","modifiers":[],` +
		`"item_id":"","variant_id":"","category":""}]}`
	if string(canon) != want {
		t.Fatalf("got\n%s\nwant\n%s", canon, want)
	}
	if strings.Contains(string(canon), "Budi") || strings.Contains(string(canon), "628123") {
		t.Fatal("customer data in the record")
	}
}

// mapWith maps samplePayment with top-level fields replaced (value "" removes).
func mapWith(t *testing.T, fields map[string]string) (unified.Transaction, error) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(samplePayment), &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range fields {
		if v == "" {
			delete(m, k)
		} else {
			m[k] = json.RawMessage(v)
		}
	}
	b, _ := json.Marshal(m)
	return MapPayment(b, sampleCtx())
}

func TestMapPaymentTable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields map[string]string
		check  func(t *testing.T, tx unified.Transaction)
	}{
		{"v1 total_collected_amount", map[string]string{"total_collected": "", "total_collected_amount": "150000"},
			func(t *testing.T, tx unified.Transaction) { eq(t, tx.Amount, "150000") }},
		{"amount as string with .00", map[string]string{"total_collected": `"150000.00"`},
			func(t *testing.T, tx unified.Transaction) { eq(t, tx.Amount, "150000") }},
		{"ruby float 150000.0", map[string]string{"total_collected": "150000.0", "taxes": "13636.0", "gratuities": "0.0"},
			func(t *testing.T, tx unified.Transaction) {
				eq(t, tx.Amount, "150000")
				eq(t, tx.Subtotal, "136364")
			}},
		{"scientific notation", map[string]string{"gratuities": "1.0e-05", "taxes": "1.5E+3"},
			func(t *testing.T, tx unified.Transaction) {
				eq(t, tx.ServiceChargeAmount, "0.00001")
				eq(t, tx.TaxAmount, "1500")
			}},
		{"many digits stay exact", map[string]string{"total_collected": "12345678901234567890.123456789"},
			func(t *testing.T, tx unified.Transaction) { eq(t, tx.Amount, "12345678901234567890.123456789") }},
		{"negative top-level tax is a magnitude", map[string]string{"taxes": "-755.0125"},
			func(t *testing.T, tx unified.Transaction) { eq(t, tx.TaxAmount, "755.0125") }},
		{"tax from payment_taxes", map[string]string{"taxes": "", "total_tax_amount": ""},
			func(t *testing.T, tx unified.Transaction) { eq(t, tx.TaxAmount, "6604.5945") }},
		{"tax from total_tax_amount", map[string]string{"taxes": "", "total_tax_amount": "111.1"},
			func(t *testing.T, tx unified.Transaction) { eq(t, tx.TaxAmount, "111.1") }},
		{"gratuity from lines", map[string]string{"gratuities": ""},
			func(t *testing.T, tx unified.Transaction) { eq(t, tx.ServiceChargeAmount, "3145.045") }},
		{"discount from lines, deleted ones skipped", map[string]string{"discounts": "",
			"payment_discounts": `[{"discount_amount":-100.5},{"discount_amount":-7,"is_deleted":true},{"discount_amount":-0.25}]`},
			func(t *testing.T, tx unified.Transaction) { eq(t, tx.DiscountAmount, "100.75") }},
		{"nothing taxed", map[string]string{"taxes": "", "payment_taxes": "[]", "gratuities": "", "payment_gratuities": "null"},
			func(t *testing.T, tx unified.Transaction) {
				eq(t, tx.TaxAmount, "0")
				eq(t, tx.ServiceChargeAmount, "0")
				eq(t, tx.Subtotal, "72650.5395")
			}},
		{"void", map[string]string{"is_deleted": "true", "status": `"Void"`},
			func(t *testing.T, tx unified.Transaction) { status(t, tx, unified.StatusVoid, "0") }},
		{"void wins over refund", map[string]string{"is_deleted": "true", "is_refunded": "true"},
			func(t *testing.T, tx unified.Transaction) { status(t, tx, unified.StatusVoid, "0") }},
		{"full refund", map[string]string{"is_refunded": "true", "refund_amount": "72650.5395"},
			func(t *testing.T, tx unified.Transaction) { status(t, tx, unified.StatusRefunded, "72650.5395") }},
		{"full refund without an amount", map[string]string{"is_refunded": "true", "refund_amount": "null"},
			func(t *testing.T, tx unified.Transaction) { status(t, tx, unified.StatusRefunded, "72650.5395") }},
		{"partial refund", map[string]string{"is_refunded": "true", "refund_type": `"partial"`, "refund_amount": "27500.5"},
			func(t *testing.T, tx unified.Transaction) { status(t, tx, unified.StatusPartiallyRefunded, "27500.5") }},
		{"partial refund from payment_refunds only", map[string]string{"refund_amount": "",
			"payment_refunds": `[{"refund_amount":-1000,"refund_type":"partial"},{"refund_amount":500.25}]`},
			func(t *testing.T, tx unified.Transaction) { status(t, tx, unified.StatusPartiallyRefunded, "1500.25") }},
		{"booleans as 1/0 and strings", map[string]string{"is_deleted": "0", "is_refunded": `"true"`, "refund_type": `"PARTIAL"`, "refund_amount": "1"},
			func(t *testing.T, tx unified.Transaction) { status(t, tx, unified.StatusPartiallyRefunded, "1") }},
		{"numeric id and guid fallback", map[string]string{"id": "", "guid": `"g-1"`},
			func(t *testing.T, tx unified.Transaction) { same(t, tx.ExternalID, "g-1") }},
		{"integer id", map[string]string{"id": "987654321"},
			func(t *testing.T, tx unified.Transaction) { same(t, tx.ExternalID, "987654321") }},
		{"no payment type", map[string]string{"payment_type": "null"},
			func(t *testing.T, tx unified.Transaction) { same(t, tx.PaymentMethod, "unknown") }},
		{"WITA offset kept, business date local", map[string]string{"created_at": `"2026-03-10T23:30:00.5+08:00"`},
			func(t *testing.T, tx unified.Transaction) {
				same(t, tx.Timestamp.Format("2006-01-02T15:04:05.999Z07:00"), "2026-03-10T23:30:00.5+08:00")
				same(t, tx.BusinessDate, "2026-03-10")
			}},
		{"UTC timestamp kept as given", map[string]string{"created_at": `"2026-03-10T16:30:00Z"`},
			func(t *testing.T, tx unified.Transaction) { same(t, tx.BusinessDate, "2026-03-10") }},
		{"no offset: moka.timezone", map[string]string{"created_at": `"2026-03-10 23:30:00"`},
			func(t *testing.T, tx unified.Transaction) {
				same(t, tx.Timestamp.Format("2006-01-02T15:04:05Z07:00"), "2026-03-10T23:30:00+07:00")
			}},
		{"GoBiz items[]", map[string]string{"checkouts": "", "items": `[{"item_name":"Teh","quantity":"1.5","item_price":8000.5}]`},
			func(t *testing.T, tx unified.Transaction) {
				if len(tx.Items) != 1 {
					t.Fatalf("items %+v", tx.Items)
				}
				eq(t, tx.Items[0].UnitPrice, "8000.5")
				eq(t, tx.Items[0].Total, "12000.75")
			}},
		// GoBiz's reporting API names its lines' fields apart from v3
		// (developer.gobiz.com "Get Paid Transactions List").
		{"GoBiz names", map[string]string{"checkouts": "", "items": `[{"id":20472591,"custom_amount":0,"name":"Ayam Bawang",` +
			`"item_id":3661,"variant_id":36629111,"variant_name":"Pedas","category_name":"Makanan","quantity":1,` +
			`"discount_amount":5100.1,"tax_amount":0,"price_library":51001,"price":51001,` +
			`"modifiers":[{"modifier_id":9,"modifier_name":"Level","option_name":"Extra pedas","price":2000}]}]`},
			func(t *testing.T, tx unified.Transaction) {
				if len(tx.Items) != 1 {
					t.Fatalf("items %+v", tx.Items)
				}
				it := tx.Items[0]
				same(t, it.Name, "Ayam Bawang")
				same(t, it.Variant, "Pedas")
				same(t, it.ItemID, "3661")
				same(t, it.VariantID, "36629111")
				same(t, it.Category, "Makanan")
				eq(t, it.UnitPrice, "51001")
				eq(t, it.DiscountAmount, "5100.1")
				if len(it.Modifiers) != 1 || it.Modifiers[0].Name != "Extra pedas" {
					t.Errorf("modifiers %+v", it.Modifiers)
				}
			}},
		{"v3 names win over GoBiz ones", map[string]string{"checkouts": `[{"item_name":"A","name":"B","item_variant_name":"V",` +
			`"variant_name":"W","item_variant_id":1,"variant_id":2,"category":"Kat","quantity":1,"price":1,` +
			`"modifiers":[{"modifier_option_name":"O","option_name":"P","modifier_name":"G"},{"modifier_name":"G"}]}]`},
			func(t *testing.T, tx unified.Transaction) {
				it := tx.Items[0]
				same(t, it.Name+"|"+it.Variant+"|"+it.VariantID+"|"+it.Category, "A|V|1|Kat")
				same(t, it.Modifiers[0].Name+"|"+it.Modifiers[1].Name, "O|G")
			}},
		{"GoBiz payment date", map[string]string{"created_at": "", "transaction_date": `"2020-08-03T15:30:50.748+07:00"`},
			func(t *testing.T, tx unified.Transaction) {
				same(t, tx.Timestamp.Format(time.RFC3339Nano), "2020-08-03T15:30:50.748+07:00")
				same(t, tx.BusinessDate, "2020-08-03")
			}},
		{"payment_date", map[string]string{"created_at": "null", "transaction_date": "", "payment_date": `"2020-08-03T23:10:00+08:00"`},
			func(t *testing.T, tx unified.Transaction) {
				same(t, tx.Timestamp.Format(time.RFC3339), "2020-08-03T23:10:00+08:00")
			}},
		{"created_at wins over transaction_date", map[string]string{"transaction_date": `"2020-08-03T15:30:50.748+07:00"`},
			func(t *testing.T, tx unified.Transaction) { same(t, tx.BusinessDate, "2018-01-27") }},
		{"refunds listed and on top: the larger", map[string]string{"is_refunded": "true", "refund_amount": "100",
			"payment_refunds": `[{"id":1,"refund_amount":-60,"refund_type":"partial"},{"id":2,"refund_amount":60}]`},
			func(t *testing.T, tx unified.Transaction) { status(t, tx, unified.StatusPartiallyRefunded, "120") }},
		{"deleted refund counts for nothing", map[string]string{
			"payment_refunds": `[{"id":1,"refund_amount":60,"refund_type":"partial","is_deleted":true}]`},
			func(t *testing.T, tx unified.Transaction) { status(t, tx, unified.StatusCompleted, "0") }},
		{"partial refunds covering the amount", map[string]string{"refund_amount": "",
			"payment_refunds": `[{"refund_amount":72650,"refund_type":"partial"},{"refund_amount":0.5395,"refund_type":"partial"}]`},
			func(t *testing.T, tx unified.Transaction) { status(t, tx, unified.StatusRefunded, "72650.5395") }},
		{"checkouts win over items", map[string]string{"items": `[{"item_name":"X","quantity":1,"price":1}]`},
			func(t *testing.T, tx unified.Transaction) { same(t, len(tx.Items), 2) }},
		{"no lines", map[string]string{"checkouts": "null"},
			func(t *testing.T, tx unified.Transaction) { same(t, len(tx.Items), 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx, err := mapWith(t, tc.fields)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, tx)
			if _, err := tx.Canonical(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func eq(t *testing.T, d unified.Decimal, want string) {
	t.Helper()
	if d.String() != want {
		t.Errorf("got %s, want %s", d, want)
	}
}

func same[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func status(t *testing.T, tx unified.Transaction, s unified.Status, refund string) {
	t.Helper()
	if tx.Status != s {
		t.Errorf("status %s, want %s", tx.Status, s)
	}
	eq(t, tx.RefundAmount, refund)
}

func TestMapPaymentRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields map[string]string
		field  string
	}{
		{"no id", map[string]string{"id": "", "guid": ""}, "id"},
		{"id object", map[string]string{"id": "{}"}, "id"},
		{"no amount", map[string]string{"total_collected": ""}, "total_collected"},
		{"amount text", map[string]string{"total_collected": `"12a"`}, "total_collected"},
		{"amount NaN", map[string]string{"total_collected": `"NaN"`}, "total_collected"},
		{"amount true", map[string]string{"total_collected": "true"}, "total_collected"},
		{"huge exponent", map[string]string{"taxes": "1e999999"}, "taxes"},
		{"bad tax line", map[string]string{"taxes": "", "total_tax_amount": "", "payment_taxes": `[{"total":"x"}]`}, "taxes"},
		{"no created_at", map[string]string{"created_at": ""}, "created_at"},
		{"v3 date without created_at", map[string]string{"created_at": "", "transaction_date": `"2018-01-27"`}, "created_at"},
		{"bad GoBiz date", map[string]string{"created_at": "", "transaction_date": `"03/08/2020 15:30"`}, "transaction_date"},
		{"refund row", map[string]string{"parent_payment_id": `"0a1"`}, "parent_payment_id"},
		{"parent id object", map[string]string{"parent_payment_id": `{}`}, "parent_payment_id"},
		{"line item_id object", map[string]string{"checkouts": `[{"quantity":1,"price":1,"item_id":{}}]`}, "checkouts[0].item_id"},
		{"refund id object", map[string]string{"payment_refunds": `[{"id":[],"refund_amount":1}]`}, "payment_refunds[0].id"},
		{"bad created_at", map[string]string{"created_at": `"27/01/2018"`}, "created_at"},
		{"created_at number", map[string]string{"created_at": "1517060414"}, "created_at"},
		{"year 1900", map[string]string{"created_at": `"1900-01-01T00:00:00+07:00"`}, "created_at"},
		{"is_deleted text", map[string]string{"is_deleted": `"maybe"`}, "is_deleted"},
		{"checkouts object", map[string]string{"checkouts": "{}"}, "checkouts"},
		{"checkout element", map[string]string{"checkouts": "[1]"}, "checkouts[0]"},
		{"line without quantity", map[string]string{"checkouts": `[{"item_name":"a","price":1}]`}, "checkouts[0].quantity"},
		{"line without price", map[string]string{"checkouts": `[{"item_name":"a","quantity":1}]`}, "checkouts[0].price"},
		{"modifier price", map[string]string{"checkouts": `[{"quantity":1,"price":1,"modifiers":[{"price":"x"}]}]`}, "checkouts[0].modifiers[0].price"},
		{"outlet id object", map[string]string{"outlet_id": "{}"}, "outlet_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mapWith(t, tc.fields)
			var me *MapError
			if !errors.As(err, &me) {
				t.Fatalf("want a MapError, got %v", err)
			}
			if me.Field != tc.field {
				t.Errorf("field %q, want %q (%v)", me.Field, tc.field, err)
			}
		})
	}
	if _, err := MapPayment(json.RawMessage(`[1]`), sampleCtx()); err == nil {
		t.Error("array accepted")
	}
	if _, err := MapPayment(json.RawMessage(samplePayment), MapContext{}); !errors.Is(err, ErrNoBusinessID) {
		t.Errorf("no business: %v", err)
	}
	// The outlet falls back to the walked one.
	m := sampleCtx()
	m.DefaultOutletID = "777"
	var raw map[string]json.RawMessage
	_ = json.Unmarshal([]byte(samplePayment), &raw)
	delete(raw, "outlet_id")
	b, _ := json.Marshal(raw)
	if tx, err := MapPayment(b, m); err != nil || tx.OutletID != "777" {
		t.Errorf("default outlet: %v %q", err, tx.OutletID)
	}
}

func TestMapItem(t *testing.T) {
	item := `{"id": 101, "name": "Es Kopi Susu", "is_deleted": false, "sku": "EKS",
	  "category": {"id": 5, "name": "Kopi"},
	  "item_variants": [
	    {"id": 1001, "name": "Regular", "sku": "EKS-R", "price": 22000.0, "in_stock": 3, "track_stock": false},
	    {"id": 1002, "name": "Large", "price": 28000.5},
	    {"id": 1003, "name": "Old", "price": 1, "is_deleted": true},
	    {"id": 1004, "name": "Es Kopi Susu", "price": 30000}],
	  "active_modifiers": [{"id": 7, "name": "Tambahan", "modifier_options": [
	    {"id": 71, "name": "Extra shot", "price": 5000}, {"id": 72, "name": "Gone", "price": 1, "is_deleted": true}]}]}`
	m := sampleCtx()
	m.DefaultOutletID = "12345"
	prods, mods, err := MapItem(json.RawMessage(item), m)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, p := range append(prods, mods...) {
		got = append(got, p.ExternalID+"|"+p.Name+"|"+p.Category+"|"+p.SKU+"|"+p.Price.String()+"|"+p.OutletID)
	}
	want := []string{
		"1001|Es Kopi Susu (Regular)|Kopi|EKS-R|22000|12345",
		"1002|Es Kopi Susu (Large)|Kopi|EKS|28000.5|12345",
		"1004|Es Kopi Susu|Kopi|EKS|30000|12345",
		"modifier_option-71|Extra shot|Tambahan||5000|12345",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	prods, _, err = MapItem(json.RawMessage(`{"id":"x9","name":"Kue","category_name":"Camilan","price":"17500"}`), m)
	if err != nil || len(prods) != 1 || prods[0].ExternalID != "item-x9" || prods[0].Category != "Camilan" || prods[0].Price.String() != "17500" {
		t.Fatalf("item without variants: %+v %v", prods, err)
	}
	if p, _, err := MapItem(json.RawMessage(`{"id":1,"is_deleted":true}`), m); err != nil || len(p) != 0 {
		t.Fatalf("deleted item: %+v %v", p, err)
	}
	for _, bad := range []string{`{"name":"x"}`, `{"id":1,"item_variants":[{"name":"v"}]}`, `{"id":1,"item_variants":[{"id":2,"price":"x"}]}`, `[]`} {
		var me *MapError
		if _, _, err := MapItem(json.RawMessage(bad), m); !errors.As(err, &me) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestMapItemCatalogueIDs(t *testing.T) {
	m := sampleCtx()
	m.DefaultOutletID = "12345"
	item := `{"id": 101, "name": "Es Kopi Susu", "category": {"name": "Kopi"},
	  "item_variants": [{"id": 1001, "name": " Regular ", "price": 22000}, {"id": "1004", "name": "Es Kopi Susu", "price": 30000}],
	  "active_modifiers": [{"id": 7, "name": "Tambahan", "modifier_options": [{"id": 71, "name": "Extra shot", "price": 5000}]}]}`
	prods, mods, err := MapItem(json.RawMessage(item), m)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range append(prods, mods...) {
		got = append(got, p.ExternalID+"|"+p.ItemID+"|"+p.VariantID+"|"+p.Variant+"|"+p.Name)
	}
	want := []string{
		"1001|101|1001|Regular|Es Kopi Susu (Regular)",
		"1004|101|1004|Es Kopi Susu|Es Kopi Susu",
		"modifier_option-71||||Extra shot",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	prods, _, err = MapItem(json.RawMessage(`{"id":"x9","name":"Kue","price":"17500"}`), m)
	if err != nil || prods[0].ItemID != "x9" || prods[0].VariantID != "" || prods[0].Variant != "" {
		t.Fatalf("item without variants: %+v %v", prods, err)
	}
}

// TestMapRefund: a payment row that points at a sale with
// parent_payment_id is read as a refund of that sale, never as a sale.
func TestMapRefund(t *testing.T) {
	for _, tc := range []struct {
		name, raw, parent, amount string
		partial, voided, ok       bool
	}{
		{"refund_amount", `{"id":"r1","parent_payment_id":"p1","refund_amount":1500.5,"refund_type":"partial","total_collected":-9}`,
			"p1", "1500.5", true, false, true},
		{"negative total only", `{"id":7,"parent_payment_id":6,"total_collected":-72650.5395,"refund_type":null}`, "6", "72650.5395", false, false, true},
		{"v1 total", `{"id":7,"parent_payment_id":6,"total_collected_amount":"-10.0"}`, "6", "10", false, false, true},
		{"listed refunds", `{"id":7,"parent_payment_id":6,"refund_amount":0,"payment_refunds":[{"refund_amount":-3,"refund_type":"partial"},{"refund_amount":4}]}`,
			"6", "7", true, false, true},
		{"voided refund", `{"id":7,"parent_payment_id":6,"refund_amount":5,"is_deleted":true}`, "6", "5", false, true, true},
		{"a sale", `{"id":7,"total_collected":5}`, "", "0", false, false, false},
		{"null parent", `{"id":7,"parent_payment_id":null}`, "", "0", false, false, false},
		{"own id as parent", `{"id":7,"parent_payment_id":"7"}`, "", "0", false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent, rf, ok, err := MapRefund(json.RawMessage(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.ok || parent != tc.parent || rf.Amount.String() != tc.amount || rf.Partial != tc.partial || rf.Voided != tc.voided {
				t.Fatalf("got %q %+v %v", parent, rf, ok)
			}
			if ok && rf.ID == "" {
				t.Fatal("no refund id")
			}
		})
	}
	at, _ := time.Parse(time.RFC3339, "2026-03-10T10:00:00+07:00")
	if _, rf, _, _ := MapRefund(json.RawMessage(`{"id":1,"parent_payment_id":2,"refund_amount":1,"created_at":"2026-03-10T10:00:00+07:00"}`)); !rf.At.Equal(at) {
		t.Errorf("at %v", rf.At)
	}
	for _, bad := range []string{
		`{"guid":null,"parent_payment_id":2,"refund_amount":1}`,
		`{"id":1,"parent_payment_id":2,"refund_amount":"x"}`,
		`{"id":1,"parent_payment_id":2,"payment_refunds":[{"refund_amount":true}]}`,
		`{"id":1,"parent_payment_id":2,"is_deleted":"perhaps"}`,
	} {
		var me *MapError
		if _, _, _, err := MapRefund(json.RawMessage(bad)); !errors.As(err, &me) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// TestRefundRowsCountOnce: refunds known apart from a sale (refund rows)
// add to what the sale lists itself, each refund once by id.
func TestRefundRowsCountOnce(t *testing.T) {
	mapExtra := func(fields map[string]string, extra ...Refund) unified.Transaction {
		t.Helper()
		var m map[string]json.RawMessage
		_ = json.Unmarshal([]byte(samplePayment), &m)
		for k, v := range fields {
			m[k] = json.RawMessage(v)
		}
		b, _ := json.Marshal(m)
		var r rawPayment
		if err := decodePayment(b, &r); err != nil {
			t.Fatal(err)
		}
		tx, err := mapPayment(&r, sampleCtx(), extra)
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	d := unified.MustDecimal
	// A sale with no refund of its own: the rows decide.
	status(t, mapExtra(nil, Refund{ID: "r1", Amount: d("1000"), Partial: true}), unified.StatusPartiallyRefunded, "1000")
	status(t, mapExtra(nil, Refund{ID: "r1", Amount: d("72650.5395")}), unified.StatusRefunded, "72650.5395")
	status(t, mapExtra(nil, Refund{ID: "r1", Amount: d("1000"), Partial: true}, Refund{ID: "r2", Amount: d("500"), Partial: true}),
		unified.StatusPartiallyRefunded, "1500")
	status(t, mapExtra(nil, Refund{ID: "r1", Amount: d("1000"), Partial: true, Voided: true}), unified.StatusCompleted, "0")
	// The sale also lists r1 (and says so on top): r1 is not added again;
	// r2, which it does not list yet, is.
	listed := map[string]string{"is_refunded": "true", "refund_type": `"partial"`, "refund_amount": "1000",
		"payment_refunds": `[{"id":"r1","refund_amount":1000,"refund_type":"partial"}]`}
	status(t, mapExtra(listed, Refund{ID: "r1", Amount: d("1000"), Partial: true}), unified.StatusPartiallyRefunded, "1000")
	status(t, mapExtra(listed, Refund{ID: "r1", Amount: d("1000"), Partial: true}, Refund{ID: "r2", Amount: d("250"), Partial: true}),
		unified.StatusPartiallyRefunded, "1250")
	// A void wins.
	status(t, mapExtra(map[string]string{"is_deleted": "true"}, Refund{ID: "r1", Amount: d("5"), Partial: true}), unified.StatusVoid, "5")
}
