package checkout

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/store"
)

func TestCanMove(t *testing.T) {
	all := []State{StatePending, StateHold, StateFinished, StateCanceled, StateExpired, StateDeclined, StateRefunded}
	allowed := map[[2]State]bool{
		{StatePending, StateHold}: true, {StatePending, StateFinished}: true, {StatePending, StateCanceled}: true,
		{StatePending, StateExpired}: true, {StatePending, StateDeclined}: true,
		{StateHold, StateFinished}: true, {StateHold, StateCanceled}: true, {StateHold, StateExpired}: true,
		{StateHold, StateDeclined}:     true,
		{StateFinished, StateRefunded}: true,
		{StateExpired, StateCanceled}:  true,
	}
	for _, from := range all {
		if !from.Valid() {
			t.Errorf("%s not valid", from)
		}
		for _, to := range all {
			if got := CanMove(from, to); got != allowed[[2]State{from, to}] {
				t.Errorf("CanMove(%s, %s) = %v", from, to, got)
			}
		}
	}
	if State("paid").Valid() || !StatePending.Open() || !StateHold.Open() || StateFinished.Open() {
		t.Error("Valid/Open")
	}
}

func TestOrderApply(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	o := &Order{StoreID: "72", OrderID: "A", State: StatePending, Amount: "100.00", CreatedAt: t0, StateChangedAt: t0}
	o.addEvent(Event{At: t0, Kind: EventCreated, State: StatePending})
	rec0 := o.record()

	sc, ch, err := o.apply(StatusInfo{State: StatePending}, "refresh", t0.Add(time.Minute))
	if sc || ch || err != nil || string(o.record()) != string(rec0) {
		t.Fatalf("no news: %v %v %v", sc, ch, err)
	}
	sc, ch, err = o.apply(StatusInfo{State: StateHold, Decision: "approved", Amount: "100.00", Term: 3}, "refresh", t0.Add(2*time.Minute))
	if !sc || !ch || err != nil || o.State != StateHold || o.Decision != "approved" || o.Term != 3 || !o.StateChangedAt.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("to hold: %v %v %v %+v", sc, ch, err, o)
	}
	// Backwards: ignored, reported.
	sc, _, err = o.apply(StatusInfo{State: StatePending, Decision: "approved"}, "refresh", t0.Add(3*time.Minute))
	if sc || err == nil || o.State != StateHold {
		t.Fatalf("backwards: %v %v %s", sc, err, o.State)
	}
	o.apply(StatusInfo{State: StateFinished, Decision: "approved"}, "refresh", t0.Add(4*time.Minute))
	o.addReturn("40.00", t0.Add(5*time.Minute))
	o.addReturn("60.00", t0.Add(6*time.Minute))
	if o.ReturnedAmount != "100.00" {
		t.Fatalf("returned %s", o.ReturnedAmount)
	}
	o.apply(StatusInfo{State: StateRefunded, Decision: "approved"}, "refresh", t0.Add(7*time.Minute))
	if _, _, err := o.apply(StatusInfo{State: StateHold}, "refresh", t0.Add(8*time.Minute)); err == nil || o.State != StateRefunded {
		t.Fatal("refunded is final")
	}
	var r map[string]any
	if err := json.Unmarshal(o.record(), &r); err != nil {
		t.Fatal(err)
	}
	states := r["states"].([]any)
	if r["state"] != "refunded" || r["returned_amount"] != "100.00" || len(states) != 4 {
		t.Fatalf("record %v", r)
	}
	// Callbacks are receipts, kept apart and bounded: they change neither
	// the history nor the record.
	hist, rec := len(o.History), string(o.record())
	for i := 0; i < 3*maxReceipts; i++ {
		o.addReceipt(Receipt{At: t0.Add(time.Duration(i) * time.Second), Decision: "approved", Body: fmt.Sprint(i)})
	}
	if len(o.History) != hist || string(o.record()) != rec {
		t.Fatalf("receipts changed the history (%d → %d) or the record", hist, len(o.History))
	}
	if len(o.Receipts) != maxReceipts || o.Receipts[0].Body != fmt.Sprint(2*maxReceipts) || o.Callbacks != 3*maxReceipts {
		t.Fatalf("receipts %d, oldest %s, callbacks %d", len(o.Receipts), o.Receipts[0].Body, o.Callbacks)
	}
	if !o.hasReceipt(fmt.Sprint(3*maxReceipts-1)) || o.hasReceipt("0") || o.hasReceipt("") {
		t.Fatal("hasReceipt")
	}
	// Returns are listed up to maxReturnEvents; state changes stay.
	for i := 0; i < 2*maxReturnEvents; i++ {
		o.addEvent(Event{At: t0, Kind: EventReturn, Amount: fmt.Sprint(i)})
	}
	var nStates, returns int
	for _, e := range o.History {
		switch e.Kind {
		case EventCreated, EventState:
			nStates++
		case EventReturn:
			returns++
		}
	}
	if nStates != 4 || returns != maxReturnEvents || o.History[len(o.History)-1].Amount != fmt.Sprint(2*maxReturnEvents-1) {
		t.Fatalf("history: %d states, %d returns", nStates, returns)
	}
}

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		body string
		want StatusInfo
		bad  bool
	}{
		{`{"status":0,"message":"Payload valid","current_order":{"order_id":"A","expired":false,"status":"hold","decision":"approved","amount":4999.0,"term":3}}`,
			StatusInfo{State: StateHold, Decision: "approved", Amount: "4999.00", Term: 3}, false},
		{`{"status":0,"current_order":{"order_id":"A","expired":true,"status":"canceled","decision":"approved","amount":"4999","term":"3"}}`,
			StatusInfo{State: StateCanceled, Decision: "approved", Amount: "4999.00", Term: 3, Expired: true}, false},
		{`{"status":0,"current_order":{"order_id":"A","status":"pending","decision":null}}`, StatusInfo{State: StatePending}, false},
		{`{"status":0,"current_order":{"order_id":"B","status":"hold"}}`, StatusInfo{}, true},
		{`{"status":0,"current_order":{"order_id":"A","status":"paid"}}`, StatusInfo{}, true},
		{`{"status":24,"message":"Order with specified ID not found"}`, StatusInfo{}, true},
		{`{"status":0}`, StatusInfo{}, true},
		{`<html>`, StatusInfo{}, true},
	} {
		got, err := parseStatus([]byte(tc.body), "A")
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("%s: %+v %v", tc.body, got, err)
		}
	}
}

// TestForgedCallbacksRecordNothing: a callback with a wrong signature is
// refused and changes nothing. (One without a signature is a hint: see
// TestUnsignedCallbackIsAHint.)
func TestForgedCallbacksRecordNothing(t *testing.T) {
	h := newHarness(t)
	h.checkout("C-1", "100.00", "333000001")
	before := h.order("C-1")
	recs := len(h.records())
	body := `{"order_id":"C-1","decision":"approved","amount":"100.00"}`
	for name, q := range map[string]string{
		"wrong":           "?signature=" + Sign([]byte(body), "other-key"),
		"not hex":         "?signature=" + strings.Repeat("z", 40),
		"short":           "?signature=abc",
		"other body":      "?signature=" + Sign([]byte(body+" "), h.fake.SecretKey()),
		"secret first":    "?signature=" + Sign([]byte(h.fake.SecretKey()+body), ""),
		"in the body too": "?signature=" + strings.Repeat("0", 40),
	} {
		resp, err := http.Post(h.callbackURL()+q, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: HTTP %d", name, resp.StatusCode)
		}
	}
	after := h.order("C-1")
	if after.Callbacks != 0 || len(after.History) != len(before.History) || len(h.records()) != recs {
		t.Fatalf("a forged callback was recorded: %+v", after)
	}
	// Nothing asked Mokka either.
	if n := h.refreshDue(); n != 0 {
		t.Fatalf("%d refreshes due after forged callbacks", n)
	}
	if len(h.fake.RequestsFor(MethodStatus)) != 0 {
		t.Fatal("a forged callback made the gateway call Status")
	}
}

func TestCallbackChangesStateOnlyAfterStatus(t *testing.T) {
	h := newHarness(t)
	h.checkout("C-2", "1200.00", "333000001")
	if got := h.gw.Status().OpenOrders; got != 1 {
		t.Fatalf("open orders %d", got)
	}
	cb := h.complete("C-2", "")
	if !strings.Contains(string(cb.Body), "333000001") {
		t.Fatal("the fake's callback should carry the client's data (the gateway must drop it)")
	}
	o := h.order("C-2")
	if o.State != StatePending || o.Callbacks != 1 || len(o.Receipts) != 1 || o.Receipts[0].Decision != "approved" || len(o.History) != 1 {
		t.Fatalf("after the callback, before Status: %+v", o)
	}
	if len(h.fake.RequestsFor(MethodStatus)) != 0 {
		t.Fatal("Status already called")
	}
	// The refresh loop's next step confirms with Status.
	if n := h.refreshDue(); n != 1 {
		t.Fatalf("%d due", n)
	}
	if len(h.fake.RequestsFor(MethodStatus)) != 1 {
		t.Fatal("no Status call")
	}
	o = h.order("C-2")
	if o.State != StateHold || o.Decision != "approved" || o.Term != 3 {
		t.Fatalf("after Status: %+v", o)
	}
	raw, _, _ := h.st.GetDoc(OrdersCollection, "72/C-2")
	for _, leak := range []string{"333000001", "jan.kowalski", "Kowalski", "Jan", "15.01.1975"} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("the order document holds %q", leak)
		}
	}
	recs := h.records()
	if len(recs) != 2 {
		t.Fatalf("%d records, want pending and hold", len(recs))
	}
	for i, want := range []string{"pending", "hold"} {
		r := recs[i]
		var d map[string]any
		json.Unmarshal(r.Data, &d)
		if r.Key != "mokka/72/C-2" || d["state"] != want || d["amount"] != "1200.00" || d["tablet"] != "Front counter" {
			t.Errorf("record %d: %s %s", i, r.Key, r.Data)
		}
		for _, leak := range []string{"333000001", "jan", "Kowalski", "15.01.1975", "phone", "email", "name"} {
			if strings.Contains(strings.ToLower(string(r.Data)), strings.ToLower(leak)) {
				t.Errorf("record holds %q: %s", leak, r.Data)
			}
		}
	}
	// Nothing new, nothing recorded again.
	h.clock.Advance(time.Hour)
	h.refreshDue()
	if len(h.records()) != 2 {
		t.Fatalf("an unchanged Status made a record")
	}
}

func TestSeedScenariosAgainstFake(t *testing.T) {
	h := newHarness(t)
	state := func(id string) State { return h.order(id).State }
	run := func(id, phone string, want State) {
		t.Helper()
		h.checkout(id, "500.00", "")
		h.complete(id, phone)
		h.refreshDue()
		if s := state(id); s != want {
			t.Fatalf("%s (%s): %s, want %s", id, phone, s, want)
		}
	}
	run("S-ok", "333123001", StateHold)
	run("S-blocked", "333123610", StateDeclined)
	run("S-limit", "333123630", StateDeclined)
	run("S-overdue", "333123681", StateDeclined)
	if o := h.order("S-blocked"); o.Decision != "declined" {
		t.Errorf("blocked decision %q", o.Decision)
	}
	if o := h.order("S-limit"); o.Decision != "approved" {
		t.Errorf("not enough limit: decision %q (approved, then declined for the amount)", o.Decision)
	}
	if got := h.gw.Status().OpenOrders; got != 1 {
		t.Errorf("open orders %d", got)
	}

	// Cancel a held order: Status says canceled.
	if st, m := h.post(MethodCancel, `{"order_id":"S-ok"}`, testToken); st != 200 || code(m) != 0 {
		t.Fatalf("cancel: %d %v", st, m)
	}
	h.refreshDue()
	if s := state("S-ok"); s != StateCanceled {
		t.Fatalf("after cancel: %s", s)
	}
	if st, m := h.post(MethodCancel, `{"order_id":"S-ok"}`, testToken); st != 200 || code(m) != CodeCannotCancel {
		t.Fatalf("second cancel: %d %v", st, m)
	}

	// Finish, then return in two parts: finished, then refunded.
	run("S-ret", "333123002", StateHold)
	if st, m := h.post(MethodFinish, `{"order_id":"S-ret","amount":"500.00","check_number":"K1"}`, testToken); st != 200 || code(m) != 0 {
		t.Fatalf("finish: %d %v", st, m)
	}
	h.refreshDue()
	if st, m := h.post(MethodReturn, `{"order_id":"S-ret","amount":"200.00"}`, testToken); st != 200 || code(m) != 0 {
		t.Fatalf("return: %d %v", st, m)
	}
	h.refreshDue()
	if o := h.order("S-ret"); o.State != StateFinished || o.ReturnedAmount != "200.00" {
		t.Fatalf("partial return: %+v", o)
	}
	h.post(MethodReturn, `{"order_id":"S-ret","amount":"300.00"}`, testToken)
	// The order's Status burst went on the callback and the Finish: the
	// checks the returns asked for wait for the rate limit, and share one
	// call.
	h.clock.Advance(statusEvery)
	h.refreshDue()
	if o := h.order("S-ret"); o.State != StateRefunded || o.ReturnedAmount != "500.00" {
		t.Fatalf("full return: %+v", o)
	}
	var states []string
	for _, r := range h.records() {
		if r.Key == "mokka/72/S-ret" {
			var d map[string]any
			json.Unmarshal(r.Data, &d)
			states = append(states, d["state"].(string)+"/"+d["returned_amount"].(string))
		}
	}
	if got := strings.Join(states, " "); got != "pending/0.00 hold/0.00 finished/0.00 finished/200.00 finished/500.00 refunded/500.00" {
		t.Fatalf("records: %s", got)
	}

	// Expiry: a held order past valid_till.
	run("S-exp", "333123003", StateHold)
	h.fake.Expire("S-exp")
	h.clock.Advance(maxRefresh)
	h.refreshDue()
	if s := state("S-exp"); s != StateExpired {
		t.Fatalf("expiry: %s", s)
	}
}

func TestAdoptUnknownOrder(t *testing.T) {
	h := newHarness(t)
	// An order Mokka knows but the gateway lost (its answer timed out):
	// the callback adopts it once Status confirms.
	h.fake.SetDelay(0)
	body := h.checkoutBody("ADOPT-1", "300.00", "333000001")
	sig := Sign([]byte(body), h.fake.SecretKey())
	req, _ := http.NewRequest(http.MethodPost, h.fake.URL()+"/"+MethodCheckout+"?store_id=72&signature="+sig, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h.complete("ADOPT-1", "")
	if _, ok, _ := h.gw.Order("ADOPT-1"); ok {
		t.Fatal("adopted before Status")
	}
	h.refreshDue()
	o := h.order("ADOPT-1")
	if o.State != StateHold || o.Amount != "300.00" || o.Tablet != "" {
		t.Fatalf("adopted: %+v", o)
	}
	// A registration's callback is about no order: forgotten after Status.
	h.post(MethodRegistration, `{"callback_url":"`+h.callbackURL()+`","redirect_url":"https://a/b","current_order":{"order_id":"REG-9"}}`, testToken)
	h.complete("REG-9", "")
	h.refreshDue()
	if _, ok, _ := h.gw.Order("REG-9"); ok {
		t.Fatal("a registration became an order")
	}
	if n := h.refreshDue(); n != 0 {
		t.Fatalf("%d still due", n)
	}
}

func TestRefreshBackoff(t *testing.T) {
	h := newHarness(t) // the fake hangs up at once when down: no timeout needed
	h.checkout("B-1", "100.00", "333000001")
	if n := h.refreshDue(); n != 0 {
		t.Fatalf("%d due at once", n)
	}
	h.clock.Advance(minRefresh)
	h.fake.SetDown(true)
	h.refreshDue()
	st := h.gw.Status()
	if st.LastError == "" || st.OpenOrders != 1 {
		t.Fatalf("status %+v", st)
	}
	if strings.Contains(st.LastError, h.fake.SecretKey()) || strings.Contains(st.LastError, "signature") {
		t.Fatalf("error leaks: %s", st.LastError)
	}
	// Backoff grows: not due right away, due within the jittered bound.
	waits := []time.Duration{}
	for i := 0; i < 4; i++ {
		_, wait := h.gw.due(h.clock.Now())
		waits = append(waits, wait)
		h.clock.Advance(wait)
		h.refreshDue()
	}
	for i := 1; i < len(waits); i++ {
		if waits[i] <= waits[i-1] {
			t.Fatalf("backoff does not grow: %v", waits)
		}
	}
	if waits[len(waits)-1] > maxRefresh {
		t.Fatalf("backoff beyond the cap: %v", waits)
	}
	// Equal jitter: after the n-th failure, between minRefresh·2^(n−1)
	// and twice that.
	for i, w := range waits {
		if lo := minRefresh << i; w < lo || w > 2*lo {
			t.Fatalf("wait %d = %v outside [%v, %v]: %v", i+1, w, lo, 2*lo, waits)
		}
	}
	h.fake.SetDown(false)
	_, wait := h.gw.due(h.clock.Now())
	h.clock.Advance(wait)
	h.refreshDue()
	if st := h.gw.Status(); st.LastError != "" {
		t.Fatalf("error stays after recovery: %s", st.LastError)
	}
	// Open orders are refreshed less often as they age, never beyond the cap.
	h.clock.Advance(10 * time.Hour)
	h.refreshDue()
	if _, wait := h.gw.due(h.clock.Now()); wait != maxRefresh {
		t.Fatalf("wait for an old order %v", wait)
	}
}

func TestRunLoop(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.gw.Run(ctx) }()
	waitCall := func(what string) {
		t.Helper()
		select {
		case p := <-h.mokkaCalls:
			if p != MethodStatus {
				t.Fatalf("%s: call %s", what, p)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no Status call\n%s", what, h.logs.String())
		}
	}
	h.checkout("R-1", "100.00", "333000001")
	<-h.mokkaCalls // the checkout itself
	// Due after minRefresh on the loop's clock.
	if err := h.clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(minRefresh)
	waitCall("scheduled refresh")
	// A callback wakes the loop at once, without the clock moving.
	h.complete("R-1", "")
	waitCall("callback")
	// The loop waits on its clock again once the refresh is done.
	if err := h.clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if o := h.order("R-1"); o.State != StateHold {
		t.Fatalf("state %s", o.State)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRestartKeepsTracking(t *testing.T) {
	h := newHarness(t)
	h.checkout("K-1", "100.00", "333000001")
	h.checkout("K-2", "100.00", "333000001")
	h.complete("K-2", "333000610")
	h.refreshDue()
	g2, err := New(h.cfg, Options{Store: h.st, Clock: h.clock})
	if err != nil {
		t.Fatal(err)
	}
	if st := g2.Status(); st.OpenOrders != 1 {
		t.Fatalf("open orders after restart: %d", st.OpenOrders)
	}
	// Another store's orders are kept but not counted or refreshed.
	cfg := h.cfg
	cfg.StoreID = "other"
	g2.Update(cfg)
	if st := g2.Status(); st.OpenOrders != 0 {
		t.Fatalf("open orders of another store: %d", st.OpenOrders)
	}
	if due, _ := g2.due(h.clock.Now().Add(time.Hour)); len(due) != 0 {
		t.Fatal("another store's orders are refreshed")
	}
}

func TestBufferFullKeepsRecordForLater(t *testing.T) {
	h := newHarness(t)
	// Fill the outbox past a tiny bound with one unrelated record.
	if _, err := h.st.Append([]store.Input{{Kind: store.KindTransaction, Key: "x", Data: json.RawMessage(`{"pad":"` + strings.Repeat("p", 4000) + `"}`)}}, nil); err != nil {
		t.Fatal(err)
	}
	h.st.SetMaxPendingBytes(1000)
	h.checkout("FULL-1", "100.00", "333000001")
	if len(h.records()) != 0 {
		t.Fatal("a record went in over the bound")
	}
	o := h.order("FULL-1") // the order itself is tracked
	if o.State != StatePending {
		t.Fatalf("order %+v", o)
	}
	// Space again: the next refresh buffers the record.
	recs, _ := h.st.Pending(10)
	h.st.Ack(recs[0].Seq)
	h.clock.Advance(minRefresh)
	h.refreshDue()
	if len(h.records()) != 1 {
		t.Fatal("the record was not retried")
	}
}

// However many refreshes failed, the next one waits between minRefresh and
// maxRefresh.
func TestRefreshBackoffBounds(t *testing.T) {
	for n := 1; n <= 100; n++ {
		for range 20 {
			if d := refreshBackoff.Delay(n - 1); d < minRefresh || d > maxRefresh {
				t.Fatalf("wait after %d failures = %v, outside [%v, %v]", n, d, minRefresh, maxRefresh)
			}
		}
	}
}
