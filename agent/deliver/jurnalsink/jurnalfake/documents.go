package jurnalfake

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"
)

// findDoc finds a document by id, transaction_no or custom_id, in that
// order of precedence (the first created among equal custom_ids).
func findDoc[T any](list []T, key string, fields func(T) (int64, string, string)) (int, bool) {
	if id, err := strconv.ParseInt(key, 10, 64); err == nil {
		for i, d := range list {
			if did, _, _ := fields(d); did == id {
				return i, true
			}
		}
	}
	for i, d := range list {
		if _, no, _ := fields(d); no == key {
			return i, true
		}
	}
	for i, d := range list {
		if _, _, cid := fields(d); cid == key {
			return i, true
		}
	}
	return 0, false
}

func byCustomID[T any](list []T, fields func(T) (int64, string, string)) func(string) (int64, bool) {
	return func(customID string) (int64, bool) {
		for _, d := range list {
			if id, _, cid := fields(d); cid == customID {
				return id, true
			}
		}
		return 0, false
	}
}

func paymentFields(p Payment) (int64, string, string) { return p.ID, p.TransactionNo, p.CustomID }
func returnFields(r Return) (int64, string, string)   { return r.ID, r.TransactionNo, r.CustomID }
func journalFields(j JournalEntry) (int64, string, string) {
	return j.ID, j.TransactionNo, j.CustomID
}

// recompute sets an invoice's Remaining from its total, payments and
// returns (never below zero).
func recompute(inv *Invoice) {
	inv.Remaining = decimal.Max(decimal.Zero, inv.Total.Sub(inv.Paid).Sub(inv.Returned))
}

// ---- receive payments ----

type paymentBody struct {
	Payment *struct {
		TransactionDate string `json:"transaction_date"`
		Records         []struct {
			TransactionNo string `json:"transaction_no"`
			Amount        amount `json:"amount"`
		} `json:"records_attributes"`
		PaymentMethodName string  `json:"payment_method_name"`
		PaymentMethodID   idParam `json:"payment_method_id"`
		DepositToName     string  `json:"deposit_to_name"`
		CustomID          string  `json:"custom_id"`
		Memo              string  `json:"memo"`
		Tags              tagList `json:"tags"`
		IsDraft           bool    `json:"is_draft"`
	} `json:"receive_payment"`
}

// createPayment: POST /receive_payments {"receive_payment":{…}}. Each
// record pays an invoice named by its transaction_no, at most what remains
// of it; the payment method and deposit account must exist. A draft
// changes no invoice.
func (s *Server) createPayment(req *apiRequest) *response {
	var b paymentBody
	if resp := decodeBody(req.body, &b); resp != nil {
		return resp
	}
	if b.Payment == nil {
		return jurnalError(http.StatusBadRequest, "param is missing or the value is empty: receive_payment")
	}
	in := b.Payment
	req.log.CustomID = in.CustomID
	s.mu.Lock()
	defer s.mu.Unlock()
	if resp := s.customIDLocked(in.CustomID, byCustomID(s.payments, paymentFields)); resp != nil {
		return resp
	}
	errs := &fieldErrors{}
	p := Payment{CustomID: in.CustomID, TransactionDate: in.TransactionDate, Memo: in.Memo,
		Tags: slices.Clone([]string(in.Tags)), Draft: in.IsDraft}
	checkHeader(errs, &p.TransactionDate, in.CustomID, in.Memo, in.Tags)

	method := strings.TrimSpace(in.PaymentMethodName)
	switch {
	case method != "":
		if name, ok := containsName(s.master.methods, method); ok {
			p.PaymentMethod = name
		} else {
			errs.add("payment_method", doesNotExist("Payment method", method))
		}
	case in.PaymentMethodID.Set && !in.PaymentMethodID.Bad && int(in.PaymentMethodID.Value) <= len(s.master.methods):
		p.PaymentMethod = s.master.methods[in.PaymentMethodID.Value-1]
	case in.PaymentMethodID.Set:
		errs.add("payment_method", doesNotExist("Payment method", fmt.Sprint(in.PaymentMethodID.Value)))
	default:
		errs.add("payment_method", MsgPaymentMethodMissing)
	}
	if strings.TrimSpace(in.DepositToName) == "" {
		errs.add("deposit_to_name", "Deposit to can't be blank")
	} else if a, ok := s.master.account(in.DepositToName); ok {
		p.DepositTo = a.Name
	} else {
		errs.add("deposit_to_name", doesNotExist("Account", strings.TrimSpace(in.DepositToName)))
	}

	if len(in.Records) == 0 {
		errs.add("records_attributes", "Records can't be blank")
	}
	paying := make(map[int]decimal.Decimal) // invoice index → amount in this payment
	for _, r := range in.Records {
		no := strings.TrimSpace(r.TransactionNo)
		i, found := -1, false
		for k, inv := range s.invoices {
			if no != "" && inv.TransactionNo == no {
				i, found = k, true
				break
			}
		}
		switch {
		case no == "":
			errs.add("records_attributes", "Transaction no can't be blank")
			continue
		case !found:
			errs.add("records_attributes", doesNotExist("Sales invoice", no))
			continue
		case !r.Amount.Set || r.Amount.Bad || !r.Amount.Value.IsPositive():
			errs.add("records_attributes", "Amount must be greater than 0")
			continue
		}
		sum := paying[i].Add(r.Amount.Value)
		if sum.GreaterThan(s.invoices[i].Remaining) {
			errs.add("records_attributes", fmt.Sprintf("Amount cannot exceed the remaining amount of sales invoice %s", no))
			continue
		}
		paying[i] = sum
		p.Records = append(p.Records, PaymentRecord{InvoiceID: s.invoices[i].ID, TransactionNo: no, Amount: r.Amount.Value})
		p.Total = p.Total.Add(r.Amount.Value)
	}
	if !errs.empty() {
		req.log.Error = errs.first()
		return errs.response()
	}
	if !p.Draft {
		for i, amount := range paying {
			s.invoices[i].Paid = s.invoices[i].Paid.Add(amount)
			recompute(&s.invoices[i])
		}
	}
	p.ID = s.newIDLocked()
	p.TransactionNo = s.newNoLocked("receive_payment")
	p.CreatedAt = req.now
	s.payments = append(s.payments, p)
	return jsonResponse(http.StatusCreated, map[string]any{"receive_payment": renderPayment(p)})
}

func renderPayment(p Payment) map[string]any {
	records := make([]map[string]any, 0, len(p.Records))
	for _, r := range p.Records {
		records = append(records, map[string]any{"sales_invoice_id": r.InvoiceID, "transaction_no": r.TransactionNo,
			"amount": money(r.Amount)})
	}
	return map[string]any{
		"id": p.ID, "transaction_no": p.TransactionNo, "custom_id": p.CustomID,
		"transaction_date": showDate(p.TransactionDate), "memo": p.Memo, "tags": renderTags(p.Tags),
		"payment_method": map[string]string{"name": p.PaymentMethod}, "deposit_to": map[string]string{"name": p.DepositTo},
		"records": records, "total": money(p.Total), "total_currency_format": currency(p.Total), "is_draft": p.Draft,
	}
}

func (s *Server) getPayment(key string) *response {
	if strings.Contains(key, "#") {
		return jurnalError(http.StatusNotFound, MsgNotFound)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := findDoc(s.payments, key, paymentFields)
	if !ok {
		return s.notFoundLocked()
	}
	return jsonResponse(http.StatusOK, map[string]any{"receive_payment": renderPayment(s.payments[i])})
}

// Payments returns the receive payments, in creation order (copies).
func (s *Server) Payments() []Payment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.payments)
	for i := range out {
		out[i].Tags = slices.Clone(out[i].Tags)
		out[i].Records = slices.Clone(out[i].Records)
	}
	return out
}

// ---- sales returns ----

type returnBody struct {
	Return *struct {
		TransactionDate string       `json:"transaction_date"`
		InvoiceID       idParam      `json:"sales_invoice_id"`
		CustomID        string       `json:"custom_id"`
		Memo            string       `json:"memo"`
		Tags            tagList      `json:"tags"`
		Lines           []lineFields `json:"transaction_lines_attributes"`
	} `json:"sales_return"`
}

// createReturn: POST /sales_returns {"sales_return":{…}}. It reverses
// lines of the invoice sales_invoice_id: each line names a product of the
// invoice and a quantity (with what earlier returns took back, at most the
// invoiced quantity); the rate defaults to the invoice line's, whose
// discount and tax apply. The invoice's Returned grows by the total.
func (s *Server) createReturn(req *apiRequest) *response {
	var b returnBody
	if resp := decodeBody(req.body, &b); resp != nil {
		return resp
	}
	if b.Return == nil {
		return jurnalError(http.StatusBadRequest, "param is missing or the value is empty: sales_return")
	}
	in := b.Return
	req.log.CustomID = in.CustomID
	s.mu.Lock()
	defer s.mu.Unlock()
	if resp := s.customIDLocked(in.CustomID, byCustomID(s.returns, returnFields)); resp != nil {
		return resp
	}
	errs := &fieldErrors{}
	ret := Return{CustomID: in.CustomID, TransactionDate: in.TransactionDate, Memo: in.Memo,
		Tags: slices.Clone([]string(in.Tags))}
	checkHeader(errs, &ret.TransactionDate, in.CustomID, in.Memo, in.Tags)

	idx := -1
	switch {
	case !in.InvoiceID.Set:
		errs.add("sales_invoice_id", "Sales invoice can't be blank")
	case in.InvoiceID.Bad:
		errs.add("sales_invoice_id", "Sales invoice is invalid")
	default:
		for i, inv := range s.invoices {
			if inv.ID == in.InvoiceID.Value {
				idx = i
			}
		}
		if idx < 0 {
			errs.add("sales_invoice_id", doesNotExist("Sales invoice", fmt.Sprint(in.InvoiceID.Value)))
		}
	}
	if len(in.Lines) == 0 {
		errs.add("transaction_lines_attributes", "Transaction lines can't be blank")
	}
	if idx >= 0 {
		inv := s.invoices[idx]
		ret.InvoiceID, ret.InvoiceCustomID = inv.ID, inv.CustomID
		returned := s.returnedQuantitiesLocked(inv.ID)
		for _, l := range in.Lines {
			line, ok := s.returnLineLocked(errs, inv, returned, l)
			if !ok {
				continue
			}
			returned[line.ProductID] = returned[line.ProductID].Add(line.Quantity)
			ret.Lines = append(ret.Lines, line)
			ret.Subtotal = ret.Subtotal.Add(line.Amount)
			ret.Tax = ret.Tax.Add(line.Tax)
		}
		ret.Total = ret.Subtotal.Add(ret.Tax)
		if errs.empty() && ret.Total.GreaterThan(inv.Total.Sub(inv.Returned)) {
			errs.add("transaction_lines_attributes", "Return amount cannot exceed the invoice amount")
		}
	}
	if !errs.empty() {
		req.log.Error = errs.first()
		return errs.response()
	}
	inv := &s.invoices[idx]
	inv.Returned = inv.Returned.Add(ret.Total)
	recompute(inv)
	ret.ID = s.newIDLocked()
	ret.TransactionNo = s.newNoLocked("sales_return")
	ret.CreatedAt = req.now
	s.returns = append(s.returns, ret)
	return jsonResponse(http.StatusCreated, map[string]any{"sales_return": s.renderReturnLocked(ret)})
}

// returnedQuantitiesLocked sums, per product, what returns took back from
// an invoice.
func (s *Server) returnedQuantitiesLocked(invoiceID int64) map[int64]decimal.Decimal {
	m := make(map[int64]decimal.Decimal)
	for _, r := range s.returns {
		if r.InvoiceID != invoiceID {
			continue
		}
		for _, l := range r.Lines {
			m[l.ProductID] = m[l.ProductID].Add(l.Quantity)
		}
	}
	return m
}

// returnLineLocked validates a return line against the invoice.
func (s *Server) returnLineLocked(errs *fieldErrors, inv Invoice, returned map[int64]decimal.Decimal, l lineFields) (Line, bool) {
	const field = "transaction_lines_attributes"
	var p Product
	var found bool
	if strings.TrimSpace(l.ProductCode) != "" {
		p, found = s.master.productByCode(l.ProductCode)
	} else {
		p, found = s.master.productByName(l.ProductName)
	}
	var invLine *Line
	invoiced := decimal.Zero
	for i := range inv.Lines {
		if found && inv.Lines[i].ProductID == p.ID {
			if invLine == nil {
				invLine = &inv.Lines[i]
			}
			invoiced = invoiced.Add(inv.Lines[i].Quantity)
		}
	}
	if invLine == nil {
		errs.add(field, "Product is not on the sales invoice")
		return Line{}, false
	}
	if !l.Quantity.Set || l.Quantity.Bad || !l.Quantity.Value.IsPositive() {
		errs.add(field, "Quantity must be greater than 0")
		return Line{}, false
	}
	if returned[p.ID].Add(l.Quantity.Value).GreaterThan(invoiced) {
		errs.add(field, "Quantity cannot exceed the invoiced quantity")
		return Line{}, false
	}
	rate := invLine.Rate
	if l.Rate.Set {
		if l.Rate.Bad || l.Rate.Value.IsNegative() {
			errs.add(field, "Rate must be greater than or equal to 0")
			return Line{}, false
		}
		rate = l.Rate.Value
	}
	checkLength(errs, field, "Description", l.Description, DescriptionLimit)
	line := Line{ProductID: p.ID, ProductName: p.Name, ProductCode: p.Code, Description: l.Description,
		Quantity: l.Quantity.Value, Rate: rate, Discount: invLine.Discount, TaxName: invLine.TaxName, TaxRate: invLine.TaxRate}
	line.Amount, line.Tax = lineAmounts(line.Quantity, line.Rate, line.Discount, line.TaxRate)
	return line, true
}

func (s *Server) renderReturnLocked(r Return) map[string]any {
	invoice := map[string]any{"id": r.InvoiceID, "custom_id": r.InvoiceCustomID}
	for _, inv := range s.invoices {
		if inv.ID == r.InvoiceID {
			invoice["transaction_no"] = inv.TransactionNo
		}
	}
	return map[string]any{
		"id": r.ID, "transaction_no": r.TransactionNo, "custom_id": r.CustomID,
		"transaction_date": showDate(r.TransactionDate), "memo": r.Memo, "tags": renderTags(r.Tags),
		"sales_invoice": invoice, "transaction_lines_attributes": renderLines(r.Lines),
		"subtotal": money(r.Subtotal), "tax_amount": money(r.Tax), "original_amount": money(r.Total),
		"original_amount_currency_format": currency(r.Total),
	}
}

func (s *Server) getReturn(key string) *response {
	if strings.Contains(key, "#") {
		return jurnalError(http.StatusNotFound, MsgNotFound)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := findDoc(s.returns, key, returnFields)
	if !ok {
		return s.notFoundLocked()
	}
	return jsonResponse(http.StatusOK, map[string]any{"sales_return": s.renderReturnLocked(s.returns[i])})
}

// Returns returns the sales returns, in creation order (copies).
func (s *Server) Returns() []Return {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.returns)
	for i := range out {
		out[i].Tags = slices.Clone(out[i].Tags)
		out[i].Lines = slices.Clone(out[i].Lines)
	}
	return out
}

// ---- journal entries ----

type journalBody struct {
	Entry *struct {
		TransactionDate string  `json:"transaction_date"`
		TransactionNo   string  `json:"transaction_no"`
		CustomID        string  `json:"custom_id"`
		Memo            string  `json:"memo"`
		Tags            tagList `json:"tags"`
		Lines           []struct {
			AccountName string `json:"account_name"`
			Debit       amount `json:"debit"`
			Credit      amount `json:"credit"`
			Description string `json:"description"`
		} `json:"transaction_account_lines_attributes"`
	} `json:"journal_entry"`
}

// createJournal: POST /journal_entries {"journal_entry":{…}}: at least two
// lines on existing accounts, each a debit or a credit, debits equal to
// credits.
func (s *Server) createJournal(req *apiRequest) *response {
	var b journalBody
	if resp := decodeBody(req.body, &b); resp != nil {
		return resp
	}
	if b.Entry == nil {
		return jurnalError(http.StatusBadRequest, "param is missing or the value is empty: journal_entry")
	}
	in := b.Entry
	req.log.CustomID = in.CustomID
	s.mu.Lock()
	defer s.mu.Unlock()
	if resp := s.customIDLocked(in.CustomID, byCustomID(s.journals, journalFields)); resp != nil {
		return resp
	}
	const field = "transaction_account_lines_attributes"
	errs := &fieldErrors{}
	j := JournalEntry{CustomID: in.CustomID, TransactionDate: in.TransactionDate, Memo: in.Memo,
		Tags: slices.Clone([]string(in.Tags)), TransactionNo: strings.TrimSpace(in.TransactionNo)}
	checkHeader(errs, &j.TransactionDate, in.CustomID, in.Memo, in.Tags)
	checkLength(errs, "transaction_no", "Transaction no", j.TransactionNo, StringLimit)
	if j.TransactionNo != "" {
		if slices.ContainsFunc(s.journals, func(o JournalEntry) bool { return o.TransactionNo == j.TransactionNo }) {
			errs.add("transaction_no", "Transaction no has already been taken")
		}
	}
	if len(in.Lines) < 2 {
		errs.add(field, "A journal entry needs at least two lines")
	}
	for _, l := range in.Lines {
		a, ok := s.master.account(l.AccountName)
		if !ok {
			errs.add(field, doesNotExist("Account", strings.TrimSpace(l.AccountName)))
			continue
		}
		if l.Debit.Bad || l.Credit.Bad || l.Debit.Value.IsNegative() || l.Credit.Value.IsNegative() ||
			l.Debit.Value.IsPositive() == l.Credit.Value.IsPositive() {
			errs.add(field, "Each line must have either a debit or a credit")
			continue
		}
		checkLength(errs, field, "Description", l.Description, DescriptionLimit)
		j.Lines = append(j.Lines, JournalLine{Account: a.Name, Debit: l.Debit.Value, Credit: l.Credit.Value, Description: l.Description})
		j.TotalDebit = j.TotalDebit.Add(l.Debit.Value)
		j.TotalCredit = j.TotalCredit.Add(l.Credit.Value)
	}
	if errs.empty() && !j.TotalDebit.Equal(j.TotalCredit) {
		errs.add(field, "Total debit must equal total credit")
	}
	if !errs.empty() {
		req.log.Error = errs.first()
		return errs.response()
	}
	j.ID = s.newIDLocked()
	for j.TransactionNo == "" || slices.ContainsFunc(s.journals, func(o JournalEntry) bool { return o.TransactionNo == j.TransactionNo }) {
		j.TransactionNo = s.newNoLocked("journal_entry") // skips numbers a client chose
	}
	j.CreatedAt = req.now
	s.journals = append(s.journals, j)
	return jsonResponse(http.StatusCreated, map[string]any{"journal_entry": s.renderJournalLocked(j)})
}

func (s *Server) renderJournalLocked(j JournalEntry) map[string]any {
	lines := make([]map[string]any, 0, len(j.Lines))
	for _, l := range j.Lines {
		a, _ := s.master.account(l.Account)
		lines = append(lines, map[string]any{
			"account": map[string]any{"id": a.ID, "name": a.Name, "number": a.Number},
			"debit":   money(l.Debit), "credit": money(l.Credit), "description": l.Description,
		})
	}
	return map[string]any{
		"id": j.ID, "transaction_no": j.TransactionNo, "custom_id": j.CustomID,
		"transaction_date": showDate(j.TransactionDate), "memo": j.Memo, "tags": renderTags(j.Tags),
		"transaction_account_lines": lines, "total_debit": money(j.TotalDebit), "total_credit": money(j.TotalCredit),
	}
}

func (s *Server) getJournal(key string) *response {
	if strings.Contains(key, "#") {
		return jurnalError(http.StatusNotFound, MsgNotFound)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := findDoc(s.journals, key, journalFields)
	if !ok {
		return s.notFoundLocked()
	}
	return jsonResponse(http.StatusOK, map[string]any{"journal_entry": s.renderJournalLocked(s.journals[i])})
}

// JournalEntries returns the journal entries, in creation order (copies).
func (s *Server) JournalEntries() []JournalEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.journals)
	for i := range out {
		out[i].Tags = slices.Clone(out[i].Tags)
		out[i].Lines = slices.Clone(out[i].Lines)
	}
	return out
}
