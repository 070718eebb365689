package apikey

import (
	"encoding/json"
	"errors"

	"github.com/pwbi/edge-agent/agent/moka/internal/wire"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/store"
)

// TransactionInput turns a mapped transaction into a store input: kind
// "transaction", key "moka/{business}/{outlet}/{id}", data the canonical
// JSON (whose SHA-256 is the record version).
func TransactionInput(t unified.Transaction) (store.Input, error) { return wire.TransactionInput(t) }

// ProductInput turns a mapped product into a store input of kind "product".
func ProductInput(p unified.Product) (store.Input, error) { return wire.ProductInput(p) }

// Reject is a raw record that could not be mapped, with the reason. The
// caller keeps it aside (dead letter) instead of dropping it.
type Reject struct {
	Raw json.RawMessage
	Err *MapError
}

// TransactionInputs maps a page of raw transactions to store inputs, in
// page order. Records that cannot be mapped are returned as rejects, never
// dropped; err is non-nil only for a misconfigured MapContext, in which case
// nothing is returned.
func TransactionInputs(items []json.RawMessage, m MapContext) (inputs []store.Input, rejects []Reject, err error) {
	inputs = make([]store.Input, 0, len(items))
	for _, raw := range items {
		t, err := MapTransaction(raw, m)
		if err == nil {
			var in store.Input
			if in, err = TransactionInput(t); err == nil {
				inputs = append(inputs, in)
				continue
			}
			err = &MapError{Kind: "transaction", ID: t.ExternalID, Field: "timestamp", Reason: err.Error()}
		}
		var me *MapError
		if !errors.As(err, &me) {
			return nil, nil, err
		}
		rejects = append(rejects, Reject{Raw: raw, Err: me})
	}
	return inputs, rejects, nil
}

// ProductInputs is TransactionInputs for a page of products.
func ProductInputs(items []json.RawMessage, m MapContext) (inputs []store.Input, rejects []Reject, err error) {
	inputs = make([]store.Input, 0, len(items))
	for _, raw := range items {
		p, err := MapProduct(raw, m)
		if err == nil {
			var in store.Input
			if in, err = ProductInput(p); err == nil {
				inputs = append(inputs, in)
				continue
			}
		}
		var me *MapError
		if !errors.As(err, &me) {
			return nil, nil, err
		}
		rejects = append(rejects, Reject{Raw: raw, Err: me})
	}
	return inputs, rejects, nil
}
