package jurnalsink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink/internal/mekari"
)

// The sink remembers which products and which walk-in contact exist in
// Jurnal (p/, c/), so that a sale costs no lookup. Jurnal may stop having
// them: an accountant deletes or renames a product, the company's data is
// restored from a backup. Trusting the memory then makes Jurnal refuse
// every invoice naming them ("Product "X" does not exist"), and each sale
// would go to the dead letters. A refusal that names something remembered
// makes the sink forget it (forgetMissing) and post the document once
// more, finding or creating it first; a second refusal stands.

// missingError is a refusal of a document naming products or the contact
// the sink had remembered as existing and has now forgotten: trying once
// more finds or creates them.
type missingError struct {
	err     error
	renamed map[string]string // products renamed in Jurnal: old name → new name
}

func (e *missingError) Error() string { return e.err.Error() }
func (e *missingError) Unwrap() error { return e.err }

// retryMissing runs post, and once more when it failed with a
// missingError.
func retryMissing(post func() error) error {
	err := post()
	if me := (*missingError)(nil); errors.As(err, &me) {
		return post()
	}
	return err
}

// heal is refusedMissing for a document that remembers, in *healed, the
// refusal it healed last (saleState.Healed, dayState.Healed): the same
// refusal again stands, and err is returned as it is. A sale refused alike
// with every other is retried, a day is retried every round: healing a
// Jurnal that keeps refusing would look the products up again and send
// the document twice each time. save stores *healed with the document; it
// is given the products found renamed in Jurnal (old name → new name).
func (s *Sink) heal(ctx context.Context, err error, lines []line, healed *string, save func(renamed map[string]string) error) error {
	var me *mekari.Error
	if !errors.As(err, &me) || me.Message == *healed {
		return err
	}
	err = s.refusedMissing(ctx, err, lines)
	var miss *missingError
	if errors.As(err, &miss) {
		*healed = me.Message
		if serr := save(miss.renamed); serr != nil {
			return serr
		}
	}
	return err
}

// refusedMissing wraps err, a refusal of a document with lines, in a
// missingError when Jurnal says that a product of lines or the walk-in
// contact does not exist and the sink had remembered it. A product whose
// Jurnal id it knows is looked up by that id: renamed in Jurnal, it is
// remembered by its new name (missingError.renamed); gone, it is
// forgotten, as is the contact. Any other err is returned as it is (a
// deposit account, a tax or a warehouse that does not exist is the
// configuration's, not the memory's).
func (s *Sink) refusedMissing(ctx context.Context, err error, lines []line) error {
	var me *mekari.Error
	if !errors.As(err, &me) || me.Kind != mekari.Invalid || !strings.Contains(strings.ToLower(me.Message), "does not exist") {
		return err
	}
	named := map[string]bool{}
	for _, l := range lines {
		if l.Product != "" && strings.Contains(me.Message, `"`+l.Product+`"`) {
			named[l.Product] = true
		}
	}
	var forget []string
	if contact := clip(s.cfg.CustomerName, 255); strings.Contains(me.Message, `"`+contact+`"`) {
		if _, ok, gerr := s.docs.GetDoc(Collection, "c/"+contact); gerr != nil {
			return &storeError{gerr}
		} else if ok {
			forget = append(forget, "c/"+contact)
		}
	}
	known := map[string]productState{} // p/ key → what the sink knew
	if len(named) > 0 {
		serr := s.docs.Docs(Collection, func(key string, value []byte) error {
			if !strings.HasPrefix(key, "p/") {
				return nil
			}
			var p productState
			if json.Unmarshal(value, &p) == nil && named[p.Name] {
				known[key] = p
			}
			return nil
		})
		if serr != nil {
			return &storeError{serr}
		}
	}
	renamed := map[string]string{}
	for key, p := range known {
		now, gerr := s.productByID(ctx, p.ID)
		if gerr != nil {
			return fmt.Errorf("look up product %d: %w", p.ID, gerr)
		}
		if now.Name == "" || now.Name == p.Name {
			forget = append(forget, key) // gone (or not known by id): found or created again
			continue
		}
		if perr := putJSON(s.docs, key, productState{Name: now.Name, ID: p.ID}); perr != nil {
			return &storeError{perr}
		}
		renamed[p.Name] = now.Name
	}
	if len(forget) == 0 && len(renamed) == 0 {
		return err
	}
	for _, k := range forget {
		if derr := s.docs.DeleteDoc(Collection, k); derr != nil {
			return &storeError{derr}
		}
	}
	s.log.Warn("Jurnal no longer has products or the contact the agent knew: they are looked up again",
		"forgotten", len(forget), "renamed", len(renamed))
	return &missingError{err: err, renamed: renamed}
}

// productByID reads the Jurnal product id; a product Jurnal does not have
// (or an id of 0, not known) is the zero row.
func (s *Sink) productByID(ctx context.Context, id int64) (productRow, error) {
	if id == 0 {
		return productRow{}, nil
	}
	var out struct {
		Product productRow `json:"product"`
	}
	err := s.api.Do(ctx, "GET", "products/"+strconv.FormatInt(id, 10), nil, &out)
	if mekari.IsKind(err, mekari.NotFound) {
		return productRow{}, nil
	}
	return out.Product, err
}
