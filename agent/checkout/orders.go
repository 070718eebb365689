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

// Event is one entry of an order's history.
type Event struct {
	At       time.Time `json:"at"`
	Kind     string    `json:"kind"`   // EventCreated, EventState, EventCallback, EventReturn
	Source   string    `json:"source"` // who told: checkout, status, callback, refresh, return
	State    State     `json:"state,omitempty"`
	Decision string    `json:"decision,omitempty"`
	Amount   string    `json:"amount,omitempty"`
}

// Event kinds.
const (
	EventCreated  = "created"
	EventState    = "state"
	EventCallback = "callback"
	EventReturn   = "return"
)

// maxHistory bounds an order's history; the oldest entries after the
// first go first.
const maxHistory = 50

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
	Callbacks      int       `json:"callbacks,omitempty"` // verified callbacks received
	History        []Event   `json:"history"`

	// Reported is the version of the last mokka_order record buffered for
	// this order; a record is due when the current one differs.
	Reported string `json:"reported,omitempty"`
}

func (o *Order) docKey() string { return docKey(o.StoreID, o.OrderID) }

func docKey(storeID, orderID string) string { return storeID + "/" + orderID }

// RecordKey is the upstream key of an order's mokka_order records.
func RecordKey(storeID, orderID string) string { return "mokka/" + storeID + "/" + orderID }

func (o *Order) addEvent(e Event) {
	if len(o.History) >= maxHistory {
		o.History = append(o.History[:1], o.History[len(o.History)-maxHistory+2:]...)
	}
	o.History = append(o.History, e)
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
// does, so its version tells whether a new record is due.
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
