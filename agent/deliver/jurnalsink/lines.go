package jurnalsink

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/pwbi/edge-agent/agent/unified"
)

// CustomID is the deterministic custom_id of a document (SPEC §6.3):
// "moka-{outlet_id}-{part}-{part}…". Characters Jurnal mishandles (a "#"
// breaks both the lookup and the uniqueness check; "/", spaces and others
// break the lookup URL) are escaped as "~" and two hex digits per byte, "~"
// itself included, so that distinct ids stay distinct.
func CustomID(outletID string, parts ...string) string {
	var b strings.Builder
	b.WriteString("moka-")
	b.WriteString(safeID(outletID))
	for _, p := range parts {
		b.WriteByte('-')
		b.WriteString(safeID(p))
	}
	return b.String()
}

func safeID(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "~%02X", c)
		}
	}
	return b.String()
}

// clip shortens s to at most n characters (Jurnal refuses longer fields
// with a 422) and drops emoji, which Jurnal refuses in memos.
func clip(s string, n int) string {
	var b strings.Builder
	count := 0
	for _, r := range s {
		if isEmoji(r) || r == utf8.RuneError {
			continue
		}
		if count == n {
			break
		}
		b.WriteRune(r)
		count++
	}
	return strings.TrimSpace(b.String())
}

func isEmoji(r rune) bool {
	switch {
	case r >= 0x1F000 && r <= 0x1FAFF, r >= 0x2600 && r <= 0x27BF, r >= 0x2300 && r <= 0x23FF,
		r >= 0x2B00 && r <= 0x2BFF, r == 0x3030, r == 0x303D, r == 0x3297, r == 0x3299,
		r >= 0xFE00 && r <= 0xFE0F, r == 0x20E3, r == 0x200D:
		return true
	}
	return false
}

// hundred is 100 as a decimal: a rate is exact when rate × 100 is whole.
var hundred = decimal.NewFromInt(100)

// exactRate is the rate of amount spread over quantity q, if there is one
// exact to the cent whose product with q is amount again.
func exactRate(amount, q decimal.Decimal) (decimal.Decimal, bool) {
	if q.Sign() <= 0 {
		return decimal.Decimal{}, false
	}
	rate := amount.Div(q)
	return rate, rate.Mul(hundred).IsInteger() && rate.Mul(q).Equal(amount)
}

// itemLine is the line of one item: its net amount (total less its
// discount, Jurnal reading a line discount as a percent) spread over its
// quantity when that is exact to the cent, else the whole net amount as one
// unit with the quantity in the description.
func itemLine(it unified.Item, product string) line {
	gross := it.Total
	if gross.IsZero() {
		gross = it.UnitPrice.Mul(it.Quantity)
	}
	net := gross.Sub(it.DiscountAmount)
	desc := it.Name
	if it.Variant != "" {
		desc += " (" + it.Variant + ")"
	}
	if rate, ok := exactRate(net.Dec(), it.Quantity.Dec()); ok {
		return line{Product: product, Quantity: it.Quantity, Rate: unified.NewDecimal(rate), Description: desc}
	}
	return line{Product: product, Quantity: unified.DecimalFromInt(1), Rate: net,
		Description: fmt.Sprintf("%s × %s", it.Quantity, desc)}
}

// saleLines are the lines of a sale whose items' products are names
// (products[i] for Items[i]): the items, then tax and service charge as
// their own products; then what makes the lines add up to what Moka
// collected: a rounding line when short, an order discount taken off the
// largest lines when over — so the document's total equals t.Amount to the
// rupiah.
func saleLines(t unified.Transaction, products []string) []line {
	ls := make([]line, 0, len(t.Items)+3)
	sum := unified.DecimalFromInt(0)
	for i, it := range t.Items {
		l := itemLine(it, products[i])
		ls = append(ls, l)
		sum = sum.Add(l.amount())
	}
	one := unified.DecimalFromInt(1)
	if !t.TaxAmount.IsZero() {
		ls = append(ls, line{Product: productTax, Quantity: one, Rate: t.TaxAmount, Description: "Tax collected by Moka"})
		sum = sum.Add(t.TaxAmount)
	}
	if !t.ServiceChargeAmount.IsZero() {
		ls = append(ls, line{Product: productService, Quantity: one, Rate: t.ServiceChargeAmount, Description: "Service charge collected by Moka"})
		sum = sum.Add(t.ServiceChargeAmount)
	}
	switch rest := t.Amount.Sub(sum); rest.Sign() {
	case 1:
		ls = append(ls, line{Product: productAdjustment, Quantity: one, Rate: rest, Description: "Rounding"})
	case -1:
		ls = foldDiscount(ls, rest.Dec().Neg())
	}
	return ls
}

// foldDiscount takes an order discount off the lines, largest first
// (Jurnal refuses a negative rate, and reads a line discount as a
// percent), keeping every line exact.
func foldDiscount(ls []line, discount decimal.Decimal) []line {
	idx := make([]int, len(ls))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return ls[b].amount().Cmp(ls[a].amount()) })
	for _, i := range idx {
		if discount.Sign() <= 0 {
			break
		}
		amt := ls[i].amount().Dec()
		take := decimal.Min(amt, discount)
		if take.Sign() <= 0 {
			continue
		}
		ls[i] = withAmount(ls[i], amt.Sub(take))
		discount = discount.Sub(take)
	}
	out := ls[:0]
	for _, l := range ls {
		if !l.amount().IsZero() {
			out = append(out, l)
		}
	}
	return out
}

// withAmount is l carrying amount instead: the same quantity when the rate
// stays exact to the cent, else one unit.
func withAmount(l line, amount decimal.Decimal) line {
	if rate, ok := exactRate(amount, l.Quantity.Dec()); ok {
		l.Rate = unified.NewDecimal(rate)
		return l
	}
	if !l.Quantity.Equal(unified.DecimalFromInt(1)) {
		l.Description = fmt.Sprintf("%s × %s", l.Quantity, l.Description)
	}
	l.Quantity, l.Rate = unified.DecimalFromInt(1), unified.NewDecimal(amount)
	return l
}

// total is the sum of the lines' amounts.
func total(ls []line) unified.Decimal {
	sum := unified.DecimalFromInt(0)
	for _, l := range ls {
		sum = sum.Add(l.amount())
	}
	return sum
}

// sumLines merges lines per product (a daily summary): quantities and
// amounts summed, the rate the average when exact to the cent, else one
// unit at the summed amount. Lines whose amounts cancel out are dropped.
// The order is the first appearance of each product.
func sumLines(groups ...[]line) []line {
	type acc struct{ qty, amount decimal.Decimal }
	var order []string
	sums := map[string]*acc{}
	for _, ls := range groups {
		for _, l := range ls {
			a := sums[l.Product]
			if a == nil {
				a = &acc{}
				sums[l.Product] = a
				order = append(order, l.Product)
			}
			a.qty = a.qty.Add(l.Quantity.Dec())
			a.amount = a.amount.Add(l.amount().Dec())
		}
	}
	var out []line
	for _, p := range order {
		a := sums[p]
		if a.amount.IsZero() {
			continue
		}
		if rate, ok := exactRate(a.amount, a.qty); ok {
			out = append(out, line{Product: p, Quantity: unified.NewDecimal(a.qty), Rate: unified.NewDecimal(rate)})
			continue
		}
		out = append(out, line{Product: p, Quantity: unified.DecimalFromInt(1), Rate: unified.NewDecimal(a.amount),
			Description: fmt.Sprintf("%s sold", a.qty)})
	}
	return out
}
