package checkout

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/pwbi/edge-agent/store"
)

// OrdersCollection is the store document collection of the tracked orders
// (one document per order, key "{store_id}/{order_id}").
const OrdersCollection = "mokka_orders"

// State is an order's state, Mokka's Status "status" value.
type State string

// Order states (reference §8). pending and hold are open: the gateway keeps
// asking Mokka about them. finished may still become refunded, by a return
// the gateway relays. The others are final.
const (
	StatePending  State = "pending"  // the customer has not finished the Mokka form
	StateHold     State = "hold"     // approved, funds held, waiting for Finish
	StateFinished State = "finished" // finalized: paid
	StateCanceled State = "canceled"
	StateExpired  State = "expired" // the hold ran out before Finish
	StateDeclined State = "declined"
	StateRefunded State = "refunded" // fully returned
)

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	switch s {
	case StatePending, StateHold, StateFinished, StateCanceled, StateExpired, StateDeclined, StateRefunded:
		return true
	}
	return false
}

// Open reports whether the order still waits for the customer or the shop.
func (s State) Open() bool { return s == StatePending || s == StateHold }

// transitions lists, for each state, the states it may move to. Mokka's
// Status is the truth, but it never goes backwards: an answer that would
// (a stale replica, a replayed response) is ignored.
var transitions = map[State][]State{
	StatePending:  {StateHold, StateFinished, StateCanceled, StateExpired, StateDeclined},
	StateHold:     {StateFinished, StateCanceled, StateExpired, StateDeclined},
	StateFinished: {StateRefunded},
	// Finishing an expired order makes Mokka cancel it (seed, Finish).
	StateExpired: {StateCanceled},
}

// CanMove reports whether an order may go from one state to another.
func CanMove(from, to State) bool { return slices.Contains(transitions[from], to) }

// Event is one entry of an order's history: its creation, each state
// change, each return.
type Event struct {
	At       time.Time `json:"at"`
	Kind     string    `json:"kind"`   // EventCreated, EventState, EventReturn
	Source   string    `json:"source"` // who told: checkout, status, callback, refresh, tablet, return
	State    State     `json:"state,omitempty"`
	Decision string    `json:"decision,omitempty"`
	Amount   string    `json:"amount,omitempty"`
}

// Event kinds.
const (
	EventCreated = "created"
	EventState   = "state"
	EventReturn  = "return"
	// EventCallback is a callback in the history of a document written
	// before callbacks were kept apart, as Receipts; decodeOrder moves
	// such entries there.
	EventCallback = "callback"
)

// An order's history keeps its creation and every state change: the state
// machine has no cycles, so there are at most four of them, and callbacks
// never push them out (they are Receipts, kept apart). Returns are money
// Mokka accepted, so they are few; still, at most maxReturnEvents of them
// are listed (ReturnedAmount holds the sum of all).
const maxReturnEvents = 50

// maxReceipts bounds the callbacks an order remembers; the oldest go first.
// Mokka sends one callback per decision, so a real order never comes near
// it; a repeat of a callback older than the last maxReceipts is recorded
// again, once.
const maxReceipts = 20

// Receipt is a verified callback the gateway recorded for an order: when it
// came, the decision it announced and a keyed hash of its raw body, by
// which a repeat is recognised and ignored. The body itself, which holds
// the customer's data, is never kept.
type Receipt struct {
	At       time.Time `json:"at"`
	Decision string    `json:"decision,omitempty"`
	// Body is the hex HMAC-SHA-256 of the raw body keyed with the secret
	// key (see callbackDigest); "" for a callback recorded by a version of
	// the agent that kept no hash.
	Body string `json:"body_hmac,omitempty"`
}

// Order is a tracked Mokka order: the gateway's view, kept in the store.
// It holds amounts, states and times, never the customer's data.
type Order struct {
	StoreID  string `json:"store_id"`
	OrderID  string `json:"order_id"`
	Tablet   string `json:"tablet,omitempty"` // the tablet that created it; "" if adopted
	State    State  `json:"state"`
	Decision string `json:"decision,omitempty"` // approved, declined; "" before the customer decided
	// Amounts are decimal strings with two decimals.
	Amount         string `json:"amount"`
	Prepayment     string `json:"prepayment_amount,omitempty"`
	ReturnedAmount string `json:"returned_amount,omitempty"`
	Term           int    `json:"term,omitempty"` // months
	Expired        bool   `json:"expired"`

	CreatedAt      time.Time `json:"created_at"`
	StateChangedAt time.Time `json:"state_changed_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	CheckedAt      time.Time `json:"checked_at,omitzero"` // last Status answer
	// Callbacks counts the distinct verified callbacks recorded; a
	// repeated one is not counted.
	Callbacks int       `json:"callbacks,omitempty"`
	History   []Event   `json:"history"`                     // never trimmed of state changes
	Receipts  []Receipt `json:"callback_receipts,omitempty"` // the last maxReceipts callbacks

	// Reported is the version of the last mokka_order record buffered for
	// this order; a record is due when the current one differs.
	Reported string `json:"reported,omitempty"`
}

func (o *Order) docKey() string { return docKey(o.StoreID, o.OrderID) }

func docKey(storeID, orderID string) string { return storeID + "/" + orderID }

// RecordKey is the upstream key of an order's mokka_order records.
func RecordKey(storeID, orderID string) string { return "mokka/" + storeID + "/" + orderID }

// decodeOrder reads an order document, of this version of the agent or of
// an older one: those kept callbacks in History (and trimmed it, so a
// state change could be missing); the callbacks are moved to Receipts. The
// record of an old document is the same as before, so reading it buffers
// nothing new.
func decodeOrder(b []byte) (*Order, error) {
	var o Order
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, err
	}
	var old []Receipt
	kept := o.History[:0]
	for _, e := range o.History {
		if e.Kind == EventCallback {
			old = append(old, Receipt{At: e.At, Decision: e.Decision})
			continue
		}
		kept = append(kept, e)
	}
	if old != nil {
		clear(o.History[len(kept):])
		o.History = kept
		o.Receipts = append(old, o.Receipts...)
		if n := len(o.Receipts) - maxReceipts; n > 0 {
			o.Receipts = slices.Delete(o.Receipts, 0, n)
		}
	}
	return &o, nil
}

// addEvent adds an entry to the history. Creation and state changes are
// always kept; of the returns, the oldest goes once there are
// maxReturnEvents.
func (o *Order) addEvent(e Event) {
	if e.Kind == EventReturn {
		n, first := 0, -1
		for i, h := range o.History {
			if h.Kind == EventReturn {
				if first < 0 {
					first = i
				}
				n++
			}
		}
		if n >= maxReturnEvents {
			o.History = slices.Delete(o.History, first, first+1)
		}
	}
	o.History = append(o.History, e)
}

// hasReceipt reports whether a callback with this body digest was
// recorded.
func (o *Order) hasReceipt(digest string) bool {
	return digest != "" && slices.ContainsFunc(o.Receipts, func(r Receipt) bool { return r.Body == digest })
}

// addReceipt records a callback; the oldest receipt goes once there are
// maxReceipts. It touches neither the history nor the record.
func (o *Order) addReceipt(r Receipt) {
	if len(o.Receipts) >= maxReceipts {
		o.Receipts = slices.Delete(o.Receipts, 0, len(o.Receipts)-maxReceipts+1)
	}
	o.Receipts = append(o.Receipts, r)
	o.Callbacks++
}

// StatusInfo is Mokka's Status answer about one order (current_order).
type StatusInfo struct {
	State    State
	Decision string
	Amount   string // two decimals; "" if Mokka sent none
	Term     int
	Expired  bool
}

// apply merges a Status answer into o at now. It reports whether the state
// changed and whether anything changed at all; a state Mokka may not reach
// from o.State (see CanMove) is ignored, the other fields still apply.
func (o *Order) apply(si StatusInfo, source string, now time.Time) (stateChanged, changed bool, err error) {
	o.CheckedAt = now
	if si.Decision != "" && si.Decision != o.Decision {
		o.Decision, changed = si.Decision, true
	}
	if si.Amount != "" && si.Amount != o.Amount {
		o.Amount, changed = si.Amount, true
	}
	if si.Term != 0 && si.Term != o.Term {
		o.Term, changed = si.Term, true
	}
	if si.Expired != o.Expired {
		o.Expired, changed = si.Expired, true
	}
	if si.State != o.State {
		if !CanMove(o.State, si.State) {
			err = fmt.Errorf("mokka reports %s for an order that is %s: ignored", si.State, o.State)
		} else {
			o.State, o.StateChangedAt = si.State, now
			o.addEvent(Event{At: now, Kind: EventState, Source: source, State: si.State, Decision: o.Decision})
			stateChanged, changed = true, true
		}
	}
	if changed {
		o.UpdatedAt = now
	}
	return stateChanged, changed, err
}

// addReturn adds a return Mokka accepted to the returned amount.
func (o *Order) addReturn(amount string, now time.Time) {
	sum := decimal.Zero
	if o.ReturnedAmount != "" {
		sum, _ = decimal.NewFromString(o.ReturnedAmount)
	}
	if a, err := decimal.NewFromString(amount); err == nil {
		sum = sum.Add(a)
	}
	o.ReturnedAmount = sum.StringFixed(2)
	o.UpdatedAt = now
	o.addEvent(Event{At: now, Kind: EventReturn, Source: "return", Amount: amount})
}

// orderRecord is the mokka_order record sent upstream: business facts only.
type orderRecord struct {
	StoreID        string        `json:"store_id"`
	OrderID        string        `json:"order_id"`
	State          State         `json:"state"`
	Decision       string        `json:"decision"`
	Amount         string        `json:"amount"`
	Prepayment     string        `json:"prepayment_amount"`
	ReturnedAmount string        `json:"returned_amount"`
	Term           int           `json:"term"`
	Expired        bool          `json:"expired"`
	Tablet         string        `json:"tablet"`
	CreatedAt      string        `json:"created_at"`
	StateChangedAt string        `json:"state_changed_at"`
	States         []recordState `json:"states"`
}

type recordState struct {
	State State  `json:"state"`
	At    string `json:"at"`
}

// record returns the order's mokka_order record data. It is canonical (the
// same order gives the same bytes) and changes only when a reported fact
// does, so its version tells whether a new record is due. Callbacks are not
// reported facts: a receipt never changes the record. Its states list is
// every state the order went through, in order, so successive records of
// an order only ever extend it.
func (o *Order) record() json.RawMessage {
	r := orderRecord{
		StoreID: o.StoreID, OrderID: o.OrderID, State: o.State, Decision: o.Decision,
		Amount: orZero(o.Amount), Prepayment: orZero(o.Prepayment), ReturnedAmount: orZero(o.ReturnedAmount),
		Term: o.Term, Expired: o.Expired, Tablet: o.Tablet,
		CreatedAt: rfc3339(o.CreatedAt), StateChangedAt: rfc3339(o.StateChangedAt),
		States: []recordState{},
	}
	for _, e := range o.History {
		if e.Kind == EventCreated || e.Kind == EventState {
			r.States = append(r.States, recordState{State: e.State, At: rfc3339(e.At)})
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // strings, ints and bools only
	}
	return b
}

func orZero(s string) string {
	if s == "" {
		return "0.00"
	}
	return s
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// input returns the mokka_order record to buffer with o's document, or nil
// when the last one buffered says the same. It sets o.Reported.
func (o *Order) input() []store.Input {
	data := o.record()
	v := store.Version(data)
	if v == o.Reported {
		return nil
	}
	o.Reported = v
	return []store.Input{{Kind: store.KindMokkaOrder, Key: RecordKey(o.StoreID, o.OrderID), Data: data}}
}

// normalizeAmount turns a Mokka amount (a string or a number, "4999.0",
// 4999, "6700.00") into two decimals without going through a float. ok is
// false for anything else.
func normalizeAmount(raw json.RawMessage) (string, bool) {
	if isNull(raw) {
		return "", false
	}
	text, ok := stringValue(raw)
	if !ok {
		text = string(raw)
	}
	d, err := decimal.NewFromString(text)
	if err != nil || d.IsNegative() || len(text) > 32 {
		return "", false
	}
	return d.StringFixed(2), true
}
