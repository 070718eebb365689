package mokkafake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// ErrUnknownOrder is returned for an order id the fake does not know.
var ErrUnknownOrder = errors.New("mokkafake: unknown order")

// defaultPhone is the customer's phone when neither the request nor the
// caller of Complete gives one: an accepted test number.
const defaultPhone = "333000001"

// Complete plays the customer finishing the Mokka form of an order (or a
// registration) with phone ("" means the phone of the request): Mokka
// decides by the seed's test numbers and the customer's limit, and sends
// the signed decision callback to the order's callback_url. It returns
// once the callback was answered (or failed).
func (s *Server) Complete(orderID, phone string) (Callback, error) {
	s.mu.Lock()
	o := s.orders[orderID]
	if o == nil {
		s.mu.Unlock()
		return Callback{}, ErrUnknownOrder
	}
	select {
	case <-s.closed:
		s.mu.Unlock()
		return Callback{}, errors.New("mokkafake: closed")
	default:
	}
	now := s.now()
	s.expireLocked(o, now)
	if o.completed || o.status != "pending" {
		s.mu.Unlock()
		return Callback{}, fmt.Errorf("mokkafake: order %s is %s, not waiting for the customer", orderID, o.status)
	}
	if phone != "" {
		o.phone = digits(phone)
	}
	if o.phone == "" {
		o.phone = defaultPhone
	}
	oc := phoneOutcome(o.phone)
	cl := s.clients[o.phone]
	if cl == nil {
		limit := oc.limit
		if limit < 0 {
			limit = s.limit
		}
		status := "active"
		if oc.inactive {
			status = "inactive"
		}
		cl = &client{limit: limit, status: status}
		if oc.decision == "approved" || o.registration {
			s.clients[o.phone] = cl
		}
	}
	o.completed = true
	o.decision = oc.decision
	var body []byte
	if o.registration {
		o.status = oc.status
		amount := int64(0)
		if oc.decision == "approved" {
			amount = cl.limit - cl.used
		}
		body = mustJSON([]field{
			{"order_id", o.id}, {"decision", o.decision}, {"amount", json.Number(cents(amount))},
			{"mobile_phone", o.phone}, {"email", o.email},
		})
	} else {
		switch {
		case oc.decision != "approved":
			o.status = "declined"
		case cl.limit-cl.used < o.amount:
			// Limit OK, but not for this amount: approved, declined.
			o.status = "declined"
		default:
			o.status = "hold"
			cl.used += o.amount
		}
		amount, sched := int64(0), []map[string]any{}
		if o.status == "hold" {
			amount, sched = o.amount, schedule(o.amount, o.term, now)
		}
		body = mustJSON([]field{
			{"order_id", o.id}, {"payment_id", "PAY-" + o.token[:10]}, {"decision", o.decision},
			{"amount", cents(amount)}, {"prepayment_amount", cents(o.prepayment)},
			{"total_amount", json.Number(cents(amount + o.prepayment))}, {"term", o.term},
			{"client", map[string]any{
				"primary_phone": o.phone, "primary_email": o.email,
				"full_name":  strings.TrimSpace(o.surname + " " + o.firstName),
				"first_name": o.firstName, "surname": o.surname, "patronymic": "",
			}},
			{"schedule", sched}, {"monthly_overpayment", json.Number("0.00")},
		})
	}
	callbackURL := o.callbackURL
	method := mCheckout
	if o.registration {
		method = mRegistration
	}
	_, key := s.credentials(method)
	if s.unsigned {
		key = ""
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	return s.sendCallback(ctx, orderID, callbackURL, key, body), nil
}

// Expire moves the order's valid_till to now: a held order becomes
// expired at its next look.
func (s *Server) Expire(orderID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orders[orderID]
	if o == nil {
		return ErrUnknownOrder
	}
	o.validTill = s.now()
	return nil
}

// Order is the fake's view of an order, for tests.
type Order struct {
	OrderID      string
	Registration bool
	Status       string
	Decision     string
	Amount       string
	Prepayment   string
	Returned     string
	Term         int
	CheckNumber  string
	Receipt      []byte
	CallbackURL  string
	IframeToken  string
}

// Order returns the fake's view of an order.
func (s *Server) Order(orderID string) (Order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orders[orderID]
	if o == nil {
		return Order{}, false
	}
	s.expireLocked(o, s.now())
	return Order{
		OrderID: o.id, Registration: o.registration, Status: o.status, Decision: o.decision,
		Amount: cents(o.amount), Prepayment: cents(o.prepayment), Returned: cents(o.returned), Term: o.term,
		CheckNumber: o.checkNumber, Receipt: append([]byte(nil), o.receipt...), CallbackURL: o.callbackURL,
		IframeToken: o.token,
	}, true
}

// field is one key of a JSON object written in a fixed order (the order
// of Mokka's own callbacks).
type field struct {
	k string
	v any
}

func mustJSON(fields []field) []byte {
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.k)
		v, err := json.Marshal(f.v)
		if err != nil {
			panic(err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String())
}

var formPage = template.Must(template.New("form").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Mokka (fake)</title>
<style>body{font-family:sans-serif;max-width:28em;margin:3em auto}input,button{font-size:1.1em;margin:.3em 0}</style>
</head><body>
<h1>Mokka — pay later (fake)</h1>
{{if .Done}}<p>{{.Done}}</p>{{else}}
<p>Order <b>{{.OrderID}}</b>{{if .Amount}}: {{.Amount}}{{end}}</p>
<form method="post">
<label>Phone <input name="phone" value="{{.Phone}}" autocomplete="off"></label><br>
<label>SMS code <input name="code" value="1111" size="6"></label><br>
<button type="submit">Confirm</button>
</form>
<p><small>Test numbers: 333 XXX 610 blocked, 333 XXX 630 not enough limit, 333 XXX 681 overdue; other 333 numbers are accepted. Code 1111 (8888 for a registration).</small></p>
{{end}}
</body></html>`))

// serveForm is the customer's form behind iframe_url: GET shows it, POST
// with the SMS code 1111 (or 8888) completes the order.
func (s *Server) serveForm(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimPrefix(r.URL.Path, "/form/v1/")
	s.mu.Lock()
	o := s.byToken[token]
	var id, amount, phone string
	var done string
	if o != nil {
		id, phone = o.id, o.phone
		if !o.registration {
			amount = cents(o.amount)
		}
		if o.completed {
			done = "This order is " + o.status + "."
		}
	}
	s.mu.Unlock()
	if o == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	if r.Method == http.MethodPost && done == "" {
		r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
		code := r.PostFormValue("code")
		if code != "1111" && code != "8888" {
			http.Error(w, "wrong SMS code", http.StatusBadRequest)
			return
		}
		ch := make(chan string, 1)
		formPhone := r.PostFormValue("phone")
		go func() {
			// The callback may take time: answer the browser at once.
			cb, err := s.Complete(id, formPhone)
			if err != nil {
				ch <- err.Error()
				return
			}
			ch <- "Callback sent (HTTP " + fmt.Sprint(cb.HTTPStatus) + ")."
		}()
		select {
		case done = <-ch:
		case <-time.After(2 * time.Second):
			done = "Thank you: the shop is being told."
		}
	}
	formPage.Execute(w, map[string]string{"OrderID": id, "Amount": amount, "Phone": phone, "Done": done}) //nolint:errcheck // the browser went away
}
