package jurnalsink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink/internal/mekari"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/store"
)

// handle does what one record needs and returns its outlet ("" when it is
// not a sale).
func (s *Sink) handle(ctx context.Context, r store.Record) (string, error) {
	if r.Kind != "transaction" {
		return "", nil // products are created when a sale needs them
	}
	var t unified.Transaction
	if err := json.Unmarshal(r.Data, &t); err != nil {
		return "", &recordError{fmt.Errorf("the record cannot be read: %w", err)}
	}
	if t.OutletID == "" || t.ExternalID == "" {
		return "", &recordError{errors.New("the record has no outlet or sale id")}
	}
	if !s.wanted(t.OutletID) {
		return "", nil
	}
	// Once more when Jurnal no longer has a product or the contact the
	// sink knew (heal.go): the second time they are found or created.
	err := retryMissing(func() error {
		if s.cfg.Mode == ModeDailySummary {
			return s.ledger(ctx, t)
		}
		return s.postSale(ctx, t, nil)
	})
	if err == nil {
		s.noteSynced(t.OutletID)
	}
	return t.OutletID, err
}

// saleKey is the state key of a sale.
func saleKey(t unified.Transaction) string { return "s/" + t.OutletID + "/" + t.ExternalID }

// postSale posts what a version of a sale needs beyond what was posted for
// it: the invoice and its payment the first time; for an edit, an invoice
// of what it added or a sales return of what it took off; for a void or
// refund, a sales return of what was taken back since. st, when not nil,
// is the state to start from (a sale of a day already posted in
// daily_summary mode).
func (s *Sink) postSale(ctx context.Context, t unified.Transaction, st *saleState) error {
	key := saleKey(t)
	fresh := false // nothing remembered of the sale
	if st == nil {
		st = &saleState{}
		found, err := getJSON(s.docs, key, st)
		if err != nil {
			return &storeError{err}
		}
		fresh = !found
	}
	save := func() error {
		if err := putJSON(s.docs, key, st); err != nil {
			return &storeError{err}
		}
		return nil
	}
	cid := CustomID(t.OutletID, t.ExternalID)
	if len(st.Invoices) == 0 {
		if s.cfg.Mode == ModeInvoice {
			day, err := s.leaveLedger(t)
			if err != nil {
				return err
			}
			if day != nil && fresh {
				return s.late(ctx, t, day) // in a day's invoice already
			}
		}
		if t.Status == unified.StatusVoid {
			if st.Void {
				return nil
			}
			st.Void, st.Date = true, t.BusinessDate // voided before it was posted: nothing to post
			return save()
		}
		lines, err := s.linesOf(ctx, t)
		if err != nil {
			return err
		}
		if len(lines) == 0 {
			st.Void, st.Date = true, t.BusinessDate // nothing was collected: no document
			return save()
		}
		st.Date = t.BusinessDate
		net := total(lines)
		if err := s.invoice(ctx, t, st, save, cid, lines, "Moka sale "+t.ReceiptNo, func() { st.Net = net }); err != nil {
			return err
		}
	}
	if err := s.pay(ctx, t, st, save); err != nil {
		return err
	}
	if st.Void && len(st.Invoices) > 0 {
		return nil // voided in a posted day's ledger: nothing of it was posted
	}
	// An edit in Moka after posting: the difference, never an edit of
	// the posted invoice.
	if t.Status != unified.StatusVoid && !t.Amount.Equal(st.Net) && t.Amount.Sign() >= 0 {
		tag := CustomID(t.OutletID, t.ExternalID, "adj", t.Amount.String())
		if d := t.Amount.Sub(st.Net); d.Sign() > 0 {
			if err := s.ensureProduct(ctx, productAdjustment, productIdentity{key: "special:" + productAdjustment, name: productAdjustment, category: "Moka"}); err != nil {
				return err
			}
			lines := []line{{Product: productAdjustment, Quantity: unified.DecimalFromInt(1), Rate: d, Description: "Edit in Moka after posting"}}
			if err := s.invoice(ctx, t, st, save, tag, lines, "Moka edit "+t.ReceiptNo, func() { st.Net = t.Amount }); err != nil {
				return err
			}
			if err := s.pay(ctx, t, st, save); err != nil {
				return err
			}
		} else if err := s.returns(ctx, t, st, save, tag, st.Net.Sub(t.Amount), false, func() { st.Net = t.Amount }); err != nil {
			return err
		}
	}
	target := reversal(t, st.Net)
	if target.Cmp(st.Net) > 0 {
		target = st.Net
	}
	delta := target.Sub(st.Reversed)
	if delta.Sign() <= 0 {
		return nil
	}
	tag := CustomID(t.OutletID, t.ExternalID, "ret", target.String())
	if t.Status == unified.StatusVoid {
		tag = CustomID(t.OutletID, t.ExternalID, "void")
	}
	return s.returns(ctx, t, st, save, tag, delta, t.Status == unified.StatusVoid, func() { st.Reversed = target })
}

// invoice creates an invoice of the sale with custom_id cid and adds it
// to st; finish updates st in the same save, so that the invoice and what
// it means are never separated by a crash.
func (s *Sink) invoice(ctx context.Context, t unified.Transaction, st *saleState, save func() error, cid string, lines []line, memo string, finish func()) error {
	for _, inv := range st.Invoices {
		if inv.CustomID == cid {
			finish()
			return save()
		}
	}
	if err := s.ensureContact(ctx); err != nil {
		return err
	}
	body := invoiceDoc{invoiceBody{
		TransactionDate: t.BusinessDate, DueDate: t.BusinessDate, PersonName: s.cfg.CustomerName,
		CustomID: cid, ReferenceNo: clip(t.ReceiptNo, 255), Memo: clip(memo, 255),
		Tags: s.tags(t.OutletID), WarehouseName: s.cfg.OutletWarehouses[t.OutletID], Lines: lineBodies(lines),
	}}
	ans, err := s.create(ctx, &st.Trying, save, "sales_invoices", "sales_invoice", cid, body, true)
	if err != nil {
		return s.heal(ctx, err, lines, &st.Healed, func(map[string]string) error { return save() })
	}
	st.Invoices = append(st.Invoices, postedInvoice{CustomID: cid, ID: ans.ID, No: ans.TransactionNo, Amount: total(lines), Lines: lines})
	st.Trying = ""
	finish()
	if err := save(); err != nil {
		return err
	}
	return s.notePosted(t.OutletID)
}

// pay creates the payment of every invoice of st that has none.
func (s *Sink) pay(ctx context.Context, t unified.Transaction, st *saleState, save func() error) error {
	for i := range st.Invoices {
		inv := &st.Invoices[i]
		if inv.Paid {
			continue
		}
		if inv.Amount.Sign() > 0 {
			pid := inv.CustomID + "-pay"
			body := paymentDoc{paymentBody{
				TransactionDate: st.Date, Records: []paymentRecord{{TransactionNo: inv.No, Amount: inv.Amount.String()}},
				PaymentMethodName: paymentMethod(t.PaymentMethod), DepositToName: s.account(t.PaymentMethod),
				CustomID: pid, Memo: clip("Moka payment "+t.ReceiptNo, 255), Tags: s.tags(t.OutletID),
			}}
			if _, err := s.create(ctx, &st.Trying, save, "receive_payments", "receive_payment", pid, body, false); err != nil {
				return err
			}
			if err := s.notePosted(t.OutletID); err != nil {
				return err
			}
		}
		inv.Paid, st.Trying = true, ""
		if err := save(); err != nil {
			return err
		}
	}
	return nil
}

// reversal is what of a sale's posted amount a version takes back: all of
// it for a void, the refunded amount for a refund.
func reversal(t unified.Transaction, posted unified.Decimal) unified.Decimal {
	switch t.Status {
	case unified.StatusVoid:
		return posted
	case unified.StatusRefunded:
		if t.RefundAmount.IsZero() {
			return posted
		}
		return t.RefundAmount
	case unified.StatusPartiallyRefunded:
		return t.RefundAmount
	}
	return unified.DecimalFromInt(0)
}

// returns posts sales returns taking amount back from the sale's invoices,
// the first first: custom_id tag on the first invoice, tag-2, tag-3 … on
// the others. A void (full) returns an untouched invoice's lines as
// posted. What each return took is saved with it (st.Taken), and finish
// updates st in the save of the last one, so a crash never posts one
// twice nor leaves one out.
func (s *Sink) returns(ctx context.Context, t unified.Transaction, st *saleState, save func() error, tag string, amount unified.Decimal, full bool, finish func()) error {
	left := amount.Sub(st.Taken[tag])
	for i := range st.Invoices {
		if left.Sign() <= 0 {
			break
		}
		inv := &st.Invoices[i]
		take := inv.left()
		if take.Cmp(left) > 0 {
			take = left
		}
		if take.Sign() <= 0 {
			continue
		}
		cid := tag
		if i > 0 {
			cid = fmt.Sprintf("%s-%d", tag, i+1)
		}
		clean := full && inv.Returned.IsZero() && len(inv.ReturnedQty) == 0 && total(inv.Lines).Equal(take)
		lines, err := returnLines(inv.Lines, inv.ReturnedQty, take, clean)
		if err != nil {
			return &recordError{fmt.Errorf("%s of sale %s: %w", t.Status, t.ReceiptNo, err)}
		}
		body := returnDoc{returnBody{
			TransactionDate: t.BusinessDate, CustomID: cid, InvoiceID: inv.ID,
			Memo: clip(fmt.Sprintf("Moka %s %s", t.Status, t.ReceiptNo), 255), Tags: s.tags(t.OutletID), Lines: lineBodies(lines),
		}}
		if _, err := s.create(ctx, &st.Trying, save, "sales_returns", "sales_return", cid, body, false); err != nil {
			return err
		}
		inv.Returned, st.Trying = inv.Returned.Add(take), ""
		if st.Taken == nil {
			st.Taken = map[string]unified.Decimal{}
		}
		st.Taken[tag] = st.Taken[tag].Add(take)
		if inv.ReturnedQty == nil {
			inv.ReturnedQty = map[string]unified.Decimal{}
		}
		for _, l := range lines {
			inv.ReturnedQty[l.Product] = inv.ReturnedQty[l.Product].Add(l.Quantity)
		}
		left = left.Sub(take)
		if err := save(); err != nil {
			return err
		}
		if err := s.notePosted(t.OutletID); err != nil {
			return err
		}
	}
	if left.Sign() > 0 {
		return &recordError{fmt.Errorf("%s of sale %s: %s more than its invoices in Jurnal hold", t.Status, t.ReceiptNo, left)}
	}
	finish()
	delete(st.Taken, tag)
	return save()
}

// create posts a document with custom_id cid, idempotently: a create sent
// before without a clear answer (*trying) is looked up first; a 409 means
// it exists. lookup asks for the existing document's transaction_no (an
// invoice, which its payment names).
func (s *Sink) create(ctx context.Context, trying *string, save func() error, path, env, cid string, body any, lookup bool) (docAnswer, error) {
	if *trying == cid && lookup {
		if a, ok, err := s.find(ctx, path, env, cid); err != nil || ok {
			return a, err
		}
	}
	if *trying != cid {
		*trying = cid
		if err := save(); err != nil {
			return docAnswer{}, err
		}
	}
	var out map[string]docAnswer
	err := s.api.Do(ctx, "POST", path, body, &out)
	switch {
	case err == nil:
		return answered(out, env, cid)
	case mekari.IsKind(err, mekari.Conflict):
		s.log.Info("Jurnal document exists already", "custom_id", cid)
		if !lookup {
			return docAnswer{CustomID: cid}, nil
		}
		a, ok, err := s.find(ctx, path, env, cid)
		if err == nil && !ok {
			err = fmt.Errorf("Jurnal says %s exists but does not find it", cid)
		}
		return a, err
	}
	return docAnswer{}, fmt.Errorf("%s %s: %w", strings.ReplaceAll(env, "_", " "), cid, err)
}

// find looks a document up by custom_id; Jurnal's "not found" (422 or 404)
// is ok = false.
func (s *Sink) find(ctx context.Context, path, env, cid string) (docAnswer, bool, error) {
	var out map[string]docAnswer
	err := s.api.Do(ctx, "GET", path+"/"+url.PathEscape(cid), nil, &out)
	switch {
	case err == nil:
		a, err := answered(out, env, cid)
		return a, err == nil, err
	case mekari.IsKind(err, mekari.NotFound):
		return docAnswer{}, false, nil
	}
	return docAnswer{}, false, fmt.Errorf("look up %s %s: %w", env, cid, err)
}

// answered is the document of custom_id cid in a 2xx answer: a status
// alone does not say the document exists, so an answer without it (an empty
// body, another envelope, another document, no transaction_no for the
// payment to name) is a failure to retry — the create is then looked up or
// meets a 409 — never a posted document.
func answered(out map[string]docAnswer, env, cid string) (docAnswer, error) {
	a := out[env]
	if a.ID == 0 || a.TransactionNo == "" || (a.CustomID != "" && a.CustomID != cid) {
		return docAnswer{}, &mekari.Error{Kind: mekari.Server,
			Message: fmt.Sprintf("Jurnal's answer does not hold %s %s", strings.ReplaceAll(env, "_", " "), cid)}
	}
	return a, nil
}

// linesOf makes sure the products of t exist in Jurnal and returns its
// lines.
func (s *Sink) linesOf(ctx context.Context, t unified.Transaction) ([]line, error) {
	names := make([]string, len(t.Items))
	for i, it := range t.Items {
		id := identityOf(it)
		name, err := s.productName(ctx, id)
		if err != nil {
			return nil, err
		}
		names[i] = name
	}
	lines := saleLines(t, names)
	for _, l := range lines {
		switch l.Product {
		case productTax, productService, productAdjustment:
			if err := s.ensureProduct(ctx, l.Product, productIdentity{key: "special:" + l.Product, name: l.Product, category: "Moka"}); err != nil {
				return nil, err
			}
		}
	}
	return lines, nil
}

// productIdentity is how a Moka product is matched: key names it in the
// sink's state, name and category are what a new Jurnal product gets.
type productIdentity struct {
	key, name, category, sku string
}

// identityOf is the identity of an item: its SKU, else Moka's item and
// variant ids, else its name and variant.
func identityOf(it unified.Item) productIdentity {
	name := it.Name
	if it.Variant != "" {
		name += " - " + it.Variant
	}
	id := productIdentity{name: clip(name, 255), category: clip(it.Category, 255), sku: strings.TrimSpace(it.SKU)}
	switch {
	case id.sku != "":
		id.key = "sku:" + id.sku
	case it.ItemID != "":
		id.key = "item:" + it.ItemID + "/" + it.VariantID
	default:
		id.key = "name:" + strings.ToLower(name)
	}
	if id.name == "" {
		id.name = "Moka item " + it.ItemID
	}
	return id
}

// productName returns the Jurnal name of a Moka product, finding (by
// product_code, then name) or creating it the first time.
func (s *Sink) productName(ctx context.Context, id productIdentity) (string, error) {
	var ps productState
	if ok, err := getJSON(s.docs, "p/"+id.key, &ps); err != nil {
		return "", &storeError{err}
	} else if ok {
		return ps.Name, nil
	}
	if err := s.ensureProduct(ctx, id.name, id); err != nil {
		return "", err
	}
	var got productState
	if _, err := getJSON(s.docs, "p/"+id.key, &got); err != nil {
		return "", &storeError{err}
	}
	return got.Name, nil
}

// lookupPageSize is how many rows a master-data lookup reads a page: more
// than Jurnal's default of 20, as its filter is loose and the row that is
// the product or contact may come after many near ones; 50, not Jurnal's
// maximum of 100: a page of 100 has been seen to run past a 30 s deadline
// (reference/jurnal-api.md §5). lookupMaxPages bounds the pages read.
const (
	lookupPageSize = 50
	lookupMaxPages = 20
)

type productRow struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Code string `json:"product_code"`
}

// lookupRow reads the rows of the master-data list (a path and the
// answer's envelope, "products" or "customers") filtered by field = value,
// page after page until a row is the one wanted (is) or a page is short:
// only a row that is it counts, as the API promises no exact filter.
func lookupRow[T any](ctx context.Context, api *mekari.Client, list, field, value string, is func(T) bool) (T, bool, error) {
	var zero T
	for p := 1; p <= lookupMaxPages; p++ {
		var env map[string]json.RawMessage
		q := fmt.Sprintf("%s?%s=%s&page=%d&page_size=%d", list, field, url.QueryEscape(value), p, lookupPageSize)
		if err := api.Do(ctx, "GET", q, nil, &env); err != nil {
			return zero, false, err
		}
		var rows []T
		if raw := env[list]; len(raw) > 0 {
			if err := json.Unmarshal(raw, &rows); err != nil {
				return zero, false, &mekari.Error{Kind: mekari.Server, Message: "Jurnal's list of " + list + " is not the JSON Jurnal sends"}
			}
		}
		if i := slices.IndexFunc(rows, is); i >= 0 {
			return rows[i], true, nil
		}
		if len(rows) < lookupPageSize {
			break
		}
	}
	return zero, false, nil
}

// ensureProduct makes sure the product of identity id exists in Jurnal and
// remembers its Jurnal name.
func (s *Sink) ensureProduct(ctx context.Context, name string, id productIdentity) error {
	if _, ok, err := s.docs.GetDoc(Collection, "p/"+id.key); err != nil {
		return &storeError{err}
	} else if ok {
		return nil
	}
	remember := func(n string, jid int64) error {
		if err := putJSON(s.docs, "p/"+id.key, productState{Name: n, ID: jid}); err != nil {
			return &storeError{err}
		}
		return nil
	}
	// By code, then by name. Only a row that is the product counts: the
	// API promises no exact filter, and a near name ("Kopi Susu Gula
	// Aren" for "Kopi Susu") would put the sale on another product.
	type lookup struct{ field, value string }
	var lookups []lookup
	if id.sku != "" {
		lookups = append(lookups, lookup{"product_code", id.sku})
	}
	lookups = append(lookups, lookup{"name", name})
	for _, l := range lookups {
		p, ok, err := lookupRow(ctx, s.api, "products", l.field, l.value, func(p productRow) bool {
			if l.field == "product_code" {
				return sameName(p.Code, l.value)
			}
			return sameName(p.Name, l.value)
		})
		if err != nil {
			return fmt.Errorf("look up product: %w", err)
		}
		if ok {
			return remember(p.Name, p.ID)
		}
	}
	body := map[string]any{"product": map[string]any{
		"name": name, "product_code": id.sku, "unit_name": "Pcs", "product_categories_string": id.category,
		"is_sold": true,
	}}
	var created struct {
		Product productRow `json:"product"`
	}
	if err := s.api.Do(ctx, "POST", "products", body, &created); err != nil {
		if taken(err) {
			return remember(name, 0) // created meanwhile (a create whose answer was lost)
		}
		return fmt.Errorf("create product %q: %w", name, err)
	}
	s.log.Info("Jurnal product created", "product", name)
	return remember(name, created.Product.ID)
}

// ensureNamed makes sure the products lines name exist in Jurnal, known
// by their name alone (the lines of a ledger kept while the sink posted to
// another company): found by name, or created.
func (s *Sink) ensureNamed(ctx context.Context, lines []line) error {
	seen := map[string]bool{}
	for _, l := range lines {
		key := "name:" + strings.ToLower(l.Product)
		if seen[key] {
			continue
		}
		seen[key] = true
		if err := s.ensureProduct(ctx, l.Product, productIdentity{key: key, name: l.Product}); err != nil {
			return err
		}
	}
	return nil
}

// sameName reports whether a name or code in Jurnal is want: equal, case
// and surrounding space aside.
func sameName(have, want string) bool {
	return strings.EqualFold(strings.TrimSpace(have), strings.TrimSpace(want))
}

// taken reports whether err is Jurnal refusing a create because the name
// or code is in use: the master record exists.
func taken(err error) bool {
	var me *mekari.Error
	return errors.As(err, &me) && me.Kind == mekari.Invalid && strings.Contains(strings.ToLower(me.Message), "taken")
}

// ensureContact makes sure the walk-in contact exists in Jurnal.
func (s *Sink) ensureContact(ctx context.Context) error {
	name := clip(s.cfg.CustomerName, 255)
	if _, ok, err := s.docs.GetDoc(Collection, "c/"+name); err != nil {
		return &storeError{err}
	} else if ok {
		return nil
	}
	type contact struct {
		DisplayName string `json:"display_name"`
	}
	// Only a row that is the contact counts: invoices name it by display
	// name.
	_, found, err := lookupRow(ctx, s.api, "customers", "display_name", name, func(c contact) bool { return sameName(c.DisplayName, name) })
	if err != nil {
		return fmt.Errorf("look up contact: %w", err)
	}
	if !found {
		body := map[string]any{"customer": map[string]any{"display_name": name}}
		// "Taken": it is there after all, beyond the pages the lookup
		// read (or created by a create whose answer was lost).
		switch err := s.api.Do(ctx, "POST", "customers", body, nil); {
		case err == nil:
			s.log.Info("Jurnal contact created")
		case !mekari.IsKind(err, mekari.Conflict) && !taken(err):
			return fmt.Errorf("create contact: %w", err)
		}
	}
	if _, err := s.docs.PutDoc(Collection, "c/"+name, []byte("{}"), nil); err != nil {
		return &storeError{err}
	}
	return nil
}

// paymentMethod names Moka's payment method as Jurnal's payment methods
// do.
func paymentMethod(m string) string {
	switch m = strings.ToLower(strings.TrimSpace(m)); {
	case m == "cash" || m == "" || m == "-" || m == "unknown":
		return "Cash"
	case m == "qris":
		return "QRIS"
	case strings.Contains(m, "debit"):
		return "Debit Card"
	case strings.Contains(m, "credit"), m == "card":
		return "Credit Card"
	case strings.Contains(m, "transfer"), m == "invoice":
		return "Bank Transfer"
	}
	return "E-Wallet"
}

// returnLines are the lines of a sales return taking delta back from an
// invoice of lines posted, of which returned was returned already. Jurnal
// accepts a return line only for a product on the invoice and for at most
// its invoiced quantity: a void returns every line as posted (full); a
// refund returns one unit of the largest line that has one left, at the
// refunded amount.
func returnLines(posted []line, returned map[string]unified.Decimal, delta unified.Decimal, full bool) ([]line, error) {
	if full {
		return slices.Clone(posted), nil
	}
	left := map[string]unified.Decimal{}
	for _, l := range posted {
		left[l.Product] = left[l.Product].Add(l.Quantity)
	}
	for p, q := range returned {
		left[p] = left[p].Sub(q)
	}
	one := unified.DecimalFromInt(1)
	best := -1
	for i, l := range posted {
		if l.Rate.Sign() <= 0 || left[l.Product].Cmp(one) < 0 {
			continue
		}
		if best < 0 || l.amount().Cmp(posted[best].amount()) > 0 {
			best = i
		}
	}
	if best < 0 {
		return nil, errors.New("nothing left on the Jurnal invoice to return")
	}
	return []line{{Product: posted[best].Product, Quantity: one, Rate: delta, Description: "Refund in Moka"}}, nil
}
