package checkout

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/checkout/mokkafake"
	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

// postCallback sends a callback to the gateway's real handler, as Mokka
// does, and returns the HTTP status and the Mokka code of the answer.
func postCallback(t testing.TB, url string, body []byte, sig string) (int, int) {
	t.Helper()
	resp, err := http.Post(url+"?signature="+sig, "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("callback answer is not JSON (HTTP %d): %v", resp.StatusCode, err)
	}
	return resp.StatusCode, code(m)
}

// signed returns a callback body for orderID with extra fields, and its
// signature with the fake's key.
func (h *harness) signed(orderID, decision, extra string) ([]byte, string) {
	body := []byte(`{"order_id":"` + orderID + `","decision":"` + decision + `","amount":"100.00"` + extra + `}`)
	return body, Sign(body, h.fake.SecretKey())
}

// orderRecords returns the buffered mokka_order records of one order.
func (h *harness) orderRecords(orderID string) []store.Record {
	h.t.Helper()
	var out []store.Record
	for _, r := range h.records() {
		if r.Key == RecordKey(h.cfg.StoreID, orderID) {
			out = append(out, r)
		}
	}
	return out
}

// checkRecordsForward walks the successive versions of one order's
// mokka_order records: each differs from the one before; its state is the
// one before or a state Mokka may move to from it; its states list extends
// the one before (never drops or changes an entry), follows the state
// machine and ends with its state. It returns the last record's states.
func checkRecordsForward(t *testing.T, recs []store.Record) []State {
	t.Helper()
	var prev *orderRecord
	var prevVersion string
	for i, r := range recs {
		var cur orderRecord
		if err := json.Unmarshal(r.Data, &cur); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if r.Version == prevVersion {
			t.Errorf("record %d repeats the version before it", i)
		}
		if len(cur.States) == 0 || cur.States[len(cur.States)-1].State != cur.State {
			t.Errorf("record %d: state %s, states %v", i, cur.State, cur.States)
		}
		for j := 1; j < len(cur.States); j++ {
			if !CanMove(cur.States[j-1].State, cur.States[j].State) {
				t.Errorf("record %d: states go %s → %s", i, cur.States[j-1].State, cur.States[j].State)
			}
		}
		if prev != nil {
			if cur.State != prev.State && !CanMove(prev.State, cur.State) {
				t.Errorf("record %d goes backwards: %s → %s", i, prev.State, cur.State)
			}
			if len(cur.States) < len(prev.States) || !slices.Equal(cur.States[:len(prev.States)], prev.States) {
				t.Errorf("record %d drops or changes states: %v after %v", i, cur.States, prev.States)
			}
		}
		prev, prevVersion = &cur, r.Version
	}
	if prev == nil {
		return nil
	}
	out := make([]State, len(prev.States))
	for i, s := range prev.States {
		out[i] = s.State
	}
	return out
}

// historyStates returns the states of the history's creation and state
// change entries.
func historyStates(o Order) []State {
	var out []State
	for _, e := range o.History {
		if e.Kind == EventCreated || e.Kind == EventState {
			out = append(out, e.State)
		}
	}
	return out
}

// TestIssue10CallbackReplay: one valid signed callback replayed 100 times
// used to cost 100 Status calls and 100 writes, push the hold entry out of
// the history and send a mokka_order record whose states ran backwards.
func TestIssue10CallbackReplay(t *testing.T) {
	h := newHarness(t)
	h.checkout("REPLAY-1", "100.00", "333000001")
	cb := h.complete("REPLAY-1", "") // Mokka's callback, through the real handler
	if n := h.refreshDue(); n != 1 {
		t.Fatalf("%d due after the callback", n)
	}
	if o := h.order("REPLAY-1"); o.State != StateHold {
		t.Fatalf("state %s", o.State)
	}
	writes := h.cs.writes("72", "REPLAY-1") // checkout, callback, hold
	if writes != 3 {
		t.Fatalf("%d writes before the replay", writes)
	}
	statusBefore := len(h.fake.RequestsFor(MethodStatus))
	for i := 0; i < 100; i++ {
		if st, c := postCallback(t, h.callbackURL(), cb.Body, cb.Signature); st != 200 || c != CodeOK {
			t.Fatalf("replay %d: HTTP %d code %d", i, st, c)
		}
		h.refreshDue()
	}
	if got := h.cs.writes("72", "REPLAY-1"); got != writes {
		t.Fatalf("the replays wrote the order %d times", got-writes)
	}
	if got := len(h.fake.RequestsFor(MethodStatus)) - statusBefore; got != 0 {
		t.Fatalf("the replays made %d Status calls", got)
	}
	o := h.order("REPLAY-1")
	if got := historyStates(o); !slices.Equal(got, []State{StatePending, StateHold}) {
		t.Fatalf("history %v", got)
	}
	if o.Callbacks != 1 || len(o.Receipts) != 1 || o.Receipts[0].Decision != "approved" {
		t.Fatalf("callbacks %d, receipts %+v", o.Callbacks, o.Receipts)
	}
	recs := h.orderRecords("REPLAY-1")
	if got := checkRecordsForward(t, recs); len(recs) != 2 || !slices.Equal(got, []State{StatePending, StateHold}) {
		t.Fatalf("%d records, states %v", len(recs), got)
	}
	// The order goes on; the callback, replayed again, still changes
	// nothing.
	if st, m := h.post(MethodFinish, `{"order_id":"REPLAY-1","amount":"100.00","check_number":"K1"}`, testToken); st != 200 || code(m) != 0 {
		t.Fatalf("finish: %d %v", st, m)
	}
	h.refreshDue()
	writes = h.cs.writes("72", "REPLAY-1")
	for i := 0; i < 20; i++ {
		postCallback(t, h.callbackURL(), cb.Body, cb.Signature)
	}
	h.refreshDue()
	if got := h.cs.writes("72", "REPLAY-1"); got != writes {
		t.Fatalf("the replays wrote a finished order %d times", got-writes)
	}
	if got := checkRecordsForward(t, h.orderRecords("REPLAY-1")); !slices.Equal(got, []State{StatePending, StateHold, StateFinished}) {
		t.Fatalf("record states %v", got)
	}
	if n := len(h.fake.RequestsFor(MethodStatus)); n > 3 {
		t.Fatalf("%d Status calls in all", n)
	}
	if strings.Contains(h.logs.String(), "333000001") {
		t.Fatal("the customer's phone is in the log")
	}
}

// TestCallbackReplayConcurrent: the first delivery of a callback and its
// replays arrive at once, while the refresh loop runs.
func TestCallbackReplayConcurrent(t *testing.T) {
	h := newHarness(t)
	// Mokka's own delivery goes elsewhere: every copy the gateway gets
	// races for being the first.
	sink := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(sink.Close)
	body := strings.Replace(h.checkoutBody("PAR-1", "100.00", "333000001"), h.callbackURL(), sink.URL, 1)
	if st, m := h.post(MethodCheckout, body, testToken); st != 200 || code(m) != 0 {
		t.Fatalf("checkout: %d %v", st, m)
	}
	cb, err := h.fake.Complete("PAR-1", "")
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.gw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	replay := func(n int) {
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if st, c := postCallback(t, h.callbackURL(), cb.Body, cb.Signature); st != 200 || c != CodeOK {
					t.Errorf("HTTP %d code %d", st, c)
				}
			})
		}
		wg.Wait()
	}
	replay(100)
	testutil.WaitFor(t, "the order on hold", 30*time.Second, func() bool { return h.order("PAR-1").State == StateHold })
	// The loop is idle again: nothing is left to do.
	if err := h.clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	status := len(h.fake.RequestsFor(MethodStatus))
	if status < 1 || status > 3 {
		t.Fatalf("%d Status calls for 100 copies of one callback", status)
	}
	replay(100)
	if due, _ := h.gw.due(h.clock.Now()); len(due) != 0 {
		t.Fatalf("the replays scheduled %d checks", len(due))
	}
	if got := len(h.fake.RequestsFor(MethodStatus)); got != status {
		t.Fatalf("the replays made %d more Status calls", got-status)
	}
	// checkout, the callback, hold: one write for 200 copies.
	if got := h.cs.writes("72", "PAR-1"); got != 3 {
		t.Fatalf("%d writes", got)
	}
	o := h.order("PAR-1")
	if o.Callbacks != 1 || len(o.Receipts) != 1 || !slices.Equal(historyStates(o), []State{StatePending, StateHold}) {
		t.Fatalf("order %+v", o)
	}
	recs := h.orderRecords("PAR-1")
	if got := checkRecordsForward(t, recs); len(recs) != 2 || !slices.Equal(got, []State{StatePending, StateHold}) {
		t.Fatalf("%d records, states %v", len(recs), got)
	}
}

func TestDifferentCallbacksRecordedOnceEach(t *testing.T) {
	h := newHarness(t)
	h.checkout("DIFF-1", "100.00", "333000001")
	approved, sigA := h.signed("DIFF-1", "approved", "")
	declined, sigD := h.signed("DIFF-1", "declined", "")
	// The same fields in another spelling is another body: recorded too.
	spaced, sigS := []byte(strings.ReplaceAll(string(approved), ",", ", ")), ""
	sigS = Sign(spaced, h.fake.SecretKey())
	before := h.cs.writes("72", "DIFF-1")
	for i := 0; i < 10; i++ {
		for _, c := range []struct {
			body []byte
			sig  string
		}{{approved, sigA}, {declined, sigD}, {spaced, sigS}} {
			if st, code := postCallback(t, h.callbackURL(), c.body, c.sig); st != 200 || code != CodeOK {
				t.Fatalf("HTTP %d code %d", st, code)
			}
		}
	}
	if got := h.cs.writes("72", "DIFF-1") - before; got != 3 {
		t.Fatalf("%d writes for three different callbacks", got)
	}
	o := h.order("DIFF-1")
	var decisions []string
	for _, r := range o.Receipts {
		decisions = append(decisions, r.Decision)
		if r.Body == "" || strings.Contains(r.Body, "DIFF-1") {
			t.Errorf("receipt body digest %q", r.Body)
		}
	}
	if o.Callbacks != 3 || strings.Join(decisions, ",") != "approved,declined,approved" {
		t.Fatalf("callbacks %d, receipts %v", o.Callbacks, decisions)
	}
	if len(o.History) != 1 || len(h.orderRecords("DIFF-1")) != 1 {
		t.Fatalf("callbacks changed the history (%d) or the records", len(o.History))
	}
	// The three asked for checks that share the order's Status burst.
	h.refreshDue()
	h.clock.Advance(statusEvery)
	h.refreshDue()
	if n := len(h.fake.RequestsFor(MethodStatus)); n != 1 {
		t.Fatalf("%d Status calls", n)
	}
}

func TestCallbackReplayAfterRestart(t *testing.T) {
	h := newHarness(t)
	h.checkout("RS-HOLD", "100.00", "333000001")
	held := h.complete("RS-HOLD", "")
	h.checkout("RS-DONE", "200.00", "333000002")
	done := h.complete("RS-DONE", "")
	h.refreshDue()
	if st, m := h.post(MethodFinish, `{"order_id":"RS-DONE","amount":"200.00","check_number":"K2"}`, testToken); st != 200 || code(m) != 0 {
		t.Fatalf("finish: %d %v", st, m)
	}
	h.refreshDue()
	if a, b := h.order("RS-HOLD").State, h.order("RS-DONE").State; a != StateHold || b != StateFinished {
		t.Fatalf("states %s %s", a, b)
	}
	records := len(h.records())

	// A new gateway over the same store: the agent restarted.
	cs := newCountingStore(h.st)
	g2, err := New(h.cfg, Options{Store: cs, Clock: h.clock})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g2)
	t.Cleanup(srv.Close)
	// It refreshes its open order once, as after any restart.
	due, _ := g2.due(h.clock.Now())
	if len(due) != 1 || due[0].orderID != "RS-HOLD" {
		t.Fatalf("due after the restart: %+v", due)
	}
	if err := g2.refresh(context.Background(), due[0]); err != nil {
		t.Fatal(err)
	}
	status := len(h.fake.RequestsFor(MethodStatus))
	for i := 0; i < 30; i++ {
		for _, cb := range []mokkafake.Callback{held, done} {
			if st, c := postCallback(t, srv.URL+"/mokka/callback", cb.Body, cb.Signature); st != 200 || c != CodeOK {
				t.Fatalf("HTTP %d code %d", st, c)
			}
		}
	}
	if n := cs.total(); n != 0 {
		t.Fatalf("%d writes after the restart", n)
	}
	if due, _ := g2.due(h.clock.Now()); len(due) != 0 {
		t.Fatalf("the replays scheduled %d checks", len(due))
	}
	if got := len(h.fake.RequestsFor(MethodStatus)); got != status {
		t.Fatalf("the replays made %d Status calls", got-status)
	}
	if got := len(h.records()); got != records {
		t.Fatalf("%d new records", got-records)
	}
}

// TestStateHistoryOutlivesReceipts: more callbacks than the receipts keep,
// around every state change of an order: every state change stays in the
// history, and the records never go backwards.
func TestStateHistoryOutlivesReceipts(t *testing.T) {
	h := newHarness(t)
	h.checkout("LONG-1", "500.00", "333000001")
	h.complete("LONG-1", "")
	h.refreshDue()
	n := 1
	callbacks := func(k int) {
		t.Helper()
		for range k {
			body, sig := h.signed("LONG-1", "approved", fmt.Sprintf(`,"attempt":%d`, n))
			n++
			if st, c := postCallback(t, h.callbackURL(), body, sig); st != 200 || c != CodeOK {
				t.Fatalf("HTTP %d code %d", st, c)
			}
			h.clock.Advance(time.Second)
			h.refreshDue()
		}
	}
	step := func(method, body string) {
		t.Helper()
		if st, m := h.post(method, body, testToken); st != 200 || code(m) != 0 {
			t.Fatalf("%s: %d %v", method, st, m)
		}
		h.clock.Advance(statusEvery)
		h.refreshDue()
	}
	callbacks(maxReceipts + 5)
	step(MethodFinish, `{"order_id":"LONG-1","amount":"500.00","check_number":"K1"}`)
	callbacks(maxReceipts + 5)
	step(MethodReturn, `{"order_id":"LONG-1","amount":"200.00"}`)
	callbacks(3)
	step(MethodReturn, `{"order_id":"LONG-1","amount":"300.00"}`)

	o := h.order("LONG-1")
	want := []State{StatePending, StateHold, StateFinished, StateRefunded}
	if got := historyStates(o); !slices.Equal(got, want) {
		t.Fatalf("history states %v", got)
	}
	var kinds []string
	for _, e := range o.History {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, ","); got != "created,state,state,return,return,state" {
		t.Fatalf("history %s", got)
	}
	if len(o.Receipts) != maxReceipts || o.Callbacks != n {
		t.Fatalf("%d receipts, %d callbacks (sent %d)", len(o.Receipts), o.Callbacks, n)
	}
	recs := h.orderRecords("LONG-1")
	if got := checkRecordsForward(t, recs); !slices.Equal(got, want) {
		t.Fatalf("last record's states %v", got)
	}
	// pending, hold, finished, two returns, refunded: callbacks made none.
	if len(recs) != 6 {
		t.Fatalf("%d records", len(recs))
	}
}

// TestStatusRateLimit: callbacks spread over a minute, each one new, with
// a Finish in the middle: the Status calls stay within the per-order limit
// and the final state is still confirmed.
func TestStatusRateLimit(t *testing.T) {
	h := newHarness(t)
	h.checkout("RATE-1", "100.00", "333000001")
	h.complete("RATE-1", "")
	h.refreshDue()
	for i := 0; i < 60; i++ {
		h.clock.Advance(time.Second)
		body, sig := h.signed("RATE-1", "approved", fmt.Sprintf(`,"attempt":%d`, i))
		if st, c := postCallback(t, h.callbackURL(), body, sig); st != 200 || c != CodeOK {
			t.Fatalf("HTTP %d code %d", st, c)
		}
		if i == 30 {
			if st, m := h.post(MethodFinish, `{"order_id":"RATE-1","amount":"100.00","check_number":"K1"}`, testToken); st != 200 || code(m) != 0 {
				t.Fatalf("finish: %d %v", st, m)
			}
		}
		h.refreshDue()
	}
	if o := h.order("RATE-1"); o.State != StateFinished {
		t.Fatalf("state %s: the Finish was not confirmed", o.State)
	}
	calls := h.statusCalls()
	if len(calls) > statusBurst+60/int(statusEvery/time.Second)+1 {
		t.Fatalf("%d Status calls in a minute", len(calls))
	}
	// In every stretch of time, at most the burst plus one per period.
	for i := range calls {
		for j := i + 1; j < len(calls); j++ {
			if allowed := statusBurst + int(calls[j].Sub(calls[i])/statusEvery); j-i+1 > allowed {
				t.Fatalf("%d Status calls between %v and %v", j-i+1, calls[i].Format(time.TimeOnly), calls[j].Format(time.TimeOnly))
			}
		}
	}
}

// TestStatusCheckCoalesced: a check asked for while the order's limit is
// used up waits for it, is shared by the requests made meanwhile, and is
// made once the limit allows.
func TestStatusCheckCoalesced(t *testing.T) {
	h := newHarness(t)
	h.checkout("CO-1", "100.00", "333000001")
	h.complete("CO-1", "")
	h.refreshDue() // the first call of the burst: hold
	b1, s1 := h.signed("CO-1", "approved", `,"n":1`)
	postCallback(t, h.callbackURL(), b1, s1)
	h.refreshDue() // the second
	if n := len(h.statusCalls()); n != 2 {
		t.Fatalf("%d Status calls", n)
	}
	// The customer's order is finished meanwhile; three requests for a
	// check come inside the window.
	if st, m := h.post(MethodFinish, `{"order_id":"CO-1","amount":"100.00","check_number":"K1"}`, testToken); st != 200 || code(m) != 0 {
		t.Fatalf("finish: %d %v", st, m)
	}
	for i := 2; i < 4; i++ {
		b, s := h.signed("CO-1", "approved", fmt.Sprintf(`,"n":%d`, i))
		postCallback(t, h.callbackURL(), b, s)
	}
	due, wait := h.gw.due(h.clock.Now())
	if len(due) != 0 || wait <= 0 || wait > statusEvery {
		t.Fatalf("%d due, next in %v", len(due), wait)
	}
	if o := h.order("CO-1"); o.State != StateHold {
		t.Fatalf("state %s", o.State)
	}
	h.clock.Advance(wait)
	if n := h.refreshDue(); n != 1 {
		t.Fatalf("%d due once the limit allows", n)
	}
	if n := len(h.statusCalls()); n != 3 {
		t.Fatalf("%d Status calls for three requests", n)
	}
	if o := h.order("CO-1"); o.State != StateFinished {
		t.Fatalf("state %s: the check was dropped", o.State)
	}
	if due, _ := h.gw.due(h.clock.Now().Add(statusEvery)); len(due) != 0 {
		t.Fatalf("%d checks left", len(due))
	}
}

// TestCallbackForUnknownOrder: the callback of an order the gateway does
// not track waits in memory until Status confirms the order, then is its
// receipt; replayed, it is looked up at the limit's pace only.
func TestCallbackForUnknownOrder(t *testing.T) {
	h := newHarness(t)
	// An order Mokka knows but the gateway does not (its answer was lost).
	body := h.checkoutBody("ADOPT-2", "300.00", "333000001")
	req, _ := http.NewRequest(http.MethodPost, h.fake.URL()+"/"+MethodCheckout+"?store_id=72&signature="+Sign([]byte(body), h.fake.SecretKey()), strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cb := h.complete("ADOPT-2", "")
	for i := 0; i < 20; i++ {
		postCallback(t, h.callbackURL(), cb.Body, cb.Signature)
	}
	if h.cs.total() != 0 {
		t.Fatal("a callback for an unknown order was written")
	}
	h.refreshDue()
	o := h.order("ADOPT-2")
	if o.State != StateHold || o.Callbacks != 1 || len(o.Receipts) != 1 || o.Receipts[0].Decision != "approved" {
		t.Fatalf("adopted %+v", o)
	}
	writes := h.cs.writes("72", "ADOPT-2")
	for i := 0; i < 20; i++ {
		postCallback(t, h.callbackURL(), cb.Body, cb.Signature)
	}
	h.refreshDue()
	if got := h.cs.writes("72", "ADOPT-2"); got != writes {
		t.Fatalf("%d writes for replays of the adopting callback", got-writes)
	}
	if n := len(h.fake.RequestsFor(MethodStatus)); n != 1 {
		t.Fatalf("%d Status calls", n)
	}

	// An order Mokka does not know either (a registration's callback):
	// forgotten after each look, looked up again only as the limit allows.
	unknown, sig := h.signed("NOBODY-1", "approved", "")
	for i := 0; i < 50; i++ {
		if st, c := postCallback(t, h.callbackURL(), unknown, sig); st != 200 || c != CodeOK {
			t.Fatalf("HTTP %d code %d", st, c)
		}
		h.refreshDue()
	}
	if n := len(h.fake.RequestsFor(MethodStatus)) - 1; n > statusBurst {
		t.Fatalf("%d Status calls for 50 copies of an unknown order's callback", n)
	}
	if _, ok, _ := h.gw.Order("NOBODY-1"); ok || h.cs.writes("72", "NOBODY-1") != 0 {
		t.Fatal("an unknown order was stored")
	}
}

func TestStatusGate(t *testing.T) {
	h := newHarness(t)
	g, now := h.gw, h.clock.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if at := g.statusAllowedLocked("x"); !at.IsZero() {
		t.Fatalf("a new order waits until %v", at)
	}
	for i := 0; i < statusBurst; i++ {
		if at := g.statusAllowedLocked("x"); at.After(now) {
			t.Fatalf("call %d of the burst waits %v", i, at.Sub(now))
		}
		g.takeStatusLocked("x", now)
	}
	if at := g.statusAllowedLocked("x"); !at.Equal(now.Add(statusEvery)) {
		t.Fatalf("after the burst: wait %v", at.Sub(now))
	}
	// Another order has its own limit.
	if at := g.statusAllowedLocked("y"); !at.IsZero() {
		t.Fatal("orders share a limit")
	}
	// Steady pace: one per period.
	for i := 1; i <= 5; i++ {
		tt := now.Add(time.Duration(i) * statusEvery)
		if at := g.statusAllowedLocked("x"); at.After(tt) {
			t.Fatalf("period %d waits until %v", i, at.Sub(now))
		}
		g.takeStatusLocked("x", tt)
		if at := g.statusAllowedLocked("x"); !at.After(tt) {
			t.Fatalf("period %d: a second call allowed", i)
		}
	}
	// After a quiet time the whole burst is back, and a full map sheds
	// only what it can forget.
	later := now.Add(time.Hour)
	for i := 0; i < maxSeen; i++ {
		g.takeStatusLocked(fmt.Sprint("old-", i), now)
	}
	g.takeStatusLocked("fresh", later)
	if _, ok := g.gates["old-1"]; ok {
		t.Fatal("a spent limit was kept")
	}
	if at := g.statusAllowedLocked("fresh"); at.After(later) {
		t.Fatal("the second call of a new burst waits")
	}
}

// TestOldOrderDocuments: documents written before callbacks were kept
// apart (callbacks in the history, trimmed at 50 entries) still load, keep
// their record, and their callbacks become receipts.
func TestOldOrderDocuments(t *testing.T) {
	h := newHarness(t)
	// The record the old agent buffered for OLD-1, byte for byte.
	oldRecord := `{"store_id":"72","order_id":"OLD-1","state":"hold","decision":"approved","amount":"100.00",` +
		`"prepayment_amount":"0.00","returned_amount":"0.00","term":3,"expired":false,"tablet":"Front counter",` +
		`"created_at":"2026-03-01T09:00:00Z","state_changed_at":"2026-03-01T09:01:00Z",` +
		`"states":[{"state":"pending","at":"2026-03-01T09:00:00Z"},{"state":"hold","at":"2026-03-01T09:01:00Z"}]}`
	oldDoc := `{"store_id":"72","order_id":"OLD-1","tablet":"Front counter","state":"hold","decision":"approved",` +
		`"amount":"100.00","term":3,"expired":false,"created_at":"2026-03-01T09:00:00Z",` +
		`"state_changed_at":"2026-03-01T09:01:00Z","updated_at":"2026-03-01T09:02:00Z","checked_at":"2026-03-01T09:01:00Z",` +
		`"callbacks":3,"history":[` +
		`{"at":"2026-03-01T09:00:00Z","kind":"created","source":"checkout","state":"pending","amount":"100.00"},` +
		`{"at":"2026-03-01T09:00:30Z","kind":"callback","source":"callback","decision":"approved"},` +
		`{"at":"2026-03-01T09:01:00Z","kind":"state","source":"refresh","state":"hold","decision":"approved"},` +
		`{"at":"2026-03-01T09:01:30Z","kind":"callback","source":"callback","decision":"approved"},` +
		`{"at":"2026-03-01T09:02:00Z","kind":"callback","source":"callback","decision":"approved"}],` +
		`"reported":"` + store.Version([]byte(oldRecord)) + `"}`
	// An order the old bug hurt: 60 replays pushed hold out of the history.
	var hist []string
	hist = append(hist, `{"at":"2026-03-01T09:00:00Z","kind":"created","source":"checkout","state":"pending","amount":"50.00"}`)
	for i := 0; i < 49; i++ {
		hist = append(hist, fmt.Sprintf(`{"at":"2026-03-01T09:%02d:00Z","kind":"callback","source":"callback","decision":"approved"}`, 10+i))
	}
	trimmedRecord := `{"store_id":"72","order_id":"OLD-2","state":"hold","decision":"approved","amount":"50.00",` +
		`"prepayment_amount":"0.00","returned_amount":"0.00","term":3,"expired":false,"tablet":"Front counter",` +
		`"created_at":"2026-03-01T09:00:00Z","state_changed_at":"2026-03-01T09:01:00Z",` +
		`"states":[{"state":"pending","at":"2026-03-01T09:00:00Z"}]}`
	trimmedDoc := `{"store_id":"72","order_id":"OLD-2","tablet":"Front counter","state":"hold","decision":"approved",` +
		`"amount":"50.00","term":3,"expired":false,"created_at":"2026-03-01T09:00:00Z",` +
		`"state_changed_at":"2026-03-01T09:01:00Z","updated_at":"2026-03-01T09:59:00Z",` +
		`"callbacks":60,"history":[` + strings.Join(hist, ",") + `],"reported":"` + store.Version([]byte(trimmedRecord)) + `"}`
	for key, doc := range map[string]string{"72/OLD-1": oldDoc, "72/OLD-2": trimmedDoc} {
		if _, err := h.st.PutDoc(OrdersCollection, key, []byte(doc), nil); err != nil {
			t.Fatal(err)
		}
	}
	cs := newCountingStore(h.st)
	g2, err := New(h.cfg, Options{Store: cs, Clock: h.clock})
	if err != nil {
		t.Fatal(err)
	}
	v, ok, err := g2.Order("OLD-1")
	if err != nil || !ok {
		t.Fatalf("old document: %v %v", ok, err)
	}
	if got := historyStates(v.Order); !slices.Equal(got, []State{StatePending, StateHold}) || len(v.History) != 2 {
		t.Fatalf("history %+v", v.History)
	}
	if len(v.Receipts) != 3 || v.Receipts[0].At.Format(time.TimeOnly) != "09:00:30" || v.Receipts[2].Decision != "approved" || v.Callbacks != 3 {
		t.Fatalf("receipts %+v, callbacks %d", v.Receipts, v.Callbacks)
	}
	v2, _, _ := g2.Order("OLD-2")
	if len(v2.History) != 1 || len(v2.Receipts) != maxReceipts || v2.Receipts[maxReceipts-1].At.Format(time.TimeOnly) != "09:58:00" || v2.State != StateHold {
		t.Fatalf("trimmed document: %d history, %d receipts, %s", len(v2.History), len(v2.Receipts), v2.State)
	}
	// Their records are the ones already sent: nothing is due to be
	// buffered, nothing was written.
	for _, k := range []string{"72/OLD-1", "72/OLD-2"} {
		g2.mu.Lock()
		e := g2.tracked[k]
		g2.mu.Unlock()
		if e == nil || e.reportDue || e.state != StateHold {
			t.Fatalf("%s tracked as %+v", k, e)
		}
	}
	if n := cs.total(); n != 0 || len(h.records()) != 0 {
		t.Fatalf("%d writes, %d records after loading old documents", n, len(h.records()))
	}
	// A callback to an old order: recorded once (the old receipts have no
	// digest), then a repeat.
	srv := httptest.NewServer(g2)
	t.Cleanup(srv.Close)
	body, sig := h.signed("OLD-1", "approved", "")
	for i := 0; i < 5; i++ {
		postCallback(t, srv.URL+"/mokka/callback", body, sig)
	}
	if n := cs.writes("72", "OLD-1"); n != 1 {
		t.Fatalf("%d writes", n)
	}
	v, _, _ = g2.Order("OLD-1")
	if v.Callbacks != 4 || len(v.Receipts) != 4 || len(v.History) != 2 {
		t.Fatalf("after a callback: %+v", v.Order)
	}
	// Stored in the new shape: no callbacks in the history.
	raw, _, _ := h.st.GetDoc(OrdersCollection, "72/OLD-1")
	if strings.Contains(string(raw), `"kind":"callback"`) || !strings.Contains(string(raw), `"callback_receipts"`) {
		t.Fatalf("document %s", raw)
	}
	if len(h.records()) != 0 {
		t.Fatal("a callback made a record")
	}
}

// FuzzCallback posts any body, correctly signed, to the callback handler:
// never a panic or a server error, and a body posted again changes nothing.
// Posted without a signature (a hint), it never writes anything.
func FuzzCallback(f *testing.F) {
	h := newHarness(f)
	h.checkout("FZ-1", "100.00", "333000001")
	for _, s := range []string{
		`{"order_id":"FZ-1","decision":"approved","amount":"100.00"}`,
		`{"order_id":"FZ-1","decision":"declined","amount":0}`,
		`{"order_id":"FZ-1","decision":null}`,
		`{"order_id":"OTHER-1","decision":"approved"}`,
		`{"order_id":12345}`, `{"order_id":""}`, `{}`, `[]`, `not json`, `{"order_id":"FZ-1","order_id":"FZ-2"}`,
		`{"order_id":"` + strings.Repeat("x", 300) + `"}`, "{\"order_id\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sig := Sign(body, h.fake.SecretKey())
		post := func() int {
			return postSigned(t, h, body, sig)
		}
		before := h.cs.total()
		if st := postSigned(t, h, body, ""); st != 200 && st != 400 && st != 413 {
			t.Fatalf("unsigned: HTTP %d", st)
		}
		if h.cs.total() != before {
			t.Fatal("an unsigned callback was written")
		}
		first := post()
		if first != 200 && first != 400 && first != 413 {
			t.Fatalf("HTTP %d", first)
		}
		writes := h.cs.total()
		if again := post(); again != first {
			t.Fatalf("HTTP %d, then %d", first, again)
		}
		if h.cs.total() != writes {
			t.Fatal("a repeated callback was written")
		}
	})
}

// postSigned posts body to the callback handler with sig ("" for none)
// and returns the HTTP status; the answer must be JSON.
func postSigned(t *testing.T, h *harness, body []byte, sig string) int {
	t.Helper()
	q := ""
	if sig != "" {
		q = "?signature=" + sig
	}
	req := httptest.NewRequest(http.MethodPost, "/mokka/callback"+q, strings.NewReader(string(body)))
	w := httptest.NewRecorder()
	h.gw.ServeHTTP(w, req)
	var m mokkaAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("answer is not JSON: %q", w.Body.Bytes())
	}
	return w.Code
}
