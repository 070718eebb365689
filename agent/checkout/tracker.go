package checkout

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

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

// hint asks for a Status check of an open order the gateway tracks, as an
// unsigned callback may (see handleHint), and reports whether it did. An
// order that is unknown, being adopted or no longer open is left alone:
// an unsigned callback cannot make the gateway look anything up.
func (g *Gateway) hint(storeID, orderID string) bool {
	g.mu.Lock()
	e := g.tracked[docKey(storeID, orderID)]
	ok := e != nil && !e.adopt && e.state.Open()
	if ok {
		g.checkSoonLocked(storeID, orderID, "")
	}
	g.mu.Unlock()
	if ok {
		g.poke()
	}
	return ok
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
