package checkout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/pwbi/edge-agent/internal/backoff"
)

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
	ans, err := g.call(ctx, cfg, MethodStatus, body, "application/json", body)
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
