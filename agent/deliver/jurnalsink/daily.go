package jurnalsink

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/agent/unified"
)

// dayState is one outlet's business day in daily_summary mode: the ledger
// of its sales until the day closes, then what was posted for it.
type dayState struct {
	// Posted comes first: a posted day's document starts with
	// {"posted":true, and loading the index of open days skips it unread
	// (postedPrefix).
	Posted bool               `json:"posted,omitempty"`
	Outlet string             `json:"outlet"`
	Date   string             `json:"date"`
	Sales  map[string]daySale `json:"sales"`
	// Invoice and InvoiceNo: the day's invoice once it exists.
	Invoice   string   `json:"invoice,omitempty"`
	InvoiceID int64    `json:"invoice_id,omitempty"`
	InvoiceNo string   `json:"invoice_no,omitempty"`
	Lines     []line   `json:"lines,omitempty"` // the posted invoice's lines
	Paid      []string `json:"paid,omitempty"`  // payment methods whose payment exists
	Returned  bool     `json:"returned,omitempty"`
	Trying    string   `json:"trying,omitempty"`
	// Foreign: the lines may name products Jurnal does not have — sales
	// were ledgered while the sink posted to another Jurnal company
	// (checkCompany), or Jurnal refused the day's invoice for one
	// (heal.go): before the day's invoice, each is found or created by
	// its name.
	Foreign bool `json:"foreign,omitempty"`
	// Healed is Jurnal's refusal of the day's invoice that made the sink
	// forget what it knew of its products (heal.go): the same refusal
	// again stands.
	Healed string `json:"healed,omitempty"`
}

// totals are what the day's documents carry: its sales' ids (sorted), the
// lines of each sale not voided, the amount paid per payment method
// (lower case), and what refunds took back.
func (d *dayState) totals() (ids []string, groups [][]line, paid map[string]unified.Decimal, refunds unified.Decimal) {
	ids = make([]string, 0, len(d.Sales))
	for id := range d.Sales {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	paid = map[string]unified.Decimal{}
	refunds = unified.DecimalFromInt(0)
	for _, id := range ids {
		e := d.Sales[id]
		if e.Status == unified.StatusVoid {
			continue
		}
		groups = append(groups, e.Lines)
		m := strings.ToLower(strings.TrimSpace(e.Method))
		paid[m] = paid[m].Add(total(e.Lines))
		refunds = refunds.Add(e.refunded())
	}
	return ids, groups, paid, refunds
}

// renameProducts names on the ledger's lines the products renamed in
// Jurnal (old name → new name) by their new names.
func (d *dayState) renameProducts(renamed map[string]string) {
	for id, e := range d.Sales {
		changed := false
		for i, l := range e.Lines {
			if to, ok := renamed[l.Product]; ok {
				e.Lines[i].Product, changed = to, true
			}
		}
		if changed {
			d.Sales[id] = e
		}
	}
}

// daySale is a sale as the ledger holds it: its latest version.
type daySale struct {
	Status  unified.Status  `json:"status"`
	Amount  unified.Decimal `json:"amount"`
	Refund  unified.Decimal `json:"refund"`
	Method  string          `json:"method"`
	Receipt string          `json:"receipt,omitempty"`
	Lines   []line          `json:"lines,omitempty"`
}

func dayKey(outlet, date string) string { return "d/" + outlet + "/" + date }

// refunded is what the day's return takes back for the sale.
func (d daySale) refunded() unified.Decimal {
	if d.Status == unified.StatusVoid {
		return unified.DecimalFromInt(0)
	}
	r := reversal(unified.Transaction{Status: d.Status, RefundAmount: d.Refund}, d.Amount)
	if r.Cmp(d.Amount) > 0 {
		return d.Amount
	}
	return r
}

// ledger keeps a sale's latest version in its day's ledger (daily_summary)
// until the day is posted; a version arriving after that is posted on its
// own: a new sale as its own invoice, a void or refund as a sales return
// against the day's invoice.
func (s *Sink) ledger(ctx context.Context, t unified.Transaction) error {
	if _, err := time.Parse(unified.BusinessDateLayout, t.BusinessDate); err != nil {
		return &recordError{fmt.Errorf("the sale has no business date: %q", t.BusinessDate)}
	}
	key := dayKey(t.OutletID, t.BusinessDate)
	day := &dayState{Outlet: t.OutletID, Date: t.BusinessDate}
	if _, err := getJSON(s.docs, key, day); err != nil {
		return &storeError{err}
	}
	if day.Posted {
		return s.late(ctx, t, day)
	}
	// A sale posted on its own (invoice mode before a switch to
	// daily_summary) stays so: it never enters a day's invoice too.
	var own saleState
	if ok, err := getJSON(s.docs, saleKey(t), &own); err != nil {
		return &storeError{err}
	} else if ok && (len(own.Invoices) > 0 || own.Void) {
		return s.postSale(ctx, t, &own)
	}
	e := daySale{Status: t.Status, Amount: t.Amount, Refund: t.RefundAmount, Method: t.PaymentMethod, Receipt: t.ReceiptNo}
	if t.Status != unified.StatusVoid {
		lines, err := s.linesOf(ctx, t)
		if err != nil {
			return err
		}
		e.Lines = lines
	}
	if day.Sales == nil {
		day.Sales = map[string]daySale{}
	}
	day.Sales[t.ExternalID] = e
	return s.putDay(day)
}

// late posts a version of a sale whose day was posted: it starts from what
// the day's documents hold for it.
func (s *Sink) late(ctx context.Context, t unified.Transaction, day *dayState) error {
	st := &saleState{}
	ok, err := getJSON(s.docs, saleKey(t), st)
	if err != nil {
		return &storeError{err}
	}
	if !ok {
		if e, in := day.Sales[t.ExternalID]; in {
			st = &saleState{Date: day.Date, Void: e.Status == unified.StatusVoid,
				Invoices: []postedInvoice{{CustomID: day.Invoice, ID: day.InvoiceID, No: day.InvoiceNo, Lines: day.Lines, Paid: true}}}
			if !st.Void {
				// The sale's share of the day's invoice; the day's return
				// took back its refund.
				st.Invoices[0].Amount, st.Net, st.Reversed = e.Amount, e.Amount, e.refunded()
				st.Invoices[0].Returned = e.refunded()
			}
		} else {
			st = nil
		}
	}
	return s.postSale(ctx, t, st)
}

// closeAt is when a business day closes: its midnight in the outlets' zone
// plus close_after.
func (s *Sink) closeAt(date string) (time.Time, bool) {
	d, err := time.ParseInLocation(unified.BusinessDateLayout, date, s.cfg.Location)
	if err != nil {
		return time.Time{}, false
	}
	return time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, s.cfg.Location).Add(s.cfg.CloseAfter), true
}

// openSales counts, per outlet, the sales waiting for their day to be
// posted, and the closed days among those days.
func (s *Sink) openSales() (sales map[string]int, closedDays int) {
	sales = map[string]int{}
	days, _ := s.openDays()
	now := s.clock.Now()
	for _, d := range days {
		sales[d.Outlet] += d.Sales
		if s.due(d.Outlet, d.Date, now) {
			closedDays++
		}
	}
	return sales, closedDays
}

// due reports whether the outlet's date is a day to post at now: closed, of an outlet
// the sink takes.
func (s *Sink) due(outlet, date string, now time.Time) bool {
	at, ok := s.closeAt(date)
	return ok && !now.Before(at) && s.wanted(outlet)
}

// DayProblem is why a closed day (daily_summary) was not posted the last
// time it was tried.
type DayProblem struct {
	Outlet, Date string
	// Refused: Jurnal refused the day's documents (422/400/404); it is
	// tried again every minute, but only a change (master data in Jurnal,
	// the configuration) will get it posted. Otherwise Jurnal could not be
	// reached or is over its limit, and the day goes out once it can.
	Refused bool
	// Error is Jurnal's message (Refused) or the sentence saying what
	// stops posting; Code and Params word that sentence as a message of
	// the catalogue (sink.Message), "" when Refused.
	Error  string
	Code   string
	Params map[string]any
	// Since is when the day first failed; At when it last did.
	Since, At time.Time
}

// noteDayProblem records why posting d failed, with the answer a of the
// error.
func (s *Sink) noteDayProblem(d *dayState, a sink.Answer) {
	var code string
	var params map[string]any
	msg := a.Detail
	if a.Verdict != sink.Rejected || msg == "" {
		msg, code, params = a.Problem, a.ProblemCode, a.ProblemParams
	}
	if msg == "" && a.Err != nil {
		msg, code, params = a.Err.Error(), "", nil
	}
	now := s.clock.Now()
	key := dayKey(d.Outlet, d.Date)
	s.sh.mu.Lock()
	defer s.sh.mu.Unlock()
	p := DayProblem{Outlet: d.Outlet, Date: d.Date, Refused: a.Verdict == sink.Rejected, Error: msg, Code: code, Params: params,
		Since: now, At: now}
	if old, ok := s.sh.days[key]; ok {
		p.Since = old.Since
	}
	s.sh.days[key] = p
}

// keepDayProblems forgets the problems of days not in keep.
func (s *Sink) keepDayProblems(keep map[string]bool) {
	s.sh.mu.Lock()
	defer s.sh.mu.Unlock()
	maps.DeleteFunc(s.sh.days, func(k string, _ DayProblem) bool { return !keep[k] })
}

// forgetDayProblem forgets the problem of the day d, posted.
func (s *Sink) forgetDayProblem(d *dayState) {
	s.sh.mu.Lock()
	defer s.sh.mu.Unlock()
	delete(s.sh.days, dayKey(d.Outlet, d.Date))
}

// closeDays posts every day that has closed, oldest first. A day Jurnal
// refuses (or that cannot be posted as it is) is the outlet's error and
// does not hold back the other days; a failure of Jurnal or of the store
// stops the round.
func (s *Sink) closeDays(ctx context.Context) error {
	open, err := s.openDays()
	if err != nil {
		return &storeError{err}
	}
	now, calls := s.clock.Now(), s.api.Calls()
	closed := map[string]bool{}
	var days []*dayState
	for _, o := range open {
		if !s.due(o.Outlet, o.Date, now) {
			continue
		}
		key := dayKey(o.Outlet, o.Date)
		closed[key] = true
		d := &dayState{}
		if ok, err := getJSON(s.docs, key, d); err != nil {
			return &storeError{err}
		} else if ok && !d.Posted {
			days = append(days, d)
		}
	}
	s.keepDayProblems(closed) // a day posted, pruned or no longer synced has none
	var first error
	for _, d := range days {
		if err := retryMissing(func() error { return s.postDay(ctx, d) }); err != nil {
			a := s.answer(ctx, d.Outlet, err) // the quota state
			if a.Verdict == sink.Canceled {
				return err
			}
			s.noteError(d.Outlet, err) // whatever the kind: the status shows it
			s.noteDayProblem(d, a)
			if first == nil {
				first = fmt.Errorf("post %s of outlet %s: %w", d.Date, d.Outlet, err)
			}
			if a.Verdict != sink.Rejected {
				return first
			}
			continue
		}
		s.forgetDayProblem(d)
		s.noteSynced(d.Outlet)
	}
	if first != nil {
		return first
	}
	s.clearQuotaIfCalled(calls)
	return nil
}

// postDay posts a closed day: one invoice with the lines of its sales
// summed per product, one payment per payment method, one sales return for
// its refunds. Each step is saved before the next, so a crash resumes
// where it stopped.
func (s *Sink) postDay(ctx context.Context, d *dayState) error {
	save := func() error { return s.putDay(d) }
	ids, groups, paid, refunds := d.totals()
	lines := sumLines(groups...)
	cid := CustomID(d.Outlet, d.Date)
	if d.Foreign && d.Invoice == "" {
		if err := s.ensureNamed(ctx, lines); err != nil {
			return err
		}
		d.Foreign = false
		if err := save(); err != nil {
			return err
		}
	}
	if d.Invoice == "" && len(lines) > 0 {
		if err := s.ensureContact(ctx); err != nil {
			return err
		}
		body := invoiceDoc{invoiceBody{
			TransactionDate: d.Date, DueDate: d.Date, PersonName: s.cfg.CustomerName, CustomID: cid,
			ReferenceNo: cid, Memo: clip(fmt.Sprintf("Moka sales of %s (%d receipts)", d.Date, len(ids)), 255),
			Tags: s.tags(d.Outlet), WarehouseName: s.cfg.OutletWarehouses[d.Outlet], Lines: lineBodies(lines),
		}}
		ans, err := s.create(ctx, &d.Trying, save, "sales_invoices", "sales_invoice", cid, body, true)
		if err != nil {
			// Its products are found or created by name before the next
			// try.
			return s.heal(ctx, err, lines, &d.Healed, func(renamed map[string]string) error {
				d.renameProducts(renamed)
				d.Foreign = true
				return save()
			})
		}
		d.Invoice, d.InvoiceID, d.InvoiceNo, d.Lines, d.Trying = cid, ans.ID, ans.TransactionNo, lines, ""
		if err := save(); err != nil {
			return err
		}
		if err := s.notePosted(d.Outlet); err != nil {
			return err
		}
	}
	methods := make([]string, 0, len(paid))
	for m := range paid {
		methods = append(methods, m)
	}
	slices.Sort(methods)
	for _, m := range methods {
		amount := paid[m]
		if d.Invoice == "" || amount.Sign() <= 0 || slices.Contains(d.Paid, m) {
			continue
		}
		pid := CustomID(d.Outlet, d.Date, "pay", m)
		body := paymentDoc{paymentBody{
			TransactionDate: d.Date, Records: []paymentRecord{{TransactionNo: d.InvoiceNo, Amount: amount.String()}},
			PaymentMethodName: paymentMethod(m), DepositToName: s.account(m), CustomID: pid,
			Memo: clip("Moka payments "+d.Date, 255), Tags: s.tags(d.Outlet),
		}}
		if _, err := s.create(ctx, &d.Trying, save, "receive_payments", "receive_payment", pid, body, false); err != nil {
			return err
		}
		d.Paid, d.Trying = append(d.Paid, m), ""
		if err := save(); err != nil {
			return err
		}
		if err := s.notePosted(d.Outlet); err != nil {
			return err
		}
	}
	if d.Invoice != "" && refunds.Sign() > 0 && !d.Returned {
		rlines, err := returnLines(d.Lines, nil, refunds, false)
		if err != nil {
			return &recordError{fmt.Errorf("refunds of %s: %w", d.Date, err)}
		}
		rid := cid + "-ret"
		body := returnDoc{returnBody{
			TransactionDate: d.Date, CustomID: rid, InvoiceID: d.InvoiceID,
			Memo: clip("Moka refunds "+d.Date, 255), Tags: s.tags(d.Outlet), Lines: lineBodies(rlines),
		}}
		if _, err := s.create(ctx, &d.Trying, save, "sales_returns", "sales_return", rid, body, false); err != nil {
			return err
		}
		d.Returned = true
		if err := s.notePosted(d.Outlet); err != nil {
			return err
		}
	}
	d.Posted, d.Trying = true, ""
	s.log.Info("Jurnal day posted", "outlet", d.Outlet, "date", d.Date, "sales", len(ids))
	return save()
}

// leaveLedger takes a sale out of its day's ledger if the day is not
// posted yet (a switch from daily_summary to invoice mode): it is about to
// be posted on its own, and must not be in the day's invoice as well. If
// the day was posted with the sale, it returns that day: the sale is in
// its invoice already.
func (s *Sink) leaveLedger(t unified.Transaction) (*dayState, error) {
	key := dayKey(t.OutletID, t.BusinessDate)
	day := &dayState{}
	ok, err := getJSON(s.docs, key, day)
	if err != nil {
		return nil, &storeError{err}
	}
	if _, in := day.Sales[t.ExternalID]; !ok || !in {
		return nil, nil
	}
	if day.Posted {
		return day, nil
	}
	delete(day.Sales, t.ExternalID)
	return nil, s.putDay(day)
}
