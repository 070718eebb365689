package jurnalfake

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"
)

// tagList is a list of tag names, sent as a JSON array or a comma-separated
// string.
type tagList []string

// UnmarshalJSON accepts ["a","b"], "a, b" or null.
func (t *tagList) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*t = list
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*t = nil
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*t = append(*t, v)
		}
	}
	return nil
}

// lineFields is a line of a sales invoice or sales return request.
type lineFields struct {
	ProductName string `json:"product_name"`
	ProductCode string `json:"product_code"`
	Description string `json:"description"`
	Quantity    amount `json:"quantity"`
	Rate        amount `json:"rate"`
	Discount    amount `json:"discount"`
	TaxName     string `json:"line_tax_name"`
}

// invoiceFields is the sales_invoice object of a create request.
type invoiceFields struct {
	TransactionDate string       `json:"transaction_date"`
	DueDate         string       `json:"due_date"`
	PersonName      string       `json:"person_name"`
	CustomID        string       `json:"custom_id"`
	ReferenceNo     string       `json:"reference_no"`
	TransactionNo   string       `json:"transaction_no"`
	TermName        string       `json:"term_name"`
	Memo            string       `json:"memo"`
	Tags            tagList      `json:"tags"`
	WarehouseName   string       `json:"warehouse_name"`
	Address         string       `json:"address"`
	ShippingAddress string       `json:"shipping_address"`
	Deposit         amount       `json:"deposit"`
	DepositToName   string       `json:"deposit_to_name"`
	Lines           []lineFields `json:"transaction_lines_attributes"`
}

// createInvoice: POST /sales_invoices {"sales_invoice":{…}}.
func (s *Server) createInvoice(req *apiRequest) *response {
	var b struct {
		Invoice *invoiceFields `json:"sales_invoice"`
	}
	if resp := decodeBody(req.body, &b); resp != nil {
		return resp
	}
	if b.Invoice == nil {
		return jurnalError(http.StatusBadRequest, "param is missing or the value is empty: sales_invoice")
	}
	in := b.Invoice
	req.log.CustomID = in.CustomID
	s.mu.Lock()
	defer s.mu.Unlock()
	if resp := s.customIDLocked(in.CustomID, s.invoiceByCustomIDLocked); resp != nil {
		return resp
	}
	inv, errs := s.buildInvoiceLocked(in)
	if !errs.empty() {
		req.log.Error = errs.first()
		return errs.response()
	}
	inv = s.storeInvoiceLocked(inv, req)
	return jsonResponse(http.StatusCreated, map[string]any{"sales_invoice": s.renderInvoiceLocked(inv)})
}

// customIDLocked applies the custom_id rules of a create: a rejected
// custom_id (RejectCustomID) is 422; a custom_id already used by a document
// of the kind is 409 naming that document's id, unless it holds a '#',
// which Jurnal's uniqueness check does not see.
func (s *Server) customIDLocked(customID string, find func(string) (int64, bool)) *response {
	if msg, ok := s.rejects[customID]; ok && customID != "" {
		var errs fieldErrors
		errs.add("base", msg)
		return errs.response()
	}
	if customID == "" || strings.Contains(customID, "#") {
		return nil
	}
	if id, ok := find(customID); ok {
		return jsonResponse(http.StatusConflict, map[string]any{
			"id": id, "custom_id": customID, "errors": MsgDuplicateCustomID,
		})
	}
	return nil
}

func (s *Server) invoiceByCustomIDLocked(customID string) (int64, bool) {
	for _, inv := range s.invoices {
		if inv.CustomID == customID {
			return inv.ID, true
		}
	}
	return 0, false
}

// checkHeader validates what every document shares: dates, custom_id,
// memo, tags.
func checkHeader(errs *fieldErrors, date *string, customID, memo string, tags []string) {
	if strings.TrimSpace(*date) == "" {
		errs.add("transaction_date", "Transaction date can't be blank")
	} else if iso, ok := parseDate(*date); ok {
		*date = iso
	} else {
		errs.add("transaction_date", "Transaction date is invalid")
	}
	checkLength(errs, "custom_id", "Custom id", customID, StringLimit)
	checkLength(errs, "memo", "Memo", memo, MemoLimit)
	if containsEmoji(memo) {
		errs.add("memo", MsgMemoEmoji)
	}
	for _, t := range tags {
		checkLength(errs, "tags", "Tag", t, StringLimit)
	}
}

// buildInvoiceLocked validates a create request against the master data
// and computes the invoice's amounts.
func (s *Server) buildInvoiceLocked(in *invoiceFields) (Invoice, *fieldErrors) {
	errs := &fieldErrors{}
	date := in.TransactionDate
	checkHeader(errs, &date, in.CustomID, in.Memo, in.Tags)
	inv := Invoice{
		CustomID: in.CustomID, ReferenceNo: strings.TrimSpace(in.ReferenceNo), TransactionDate: date,
		Memo: in.Memo, Tags: slices.Clone([]string(in.Tags)), TransactionNo: strings.TrimSpace(in.TransactionNo),
	}
	checkLength(errs, "reference_no", "Reference no", inv.ReferenceNo, StringLimit)
	checkLength(errs, "transaction_no", "Transaction no", inv.TransactionNo, StringLimit)
	checkLength(errs, "address", "Address", in.Address, AddressLimit)
	checkLength(errs, "shipping_address", "Shipping address", in.ShippingAddress, AddressLimit)
	if inv.TransactionNo != "" && slices.ContainsFunc(s.invoices, func(o Invoice) bool { return o.TransactionNo == inv.TransactionNo }) {
		errs.add("transaction_no", "Transaction no has already been taken")
	}
	inv.DueDate = inv.TransactionDate
	if strings.TrimSpace(in.DueDate) != "" {
		if iso, ok := parseDate(in.DueDate); !ok {
			errs.add("due_date", "Due date is invalid")
		} else if inv.TransactionDate != "" && iso < inv.TransactionDate {
			errs.add("due_date", "Due date must be on or after the transaction date")
		} else {
			inv.DueDate = iso
		}
	}
	inv.TermName = "Custom"
	if t, ok := containsName(s.master.terms, in.TermName); ok {
		inv.TermName = t
	}

	person := strings.TrimSpace(in.PersonName)
	if person == "" {
		errs.add("person_name", "Person name can't be blank")
	} else if c, ok := s.master.contact(person); ok {
		inv.PersonName = c.DisplayName
	} else {
		errs.add("person_name", doesNotExist("Contact", person))
	}
	if w := strings.TrimSpace(in.WarehouseName); w != "" {
		if name, ok := containsName(s.master.warehouses, w); ok {
			inv.Warehouse = name
		} else {
			errs.add("warehouse_name", doesNotExist("Warehouse", w))
		}
	}

	if len(in.Lines) == 0 {
		errs.add("transaction_lines_attributes", "Transaction lines can't be blank")
	}
	for _, l := range in.Lines {
		line, ok := s.buildLineLocked(errs, l)
		if !ok {
			continue
		}
		inv.Lines = append(inv.Lines, line)
		inv.Subtotal = inv.Subtotal.Add(line.Amount)
		inv.Tax = inv.Tax.Add(line.Tax)
	}
	inv.Total = inv.Subtotal.Add(inv.Tax)

	if in.Deposit.Bad || in.Deposit.Value.IsNegative() {
		errs.add("deposit", "Deposit is not a valid amount")
	} else if in.Deposit.Value.IsPositive() {
		if a, ok := s.master.account(in.DepositToName); ok {
			inv.DepositTo = a.Name
		} else {
			errs.add("deposit_to_name", doesNotExist("Account", in.DepositToName))
		}
		if in.Deposit.Value.GreaterThan(inv.Total) {
			errs.add("deposit", "Deposit cannot exceed the total amount")
		}
		inv.Deposit = in.Deposit.Value
	}
	inv.Paid = inv.Deposit
	inv.Remaining = inv.Total.Sub(inv.Paid)
	return inv, errs
}

// buildLineLocked validates one line: its product (by product_code, else
// product_name), quantity > 0, rate ≥ 0, discount a percent in [0, 100],
// tax by name.
func (s *Server) buildLineLocked(errs *fieldErrors, l lineFields) (Line, bool) {
	const field = "transaction_lines_attributes"
	ok := true
	var p Product
	var found bool
	switch {
	case strings.TrimSpace(l.ProductCode) != "":
		p, found = s.master.productByCode(l.ProductCode)
		if !found {
			errs.add(field, doesNotExist("Product code", strings.TrimSpace(l.ProductCode)))
			ok = false
		}
	case strings.TrimSpace(l.ProductName) != "":
		p, found = s.master.productByName(l.ProductName)
		if !found {
			errs.add(field, doesNotExist("Product", strings.TrimSpace(l.ProductName)))
			ok = false
		}
	default:
		errs.add(field, "Product can't be blank")
		ok = false
	}
	switch {
	case !l.Quantity.Set:
		errs.add(field, "Quantity can't be blank")
		ok = false
	case l.Quantity.Bad || !l.Quantity.Value.IsPositive():
		errs.add(field, "Quantity must be greater than 0")
		ok = false
	}
	switch {
	case !l.Rate.Set:
		errs.add(field, "Rate can't be blank")
		ok = false
	case l.Rate.Bad || l.Rate.Value.IsNegative():
		errs.add(field, "Rate must be greater than or equal to 0")
		ok = false
	}
	switch {
	case l.Discount.Bad || l.Discount.Value.IsNegative():
		errs.add(field, "Discount must be greater than or equal to 0")
		ok = false
	case l.Discount.Value.GreaterThan(decimal.NewFromInt(100)):
		errs.add(field, MsgDiscountTooLarge)
		ok = false
	}
	checkLength(errs, field, "Description", l.Description, DescriptionLimit)
	line := Line{ProductID: p.ID, ProductName: p.Name, ProductCode: p.Code, Description: l.Description,
		Quantity: l.Quantity.Value, Rate: l.Rate.Value, Discount: l.Discount.Value}
	if name := strings.TrimSpace(l.TaxName); name != "" {
		t, found := s.master.tax(name)
		if !found {
			errs.add(field, doesNotExist("Tax", name))
			ok = false
		}
		line.TaxName, line.TaxRate = t.Name, t.Rate
	}
	if !ok {
		return Line{}, false
	}
	line.Amount, line.Tax = lineAmounts(line.Quantity, line.Rate, line.Discount, line.TaxRate)
	return line, true
}

// storeInvoiceLocked gives a valid invoice its id and number and keeps it.
func (s *Server) storeInvoiceLocked(inv Invoice, req *apiRequest) Invoice {
	inv.ID = s.newIDLocked()
	for inv.TransactionNo == "" || slices.ContainsFunc(s.invoices, func(o Invoice) bool { return o.TransactionNo == inv.TransactionNo }) {
		inv.TransactionNo = s.newNoLocked("sales_invoice") // skips numbers a client chose
	}
	inv.CreatedAt = req.now
	s.invoices = append(s.invoices, inv)
	return inv
}

// invoiceLocked finds an invoice by id, transaction_no or custom_id (the
// first created, when batch_create or a '#' made several).
func (s *Server) invoiceLocked(key string) (int, bool) {
	if id, err := strconv.ParseInt(key, 10, 64); err == nil {
		for i, inv := range s.invoices {
			if inv.ID == id {
				return i, true
			}
		}
	}
	for i, inv := range s.invoices {
		if inv.TransactionNo == key {
			return i, true
		}
	}
	for i, inv := range s.invoices {
		if inv.CustomID == key {
			return i, true
		}
	}
	return 0, false
}

// getInvoice: GET /sales_invoices/{id|transaction_no|custom_id}. A key with
// '#' is 404 whatever exists (Jurnal's routing loses it).
func (s *Server) getInvoice(key string) *response {
	if strings.Contains(key, "#") {
		return jurnalError(http.StatusNotFound, MsgNotFound)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.invoiceLocked(key)
	if !ok {
		return s.notFoundLocked()
	}
	return jsonResponse(http.StatusOK, map[string]any{"sales_invoice": s.renderInvoiceLocked(s.invoices[i])})
}

// listInvoices: GET /sales_invoices?page&page_size&sort_key=transaction_date
// |transaction_no|id&sort_order=asc|desc (default: transaction_date desc).
func (s *Server) listInvoices(req *apiRequest) *response {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := slices.Clone(s.invoices)
	key, desc := first(req.query, "sort_key"), !strings.EqualFold(first(req.query, "sort_order"), "asc")
	less := func(a, b Invoice) bool {
		if key == "id" || key == "transaction_no" || a.TransactionDate == b.TransactionDate {
			return a.ID < b.ID
		}
		return a.TransactionDate < b.TransactionDate
	}
	sort.SliceStable(list, func(i, j int) bool {
		if desc {
			return less(list[j], list[i])
		}
		return less(list[i], list[j])
	})
	items, env := page(list, req.query)
	rendered := make([]map[string]any, 0, len(items))
	for _, inv := range items {
		rendered = append(rendered, s.renderInvoiceLocked(inv))
	}
	env["sales_invoices"] = rendered
	return jsonResponse(http.StatusOK, env)
}

// batchCreateInvoices: POST /sales_invoices/batch_create
// {"sales_invoices":[{…} or {"sales_invoice":{…}}, …]}. Every valid item is
// created; custom_id is NOT checked for uniqueness, against existing
// invoices or within the batch — the reason a sink must never use it.
func (s *Server) batchCreateInvoices(req *apiRequest) *response {
	var b struct {
		Invoices []json.RawMessage `json:"sales_invoices"`
	}
	if resp := decodeBody(req.body, &b); resp != nil {
		return resp
	}
	var items []*invoiceFields
	for _, raw := range b.Invoices {
		var wrapped struct {
			Invoice *invoiceFields `json:"sales_invoice"`
		}
		if err := json.Unmarshal(raw, &wrapped); err == nil && wrapped.Invoice != nil {
			items = append(items, wrapped.Invoice)
			continue
		}
		var in invoiceFields
		if err := json.Unmarshal(raw, &in); err != nil {
			return jurnalError(http.StatusBadRequest, "Request body is not valid JSON")
		}
		items = append(items, &in)
	}
	if len(items) == 0 {
		return jurnalError(http.StatusBadRequest, "param is missing or the value is empty: sales_invoices")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	created := []map[string]any{}
	failed := []map[string]any{}
	for i, in := range items {
		if msg, ok := s.rejects[in.CustomID]; ok && in.CustomID != "" {
			failed = append(failed, map[string]any{"index": i, "custom_id": in.CustomID, "errors": map[string][]string{"base": {msg}}})
			continue
		}
		inv, errs := s.buildInvoiceLocked(in)
		if !errs.empty() {
			failed = append(failed, map[string]any{"index": i, "custom_id": in.CustomID, "errors": errs.msgs})
			continue
		}
		inv.Batch = true
		inv = s.storeInvoiceLocked(inv, req)
		created = append(created, s.renderInvoiceLocked(inv))
	}
	status := http.StatusOK
	if len(created) == 0 {
		status = http.StatusUnprocessableEntity
	}
	return jsonResponse(status, map[string]any{"sales_invoices": created, "errors": failed})
}

// Invoices returns the invoices, in creation order (copies).
func (s *Server) Invoices() []Invoice {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.invoices)
	for i := range out {
		out[i].Tags = slices.Clone(out[i].Tags)
		out[i].Lines = slices.Clone(out[i].Lines)
	}
	return out
}

// Invoice returns the invoice with this custom_id (the first, if several).
func (s *Server) Invoice(customID string) (Invoice, bool) {
	for _, inv := range s.Invoices() {
		if inv.CustomID == customID {
			return inv, true
		}
	}
	return Invoice{}, false
}

// ---- rendering ----

func renderTags(tags []string) []map[string]string {
	out := make([]map[string]string, 0, len(tags))
	for _, t := range tags {
		out = append(out, map[string]string{"name": t})
	}
	return out
}

func renderLines(lines []Line) []map[string]any {
	out := make([]map[string]any, 0, len(lines))
	for _, l := range lines {
		m := map[string]any{
			"product":     map[string]any{"id": l.ProductID, "name": l.ProductName, "product_code": l.ProductCode},
			"description": l.Description,
			"quantity":    money(l.Quantity),
			"rate":        money(l.Rate),
			"discount":    money(l.Discount),
			"amount":      money(l.Amount),
			"tax_amount":  money(l.Tax),
			"line_tax":    nil,
		}
		if l.TaxName != "" {
			m["line_tax"] = map[string]any{"name": l.TaxName, "rate": money(l.TaxRate)}
		}
		out = append(out, m)
	}
	return out
}

// invoiceStatus is the transaction_status of an invoice.
func invoiceStatus(inv Invoice) map[string]any {
	switch {
	case !inv.Remaining.IsPositive():
		return map[string]any{"id": 3, "name": "Paid", "name_bahasa": "Lunas"}
	case inv.Paid.IsPositive():
		return map[string]any{"id": 2, "name": "Partial", "name_bahasa": "Dibayar Sebagian"}
	}
	return map[string]any{"id": 1, "name": "Open", "name_bahasa": "Belum Dibayar"}
}

func (s *Server) renderInvoiceLocked(inv Invoice) map[string]any {
	person := map[string]any{"display_name": inv.PersonName}
	if c, ok := s.master.contact(inv.PersonName); ok {
		person["id"] = c.ID
	}
	var warehouse any
	if inv.Warehouse != "" {
		warehouse = map[string]string{"name": inv.Warehouse}
	}
	return map[string]any{
		"id":                               inv.ID,
		"transaction_no":                   inv.TransactionNo,
		"custom_id":                        inv.CustomID,
		"reference_no":                     inv.ReferenceNo,
		"memo":                             inv.Memo,
		"tags":                             renderTags(inv.Tags),
		"tags_string":                      strings.Join(inv.Tags, ", "),
		"transaction_date":                 showDate(inv.TransactionDate),
		"due_date":                         showDate(inv.DueDate),
		"term":                             map[string]string{"name": inv.TermName},
		"person":                           person,
		"warehouse":                        warehouse,
		"transaction_status":               invoiceStatus(inv),
		"subtotal":                         money(inv.Subtotal),
		"tax_amount":                       money(inv.Tax),
		"original_amount":                  money(inv.Total),
		"original_amount_currency_format":  currency(inv.Total),
		"deposit":                          money(inv.Deposit),
		"payment_received_amount":          money(inv.Paid),
		"remaining":                        money(inv.Remaining),
		"remaining_currency_format":        currency(inv.Remaining),
		"has_payments":                     inv.Paid.IsPositive(),
		"deletable":                        !inv.Paid.IsPositive() && inv.Returned.IsZero(),
		"transaction_lines_attributes":     renderLines(inv.Lines),
		"returned_amount":                  money(inv.Returned),
		"returned_amount_currency_format":  currency(inv.Returned),
		"payment_received_currency_format": currency(inv.Paid),
		"subtotal_currency_format":         currency(inv.Subtotal),
		"tax_amount_currency_format":       currency(inv.Tax),
		"deposit_currency_format":          currency(inv.Deposit),
	}
}
