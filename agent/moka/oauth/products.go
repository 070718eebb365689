package oauth

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/pwbi/edge-agent/agent/moka/internal/wire"
	"github.com/pwbi/edge-agent/agent/unified"
)

// Prefixes of product external ids that are not variant ids, so that ids
// from Moka's separate tables never collide in a key.
const (
	itemIDPrefix     = "item-"            // an item without variants
	modifierIDPrefix = "modifier_option-" // a modifier option (add-on)
)

// rawItem is an item of /v1/outlets/{id}/items.
type rawItem struct {
	ID           json.RawMessage   `json:"id"`
	Name         json.RawMessage   `json:"name"`
	SKU          json.RawMessage   `json:"sku"`
	Price        json.RawMessage   `json:"price"`
	IsDeleted    json.RawMessage   `json:"is_deleted"`
	Category     json.RawMessage   `json:"category"`
	CategoryName json.RawMessage   `json:"category_name"`
	Variants     []json.RawMessage `json:"item_variants"`
	Modifiers    []json.RawMessage `json:"active_modifiers"`
}

type rawVariant struct {
	ID        json.RawMessage `json:"id"`
	Name      json.RawMessage `json:"name"`
	SKU       json.RawMessage `json:"sku"`
	Price     json.RawMessage `json:"price"`
	IsDeleted json.RawMessage `json:"is_deleted"`
}

type rawModifierGroup struct {
	ID      json.RawMessage   `json:"id"`
	Name    json.RawMessage   `json:"name"`
	Options []json.RawMessage `json:"modifier_options"`
}

type rawOption struct {
	ID        json.RawMessage `json:"id"`
	Name      json.RawMessage `json:"name"`
	Price     json.RawMessage `json:"price"`
	IsDeleted json.RawMessage `json:"is_deleted"`
}

// MapItem maps one item of the library (GET /v1/outlets/{id}/items) to
// product records. Prices live on variants in Moka, so each live variant
// is one product:
//
//	item_variants[].id              → external_id and variant_id
//	id                              → item_id
//	name, or "name (variant name)"  → name (the variant's name is added
//	                                  when it is not empty and differs)
//	item_variants[].name            → variant
//	category.name (or category_name)→ category
//	item_variants[].sku (else sku)  → sku
//	item_variants[].price           → price
//
// item_id and variant_id are the ids a sale's checkouts carry
// (checkouts[].item_id, item_variant_id), so sales join the catalogue
// whatever the names. An item without variants is one product "item-{id}"
// with the item's price, item_id id and no variant_id. The options of
// active_modifiers (add-ons such as "Extra shot") are returned apart as
// products "modifier_option-{id}" whose category is the modifier's name
// (no item_id or variant_id: a sale lists them as modifiers of a line),
// for the caller to de-duplicate across items.
// Deleted items, variants and options are left out; outlet_id is
// MapContext.DefaultOutletID (the walked outlet). A bad item gives a
// *MapError.
func MapItem(raw json.RawMessage, m MapContext) (products, modifiers []unified.Product, err error) {
	if m.BusinessID == "" {
		return nil, nil, ErrNoBusinessID
	}
	fail := func(id, field, reason string) ([]unified.Product, []unified.Product, error) {
		return nil, nil, &MapError{Kind: "product", ID: id, OutletID: m.DefaultOutletID, Field: field, Reason: reason}
	}
	var it rawItem
	if err := json.Unmarshal(raw, &it); err != nil {
		return fail("", "", jsonProblem(err))
	}
	id, err := wire.IDField(it.ID)
	if err != nil {
		return fail("", "id", err.Error())
	}
	if id == "" {
		return fail("", "id", "missing")
	}
	if del, err := boolField(it.IsDeleted); err != nil {
		return fail(id, "is_deleted", err.Error())
	} else if del {
		return nil, nil, nil
	}
	name, err := wire.TextField(it.Name)
	if err != nil {
		return fail(id, "name", err.Error())
	}
	category, err := categoryName(it.Category, it.CategoryName)
	if err != nil {
		return fail(id, "category", err.Error())
	}
	sku, err := wire.IDField(it.SKU)
	if err != nil {
		return fail(id, "sku", err.Error())
	}
	base := unified.Product{
		SourceSystem: unified.SourceMoka,
		BusinessID:   m.BusinessID,
		OutletID:     m.DefaultOutletID,
		Category:     category,
		Currency:     m.Currency,
	}
	if base.Currency == "" {
		base.Currency = "IDR"
	}
	for i, vraw := range it.Variants {
		f := "item_variants[" + strconv.Itoa(i) + "]."
		var v rawVariant
		if err := json.Unmarshal(vraw, &v); err != nil {
			return fail(id, f[:len(f)-1], jsonProblem(err))
		}
		if del, err := boolField(v.IsDeleted); err != nil {
			return fail(id, f+"is_deleted", err.Error())
		} else if del {
			continue
		}
		p := base
		if p.ExternalID, err = wire.IDField(v.ID); err != nil || p.ExternalID == "" {
			return fail(id, f+"id", "missing or invalid")
		}
		vname, err := wire.TextField(v.Name)
		if err != nil {
			return fail(id, f+"name", err.Error())
		}
		p.Name, p.ItemID, p.VariantID = name, id, p.ExternalID
		if vname = strings.TrimSpace(vname); vname != "" && vname != name {
			p.Name = name + " (" + vname + ")"
		}
		p.Variant = vname
		if p.SKU, err = wire.IDField(v.SKU); err != nil {
			return fail(id, f+"sku", err.Error())
		}
		if p.SKU == "" {
			p.SKU = sku
		}
		if p.Price, _, err = decimalField(v.Price); err != nil {
			return fail(id, f+"price", err.Error())
		}
		products = append(products, p)
	}
	if len(it.Variants) == 0 {
		p := base
		p.ExternalID, p.Name, p.SKU, p.ItemID = itemIDPrefix+id, name, sku, id
		if p.Price, _, err = decimalField(it.Price); err != nil {
			return fail(id, "price", err.Error())
		}
		products = append(products, p)
	}
	for i, graw := range it.Modifiers {
		f := "active_modifiers[" + strconv.Itoa(i) + "]"
		var g rawModifierGroup
		if err := json.Unmarshal(graw, &g); err != nil {
			return fail(id, f, jsonProblem(err))
		}
		group, err := wire.TextField(g.Name)
		if err != nil {
			return fail(id, f+".name", err.Error())
		}
		for j, oraw := range g.Options {
			of := f + ".modifier_options[" + strconv.Itoa(j) + "]."
			var o rawOption
			if err := json.Unmarshal(oraw, &o); err != nil {
				return fail(id, of[:len(of)-1], jsonProblem(err))
			}
			if del, err := boolField(o.IsDeleted); err != nil {
				return fail(id, of+"is_deleted", err.Error())
			} else if del {
				continue
			}
			oid, err := wire.IDField(o.ID)
			if err != nil || oid == "" {
				return fail(id, of+"id", "missing or invalid")
			}
			p := base
			p.ExternalID, p.Category = modifierIDPrefix+oid, group
			if p.Name, err = wire.TextField(o.Name); err != nil {
				return fail(id, of+"name", err.Error())
			}
			if p.Price, _, err = decimalField(o.Price); err != nil {
				return fail(id, of+"price", err.Error())
			}
			modifiers = append(modifiers, p)
		}
	}
	return products, modifiers, nil
}

// categoryName reads category as {"name": …} or a string, else
// category_name.
func categoryName(obj, name json.RawMessage) (string, error) {
	if len(obj) > 0 && obj[0] == '{' {
		var c struct {
			Name json.RawMessage `json:"name"`
		}
		if err := json.Unmarshal(obj, &c); err != nil {
			return "", err
		}
		return wire.TextField(c.Name)
	}
	if len(obj) > 0 && obj[0] == '"' {
		return wire.TextField(obj)
	}
	return wire.TextField(name)
}
