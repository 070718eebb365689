package checkout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/pwbi/edge-agent/internal/backoff"
	"github.com/pwbi/edge-agent/store"
)

// Refresh schedule of open orders. An order is asked about soon after it
// is created (the customer is at the tablet), then less and less often.
const (
	minRefresh = 15 * time.Second
	maxRefresh = 15 * time.Minute
	// maxAdopt bounds the orders the gateway learned of by a callback or a
	// relayed call but has not seen yet.
	maxAdopt = 256
	// adoptTries: an order Mokka does not know after this many tries is
	// forgotten.
	adoptTries = 5
	// maxSeen bounds the memory of the last Status answers.
	maxSeen = 1024
)

// Status calls the gateway makes itself (refreshes, and the checks asked
// for by callbacks and relayed calls) are rate limited per order: at most
// statusBurst at once, then one per statusEvery. A check asked for inside
// the window is not dropped: it waits for the window, and every request
// that arrives meanwhile shares that one call. Tablets' own Status calls,
// which the gateway relays, are not limited here.
const (
	statusEvery = 5 * time.Second
	statusBurst = 2
)

// entry is an order the refresh loop looks after: an open one, one whose
// record could not be buffered yet, or one to adopt (known only from a
// callback or a relayed call; Status will tell whether it exists).
type entry struct {
	storeID, orderID string
	state            State
	next             time.Time
	failures         int
	lastErr          string
	adopt            bool
	check            bool   // call Status even though the order is not open
	tablet           string // for an adopted order
	reportDue        bool   // the order's record is not buffered yet
	// seq counts the requests for an early check (checkSoon); a refresh
	// that started before one leaves the entry due.
	seq uint64
	// receipts are the verified callbacks of an order to adopt, recorded
	// with it once Status confirms it exists.
	receipts []Receipt
}

// needsStatus reports whether refreshing the entry calls Status (else only
// its record is due).
func (e *entry) needsStatus() bool { return e.adopt || e.check || e.state.Open() }

// load reads the tracked orders from the store.
func (g *Gateway) load() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.clock.Now()
	return g.st.Docs(OrdersCollection, func(key string, value []byte) error {
		o, err := decodeOrder(value)
		if err != nil {
			g.log.Warn("Unreadable order document skipped", "key", key, "err", err)
			return nil
		}
		g.trackLocked(o, now)
		return nil
	})
}

// trackLocked keeps the refresh entry of o in line with it; a new entry is
// due at next. An entry of an order being adopted becomes the order's own,
// with its schedule: a check asked for meanwhile is not lost. g.mu must be
// held.
func (g *Gateway) trackLocked(o *Order, next time.Time) {
	k := o.docKey()
	due := o.Reported != store.Version(o.record())
	if !o.State.Open() && !due {
		delete(g.tracked, k)
		return
	}
	e := g.tracked[k]
	if e == nil {
		e = &entry{storeID: o.StoreID, orderID: o.OrderID, next: next}
		g.tracked[k] = e
	}
	e.adopt, e.tablet, e.receipts = false, "", nil
	e.state = o.State
	e.reportDue = due
}

// loadLocked reads an order; nil if it is not tracked. g.mu must be held.
func (g *Gateway) loadLocked(storeID, orderID string) (*Order, error) {
	b, ok, err := g.st.GetDoc(OrdersCollection, docKey(storeID, orderID))
	if err != nil || !ok {
		return nil, err
	}
	o, err := decodeOrder(b)
	if err != nil {
		return nil, fmt.Errorf("order document %s: %w", orderID, err)
	}
	return o, nil
}

// saveLocked stores o and, in the same transaction, its mokka_order record
// if that changed. When the buffer is full the document is stored without
// the record, which the refresh loop retries. g.mu must be held.
func (g *Gateway) saveLocked(o *Order) error {
	prev := o.Reported
	in := o.input()
	val, err := json.Marshal(o)
	if err != nil {
		return err
	}
	_, err = g.st.PutDoc(OrdersCollection, o.docKey(), val, in)
	if errors.Is(err, store.ErrFull) && in != nil {
		g.log.Warn("Buffer full: the order's record waits", "order_id", o.OrderID)
		o.Reported = prev
		if val, err = json.Marshal(o); err != nil {
			return err
		}
		_, err = g.st.PutDoc(OrdersCollection, o.docKey(), val, nil)
	}
	if err != nil {
		return fmt.Errorf("save order %s: %w", o.OrderID, err)
	}
	return nil
}

// update runs fn on the order (nil if not tracked) under the lock and
// saves what it returns when save is true.
func (g *Gateway) update(storeID, orderID string, next time.Time, fn func(o *Order) (out *Order, save bool)) (*Order, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	o, err := g.loadLocked(storeID, orderID)
	if err != nil {
		return nil, err
	}
	out, save := fn(o)
	if out == nil || !save {
		return out, nil
	}
	if err := g.saveLocked(out); err != nil {
		return nil, err
	}
	g.trackLocked(out, next)
	g.poke() // the loop's next wake-up may have moved
	return out, nil
}

// observe learns from a relayed call what it means for the order.
func (g *Gateway) observe(cfg *runtimeConfig, tablet string, req Request, ans *answer) {
	if ans.HTTPStatus/100 != 2 || ans.Code != CodeOK || req.OrderID == "" {
		return
	}
	now := g.clock.Now()
	var err error
	switch req.Method {
	case MethodCheckout:
		_, err = g.update(cfg.StoreID, req.OrderID, now.Add(minRefresh), func(o *Order) (*Order, bool) {
			if o != nil {
				// The same order asked again (a new iframe): keep it, and
				// its amount while the customer has not decided.
				if o.State == StatePending && (o.Amount != req.Amount || o.Prepayment != req.Prepayment) {
					o.Amount, o.Prepayment, o.UpdatedAt = req.Amount, req.Prepayment, now
					return o, true
				}
				return o, false
			}
			o = &Order{
				StoreID: cfg.StoreID, OrderID: req.OrderID, Tablet: tablet, State: StatePending,
				Amount: req.Amount, Prepayment: req.Prepayment,
				CreatedAt: now, StateChangedAt: now, UpdatedAt: now,
			}
			o.addEvent(Event{At: now, Kind: EventCreated, Source: "checkout", State: StatePending, Amount: req.Amount})
			return o, true
		})
		if err == nil {
			g.log.Info("Mokka order tracked", "order_id", req.OrderID, "tablet", tablet, "amount", req.Amount)
		}
	case MethodStatus:
		si, perr := statusInfo(ans.env, req.OrderID)
		if perr != nil {
			g.log.Warn("Unexpected Mokka Status answer", "order_id", req.OrderID, "err", perr)
			return
		}
		err = g.applyStatus(cfg.StoreID, req.OrderID, tablet, si, "tablet")
	case MethodReturn:
		_, err = g.update(cfg.StoreID, req.OrderID, now, func(o *Order) (*Order, bool) {
			if o == nil {
				return nil, false
			}
			o.addReturn(req.Amount, now)
			return o, true
		})
		g.checkSoon(cfg.StoreID, req.OrderID, tablet)
	case MethodFinish, MethodCancel, MethodChange:
		// Mokka accepted: Status tells the new state (and amount).
		g.checkSoon(cfg.StoreID, req.OrderID, tablet)
	}
	if err != nil {
		g.log.Error("Order tracking failed", "order_id", req.OrderID, "err", err)
	}
}

// applyStatus merges a Status answer into the order, creating it if it was
// not tracked (an order created while Mokka's answer was lost).
func (g *Gateway) applyStatus(storeID, orderID, tablet string, si StatusInfo, source string) error {
	k := docKey(storeID, orderID)
	g.mu.Lock()
	if last, ok := g.seen[k]; ok && last == si {
		if e := g.tracked[k]; e == nil || !e.reportDue {
			// The same answer as last time (a tablet polling): nothing
			// can change, so no store read.
			g.mu.Unlock()
			return nil
		}
	}
	g.mu.Unlock()
	now := g.clock.Now()
	var (
		from    State
		changed bool
	)
	o, err := g.update(storeID, orderID, now.Add(minRefresh), func(o *Order) (*Order, bool) {
		if o == nil {
			o = &Order{
				StoreID: storeID, OrderID: orderID, Tablet: tablet, State: si.State, Decision: si.Decision,
				Amount: si.Amount, Term: si.Term, Expired: si.Expired,
				CreatedAt: now, StateChangedAt: now, UpdatedAt: now, CheckedAt: now,
			}
			o.addEvent(Event{At: now, Kind: EventCreated, Source: source, State: si.State, Decision: si.Decision, Amount: si.Amount})
			// The callbacks that made the gateway look the order up
			// (update holds g.mu).
			if e := g.tracked[k]; e != nil && e.adopt {
				for _, r := range e.receipts {
					o.addReceipt(r)
				}
			}
			changed = true
			return o, true
		}
		from = o.State
		var aerr error
		stateChanged, anyChange, aerr := o.apply(si, source, now)
		if aerr != nil {
			g.log.Warn("Order state not changed", "order_id", orderID, "err", aerr)
		}
		changed = stateChanged
		// CheckedAt alone is not worth a disk write on every refresh.
		return o, anyChange || o.Reported != store.Version(o.record())
	})
	if err != nil {
		return err
	}
	g.mu.Lock()
	if len(g.seen) >= maxSeen {
		clear(g.seen)
	}
	g.seen[k] = si
	g.mu.Unlock()
	if changed && o != nil {
		if from == "" {
			g.log.Info("Mokka order adopted", "order_id", orderID, "state", o.State, "source", source)
		} else {
			g.log.Info("Mokka order state changed", "order_id", orderID, "from", from, "to", o.State,
				"decision", o.Decision, "source", source)
		}
	}
	return nil
}

// checkSoon asks the refresh loop to call Status for the order as soon as
// the order's rate limit allows; an order the gateway does not know yet is
// adopted if Mokka knows it. Requests made before that call share it.
func (g *Gateway) checkSoon(storeID, orderID, tablet string) {
	g.mu.Lock()
	e := g.checkSoonLocked(storeID, orderID, tablet)
	g.mu.Unlock()
	if e != nil {
		g.poke()
	}
}

// checkSoonLocked is checkSoon with g.mu held; it returns the entry, nil
// if the order is unknown and too many are being looked up already.
func (g *Gateway) checkSoonLocked(storeID, orderID, tablet string) *entry {
	k := docKey(storeID, orderID)
	e := g.tracked[k]
	if e == nil {
		if o, err := g.loadLocked(storeID, orderID); err == nil && o != nil {
			// A final order: a return, say. Check it once more.
			e = &entry{storeID: storeID, orderID: orderID, state: o.State}
		} else {
			if g.adopting() >= maxAdopt {
				g.log.Warn("Too many unknown orders to look up; one ignored", "order_id", orderID)
				return nil
			}
			e = &entry{storeID: storeID, orderID: orderID, adopt: true, tablet: tablet}
		}
		g.tracked[k] = e
	}
	// due applies the rate limit: next says "as soon as allowed".
	e.next, e.check = g.clock.Now(), true
	e.seq++
	return e
}

func (g *Gateway) adopting() int {
	n := 0
	for _, e := range g.tracked {
		if e.adopt {
			n++
		}
	}
	return n
}

// callbackResult is what recordCallback did with a callback.
type callbackResult int

const (
	callbackRecorded callbackResult = iota // recorded in the order; Status asked for
	callbackAdopting                       // the order is not tracked: Status will tell whether it exists
	callbackRepeated                       // recorded before: nothing done
	callbackIgnored                        // the order is not tracked and cannot be looked up now
)

// recordCallback records a verified callback (r, with its body digest) as
// a receipt of the order and asks for a Status check: the callback is a
// trigger, Status the truth. A callback already recorded for the order
// changes nothing: no write, no Status call. For an order the gateway
// does not track, the receipt waits in memory until Status confirms the
// order (see applyStatus).
func (g *Gateway) recordCallback(storeID, orderID string, r Receipt) (callbackResult, error) {
	now := g.clock.Now()
	r.At = now
	g.mu.Lock()
	res, err := g.recordCallbackLocked(storeID, orderID, r, now)
	g.mu.Unlock()
	if res == callbackRecorded || res == callbackAdopting {
		g.poke()
	}
	return res, err
}

func (g *Gateway) recordCallbackLocked(storeID, orderID string, r Receipt, now time.Time) (callbackResult, error) {
	o, err := g.loadLocked(storeID, orderID)
	if err != nil {
		return 0, err
	}
	if o == nil {
		k := docKey(storeID, orderID)
		if e := g.tracked[k]; e != nil && e.adopt && slices.ContainsFunc(e.receipts, func(p Receipt) bool { return p.Body == r.Body }) {
			return callbackRepeated, nil
		}
		e := g.checkSoonLocked(storeID, orderID, "")
		if e == nil {
			return callbackIgnored, nil
		}
		if e.adopt {
			if len(e.receipts) >= maxReceipts {
				e.receipts = slices.Delete(e.receipts, 0, 1)
			}
			e.receipts = append(e.receipts, r)
		}
		return callbackAdopting, nil
	}
	if o.hasReceipt(r.Body) {
		return callbackRepeated, nil
	}
	o.addReceipt(r)
	o.UpdatedAt = now
	if err := g.saveLocked(o); err != nil {
		return 0, err
	}
	g.trackLocked(o, now)
	g.checkSoonLocked(storeID, orderID, "")
	return callbackRecorded, nil
}

// Run refreshes the tracked orders with Status until ctx is canceled: each
// open order when it is due (see minRefresh, maxRefresh), at once after a
// callback or a relayed Finish, Cancel, Change or Return, with backoff
// while Mokka fails. It returns nil on cancellation.
func (g *Gateway) Run(ctx context.Context) error {
	for {
		if ctx.Err() != nil {
			return nil
		}
		due, wait := g.due(g.clock.Now())
		for i, e := range due {
			if ctx.Err() != nil {
				return nil
			}
			if err := g.refresh(ctx, e); err != nil {
				var ce *callError
				if errors.As(err, &ce) {
					// Mokka is unreachable: the others wait with this one.
					g.postpone(due[i+1:], e)
					break
				}
			}
		}
		if len(due) > 0 {
			continue
		}
		var timer <-chan time.Time
		var t interface{ Stop() bool }
		if wait > 0 {
			tm := g.clock.NewTimer(wait)
			timer, t = tm.Chan(), tm
		}
		select {
		case <-ctx.Done():
		case <-g.kick:
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// due returns copies of the entries due at now and how long until the next
// one (0: none is scheduled). An entry that needs Status is due when its
// rate limit allows it too.
func (g *Gateway) due(now time.Time) ([]entry, time.Duration) {
	cfg := g.config()
	if !cfg.Configured() {
		return nil, 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var (
		due  []entry
		wait time.Duration
	)
	for k, e := range g.tracked {
		if e.storeID != cfg.StoreID {
			continue // another store's order: its credentials are gone
		}
		at := e.next
		if e.needsStatus() {
			if allowed := g.statusAllowedLocked(k); allowed.After(at) {
				at = allowed
			}
		}
		if d := at.Sub(now); d > 0 {
			if wait == 0 || d < wait {
				wait = d
			}
			continue
		}
		due = append(due, *e)
	}
	return due, wait
}

// postpone gives the entries the same backoff as failed.
func (g *Gateway) postpone(rest []entry, failed entry) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.tracked[docKey(failed.storeID, failed.orderID)]
	if f == nil {
		return
	}
	for _, r := range rest {
		if e := g.tracked[docKey(r.storeID, r.orderID)]; e != nil && e.next.Before(f.next) {
			e.next = f.next
		}
	}
}

// refresh handles one due entry: Status for an open, adopted or checked
// order, a retried record for one whose record waits.
func (g *Gateway) refresh(ctx context.Context, e entry) error {
	var err error
	if e.needsStatus() {
		var (
			si   StatusInfo
			code int
		)
		g.mu.Lock()
		g.takeStatusLocked(docKey(e.storeID, e.orderID), g.clock.Now())
		g.mu.Unlock()
		si, code, err = g.status(ctx, e.orderID)
		if err != nil {
			g.failed(e, err, e.adopt && code == CodeOrderNotFound)
			return err
		}
		source := "refresh"
		if e.adopt {
			source = "callback"
		}
		err = g.applyStatus(e.storeID, e.orderID, e.tablet, si, source)
	} else {
		// Only the record is due: store the order again with it.
		_, err = g.update(e.storeID, e.orderID, g.clock.Now(), func(o *Order) (*Order, bool) {
			return o, o != nil
		})
	}
	if err != nil {
		g.failed(e, err, false)
		return err
	}

	now := g.clock.Now()
	interval := g.interval(e.storeID, e.orderID, now)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lastErr = ""
	k := docKey(e.storeID, e.orderID)
	cur := g.tracked[k]
	switch {
	case cur == nil:
	case cur.adopt:
		delete(g.tracked, k) // Mokka answered, yet nothing was stored
	case !cur.state.Open() && !cur.reportDue:
		delete(g.tracked, k)
	case cur.seq != e.seq || !cur.next.Equal(e.next):
		// Rescheduled meanwhile (a callback, a new entry): keep that.
		cur.failures, cur.lastErr = 0, ""
	default:
		cur.failures, cur.lastErr, cur.check = 0, "", false
		if cur.state.Open() {
			cur.next = now.Add(interval)
		} else {
			cur.next = now.Add(time.Minute) // the buffer was full: retry the record
		}
	}
	return nil
}

// interval is the wait before the next Status of an open order: a tenth of
// its age, between minRefresh and maxRefresh.
func (g *Gateway) interval(storeID, orderID string, now time.Time) time.Duration {
	b, ok, err := g.st.GetDoc(OrdersCollection, docKey(storeID, orderID))
	if err != nil || !ok {
		return minRefresh
	}
	o, err := decodeOrder(b)
	if err != nil {
		return minRefresh
	}
	return min(max(now.Sub(o.CreatedAt)/10, minRefresh), maxRefresh)
}

// statusAllowedLocked returns when the rate limit lets the gateway call
// Status for the order k (zero: at once). It is the generic cell rate
// algorithm: gates[k] is the order's theoretical arrival time, which each
// call pushes statusEvery further (from now, if it was past); a call is
// allowed once gates[k] is at most (statusBurst-1)*statusEvery ahead of
// the clock. So any stretch of time d holds at most statusBurst +
// d/statusEvery calls. It works on exact durations of the injected clock
// (golang.org/x/time/rate counts fractional tokens in floats, which makes
// "when is the next call allowed" approximate). g.mu must be held.
func (g *Gateway) statusAllowedLocked(k string) time.Time {
	tat, ok := g.gates[k]
	if !ok {
		return time.Time{}
	}
	return tat.Add(-(statusBurst - 1) * statusEvery)
}

// takeStatusLocked counts a Status call for the order k at now. g.mu must
// be held.
func (g *Gateway) takeStatusLocked(k string, now time.Time) {
	if len(g.gates) >= maxSeen {
		// An order whose time is past has its whole burst again: the
		// same as no entry. What remains are the orders asked about in
		// the last statusBurst*statusEvery.
		for gk, tat := range g.gates {
			if !tat.After(now) {
				delete(g.gates, gk)
			}
		}
	}
	tat := g.gates[k]
	if tat.Before(now) {
		tat = now
	}
	g.gates[k] = tat.Add(statusEvery)
}

// refreshBackoff spaces the retries of a failing refresh: after the n-th
// consecutive failure, a wait in [minRefresh·2^(n−1), minRefresh·2ⁿ]
// (equal jitter), never beyond maxRefresh.
var refreshBackoff = backoff.Policy{Base: 2 * minRefresh, Max: maxRefresh, Min: minRefresh}

// failed schedules a retry of e with exponential backoff and jitter, or
// forgets it.
func (g *Gateway) failed(e entry, err error, forget bool) {
	if err == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	k := docKey(e.storeID, e.orderID)
	cur := g.tracked[k]
	if cur == nil {
		return
	}
	cur.failures++
	cur.lastErr = err.Error()
	if cur.adopt && (forget || cur.failures >= adoptTries) {
		delete(g.tracked, k)
		g.log.Info("Unknown order not found at Mokka; forgotten", "order_id", e.orderID)
		return
	}
	g.lastErr = err.Error()
	d := refreshBackoff.Delay(cur.failures - 1)
	if cur.seq == e.seq {
		cur.next = g.clock.Now().Add(d)
	}
	g.log.Warn("Order refresh failed", "order_id", e.orderID, "failures", cur.failures, "retry_in", d.Round(time.Second), "err", err)
}

// status calls Mokka's Status for orderID. code is Mokka's code when it
// answered with one.
func (g *Gateway) status(ctx context.Context, orderID string) (StatusInfo, int, error) {
	cfg := g.config()
	if !cfg.Configured() {
		return StatusInfo{}, -1, errors.New("checkout is not configured")
	}
	body, err := json.Marshal(struct {
		OrderID string `json:"order_id"`
	}{orderID})
	if err != nil {
		return StatusInfo{}, -1, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	ans, err := g.call(ctx, cfg, MethodStatus, body, "application/json", Sign(body, cfg.SecretKey))
	if err != nil {
		return StatusInfo{}, -1, err
	}
	if ans.HTTPStatus/100 != 2 {
		return StatusInfo{}, ans.Code, fmt.Errorf("mokka answered HTTP %d (status %d)", ans.HTTPStatus, ans.Code)
	}
	si, err := statusInfo(ans.env, orderID)
	return si, ans.Code, err
}

// parseStatus reads a Status answer tolerantly: amounts and terms arrive
// as strings or numbers, expired as a bool or a string.
func parseStatus(body []byte, orderID string) (StatusInfo, error) {
	env, _ := parseEnvelope(body)
	return statusInfo(env, orderID)
}

// statusInfo reads a parsed Status answer (nil: it was not JSON).
func statusInfo(resp *envelope, orderID string) (StatusInfo, error) {
	if resp == nil {
		return StatusInfo{}, errors.New("the Status answer is not JSON")
	}
	if resp.Status == nil {
		return StatusInfo{}, errors.New("the Status answer has no status")
	}
	if *resp.Status != CodeOK {
		return StatusInfo{}, fmt.Errorf("mokka answered status %d (%s)", *resp.Status, Message(*resp.Status))
	}
	co := resp.CurrentOrder
	if co == nil {
		return StatusInfo{}, errors.New("the Status answer has no current_order")
	}
	if id, ok := stringValue(co.OrderID); ok && id != orderID {
		return StatusInfo{}, errors.New("the Status answer is about another order")
	}
	si := StatusInfo{State: State(co.Status)}
	if !si.State.Valid() {
		return StatusInfo{}, fmt.Errorf("unknown order status %q", truncate(co.Status, 20))
	}
	if co.Decision != nil {
		switch *co.Decision {
		case "approved", "declined":
			si.Decision = *co.Decision
		}
	}
	si.Amount, _ = normalizeAmount(co.Amount)
	if t, ok := stringValue(co.Term); ok {
		si.Term, _ = strconv.Atoi(t)
	} else if len(co.Term) > 0 {
		si.Term, _ = strconv.Atoi(string(co.Term))
	}
	switch string(co.Expired) {
	case "true", `"true"`:
		si.Expired = true
	}
	return si, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// OrderView is the tablet's view of an order (GET /mokka/orders/{id}).
type OrderView struct {
	Order
	NextCheckAt time.Time `json:"next_check_at,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
}

// Order returns the gateway's view of an order of the configured store.
func (g *Gateway) Order(orderID string) (OrderView, bool, error) {
	storeID := g.config().StoreID
	g.mu.Lock()
	defer g.mu.Unlock()
	o, err := g.loadLocked(storeID, orderID)
	if err != nil || o == nil {
		return OrderView{}, false, err
	}
	v := OrderView{Order: *o}
	v.Reported = ""
	if e := g.tracked[o.docKey()]; e != nil {
		v.NextCheckAt, v.LastError = e.next, e.lastErr
	}
	return v, true, nil
}

func (g *Gateway) handleOrder(w http.ResponseWriter, r *http.Request, tablet, id string) {
	if !ValidOrderID(id) {
		writeMokka(w, http.StatusNotFound, CodeOrderNotFound, "")
		return
	}
	v, ok, err := g.Order(id)
	switch {
	case err != nil:
		g.log.Error("Reading an order failed", "order_id", id, "err", err)
		writeMokka(w, http.StatusInternalServerError, CodeServer, "cannot read the order")
	case !ok:
		writeMokka(w, http.StatusNotFound, CodeOrderNotFound, "")
	default:
		writeJSON(w, http.StatusOK, struct {
			mokkaAnswer
			Order OrderView `json:"order"`
		}{mokkaAnswer{Status: CodeOK, Message: Message(CodeOK)}, v})
	}
}
