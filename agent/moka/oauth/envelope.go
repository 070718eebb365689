package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/pwbi/edge-agent/agent/moka/internal/wire"
)

// This file reads the envelopes of the Open API's answers. The payments
// page is the hot path and goes through the apikey mapper's single-pass
// scanner; the small ones use encoding/json. Where the reference leaves the
// envelope open (profile, outlets, items), both {"data":{…}} and the bare
// object are accepted.

// decodePaymentsPage reads {"data":{"payments":[…],"next_url":…,
// "completed":…}}. payments null is an empty page; next_url may be a
// string, null or absent; completed true, false, null or absent. The
// payments are sub-slices of body.
func decodePaymentsPage(body []byte) (items []json.RawMessage, next string, completed bool, err error) {
	items, _, next, completed, err = decodePaymentsPageDecoded(body)
	return items, next, completed, err
}

// decodePaymentsPageDecoded is decodePaymentsPage that also decodes each
// payment for the mapper in the same pass (decoded[i] belongs to
// items[i]): the page's bytes are scanned once.
func decodePaymentsPageDecoded(body []byte) (items []json.RawMessage, decoded []rawPayment, next string, completed bool, err error) {
	s := wire.NewScanner(body)
	if s.Peek() != '{' {
		return nil, nil, "", false, fmt.Errorf("%w: not a JSON object", ErrBadResponse)
	}
	sawData, sawPayments := false, false
	err = s.Object(func(key []byte) error {
		if string(key) != "data" {
			_, err := s.Value()
			return err
		}
		if s.Peek() != '{' {
			return fmt.Errorf("%w: data is not an object", ErrBadResponse)
		}
		sawData = true
		return s.Object(func(key []byte) error {
			switch string(key) {
			case "payments":
				sawPayments = true
				items, decoded = items[:0], decoded[:0]
				switch s.Peek() {
				case '[':
					decoded = decoded[:0]
					return s.Array(func(int) error {
						if s.Peek() != '{' {
							v, err := s.Value()
							items = append(items, v)
							decoded = append(decoded, rawPayment{notObject: true})
							return err
						}
						start := s.Offset()
						decoded = append(decoded, rawPayment{})
						err := decodePaymentAt(s, &decoded[len(decoded)-1])
						items = append(items, body[start:s.Offset()])
						return err
					})
				case 'n':
					_, err := s.Value()
					return err
				}
				return fmt.Errorf("%w: data.payments is not an array", ErrBadResponse)
			case "next_url":
				raw, err := s.Value()
				if err != nil {
					return err
				}
				if next, err = wire.TextField(raw); err != nil {
					return fmt.Errorf("%w: data.next_url is not a string", ErrBadResponse)
				}
			case "completed":
				raw, err := s.Value()
				if err != nil {
					return err
				}
				if completed, err = boolField(raw); err != nil {
					return fmt.Errorf("%w: data.completed is not a boolean", ErrBadResponse)
				}
			default:
				_, err := s.Value()
				return err
			}
			return nil
		})
	})
	if err == nil {
		err = s.End()
	}
	if err != nil {
		return nil, nil, "", false, wire.BadResponse(err)
	}
	if !sawData || !sawPayments {
		return nil, nil, "", false, fmt.Errorf("%w: no data.payments", ErrBadResponse)
	}
	if items == nil {
		items = []json.RawMessage{}
	}
	return items, decoded, next, completed, nil
}

// boolField reads true, false or null/absent (false); also 1/0 and the
// strings "true"/"false", which loosely typed backends send.
func boolField(raw []byte) (bool, error) {
	switch string(raw) {
	case "", "null", "false", "0", `"false"`, `"0"`:
		return false, nil
	case "true", "1", `"true"`, `"1"`:
		return true, nil
	}
	return false, errors.New("want true or false")
}

// envelope is the top level of the small answers.
type envelope map[string]json.RawMessage

func decodeEnvelope(body []byte) (envelope, error) {
	var e envelope
	if err := json.Unmarshal(body, &e); err != nil || e == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrBadResponse)
	}
	return e, nil
}

// dataObject returns the object under "data", or the whole body when it has
// no "data" object.
func dataObject(body []byte) (json.RawMessage, error) {
	e, err := decodeEnvelope(body)
	if err != nil {
		return nil, err
	}
	if d, ok := e["data"]; ok && len(d) > 0 && d[0] == '{' {
		return d, nil
	}
	return body, nil
}

// listIn returns the array data.{name}, or data when it is an array, or
// {name} at the top.
func listIn(body []byte, name string) ([]json.RawMessage, error) {
	e, err := decodeEnvelope(body)
	if err != nil {
		return nil, err
	}
	candidates := []json.RawMessage{}
	if d, ok := e["data"]; ok && len(d) > 0 {
		switch d[0] {
		case '[':
			candidates = append(candidates, d)
		case '{':
			var inner envelope
			if json.Unmarshal(d, &inner) == nil {
				if l, ok := inner[name]; ok {
					candidates = append(candidates, l)
				}
			}
		}
	}
	if l, ok := e[name]; ok {
		candidates = append(candidates, l)
	}
	for _, c := range candidates {
		if string(c) == "null" {
			return []json.RawMessage{}, nil
		}
		var list []json.RawMessage
		if err := json.Unmarshal(c, &list); err == nil {
			if list == nil {
				list = []json.RawMessage{}
			}
			return list, nil
		}
	}
	return nil, fmt.Errorf("%w: no %s list", ErrBadResponse, name)
}

// decodeItemsPage reads an items page: the list and total_count (-1 when
// absent).
func decodeItemsPage(body []byte) ([]json.RawMessage, int, error) {
	items, err := listIn(body, "items")
	if err != nil {
		return nil, 0, err
	}
	total := -1
	obj, err := dataObject(body)
	if err != nil {
		return nil, 0, err
	}
	var t struct {
		TotalCount json.RawMessage `json:"total_count"`
	}
	if json.Unmarshal(obj, &t) == nil && len(t.TotalCount) > 0 {
		if n, err := strconv.Atoi(string(t.TotalCount)); err == nil && n >= 0 {
			total = n
		}
	}
	return items, total, nil
}
