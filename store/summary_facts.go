package store

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// What the day summary knows of one sale (summary.go): the Sale a producer
// gives with a record, validated, and its encoding on the key's dedupe
// entry.

// Sale statuses (SPEC §4).
const (
	SaleCompleted         = "completed"
	SaleVoid              = "void"
	SaleRefunded          = "refunded"
	SalePartiallyRefunded = "partially_refunded"
)

// Sale is what the day summary needs of a transaction record (SPEC §4):
// the outlet, its business day, the status and the money, as the record
// has them.
type Sale struct {
	OutletID string
	// Day is the business date, YYYY-MM-DD (the record's business_date).
	Day string
	// Status is the record's status: completed, void, refunded or
	// partially_refunded (anything else counts as completed).
	Status string
	// Amount is what the customer paid and Refund what was given back:
	// plain decimal strings ("150000", "13636.36").
	Amount, Refund string
	Currency       string
}

// saleFacts is a Sale as the summary keeps it for the counted version of a
// key. The money stays text (as validated) until a day's sums need it.
type saleFacts struct {
	ver [versionLen]byte
	// origin is the seq at which this version was appended: its entry in
	// the seqs bucket and its bit in the sinks' marks.
	origin              uint64
	outlet, day, status string
	amountText          string
	refundText          string
	currency            string
	// amount and refund are the money parsed (parsed: set).
	amount, refund decimal.Decimal
	parsed         bool
}

// money parses the amounts once.
func (f *saleFacts) money() error {
	if f.parsed {
		return nil
	}
	var err error
	if f.amount, err = parseMoney(f.amountText); err != nil {
		return err
	}
	if f.refund, err = parseMoney(f.refundText); err != nil {
		return err
	}
	f.parsed = true
	return nil
}

// parseSale validates a Sale (in prepare, outside the transaction).
func parseSale(x *Sale) (*saleFacts, error) {
	if x.OutletID == "" || len(x.OutletID) > 255 {
		return nil, fmt.Errorf("sale: outlet id empty or too long")
	}
	if _, err := time.Parse(time.DateOnly, x.Day); err != nil {
		return nil, fmt.Errorf("sale: day %q is not YYYY-MM-DD", x.Day)
	}
	f := &saleFacts{outlet: x.OutletID, day: x.Day, status: x.Status, currency: x.Currency,
		amountText: x.Amount, refundText: x.Refund}
	var err error
	if f.amount, err = parseMoney(x.Amount); err != nil {
		return nil, fmt.Errorf("sale: amount: %w", err)
	}
	if f.refund, err = parseMoney(x.Refund); err != nil {
		return nil, fmt.Errorf("sale: refund: %w", err)
	}
	f.parsed = true
	return f, nil
}

// parseMoney parses a plain decimal ("" is 0): digits with an optional "-"
// and fraction, no exponent.
func parseMoney(s string) (decimal.Decimal, error) {
	if s == "" {
		return decimal.Zero, nil
	}
	if len(s) > 64 {
		return decimal.Zero, fmt.Errorf("%q is too long", s[:16]+"…")
	}
	i := 0
	if s[0] == '-' {
		i++
	}
	digits, dot := 0, false
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && digits > 0 && i < len(s)-1:
			dot = true
		default:
			return decimal.Zero, fmt.Errorf("%q is not a plain decimal", s)
		}
	}
	if digits == 0 {
		return decimal.Zero, fmt.Errorf("%q is not a plain decimal", s)
	}
	return decimal.NewFromString(s)
}

// Encoding of the facts: version (32 bytes), uvarint origin, then the
// length-prefixed outlet, day, status, amount, refund and currency. The
// version and origin come first: pointTo and pruned read only them
// (rawFacts).
func (f *saleFacts) encode(dst []byte) []byte {
	dst = append(dst, f.ver[:]...)
	dst = binary.AppendUvarint(dst, f.origin)
	for _, s := range [...]string{f.outlet, f.day, f.status, f.amountText, f.refundText, f.currency} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	return dst
}

// sizeMax bounds the size of the facts' encoding.
func (f *saleFacts) sizeMax() int {
	n := versionLen + binary.MaxVarintLen64
	for _, s := range [...]string{f.outlet, f.day, f.status, f.amountText, f.refundText, f.currency} {
		n += uvarintLen(uint64(len(s))) + len(s)
	}
	return n
}

// decodeFacts decodes encoded facts read from a file that may be damaged
// (FuzzSaleFacts).
func decodeFacts(v []byte) (*saleFacts, error) {
	d := decoder{b: v}
	f := &saleFacts{}
	copy(f.ver[:], d.fixed(versionLen))
	f.origin = d.uvarint()
	f.outlet = string(d.bytes())
	f.day = string(d.bytes())
	f.status = string(d.bytes())
	f.amountText, f.refundText = string(d.bytes()), string(d.bytes())
	f.currency = string(d.bytes())
	if d.err != nil {
		return nil, d.err
	}
	return f, nil
}

// rawFacts returns the version (aliasing b) and the origin of encoded
// facts, without decoding the rest.
func rawFacts(b []byte) (ver []byte, origin uint64, err error) {
	d := decoder{b: b}
	ver = d.fixed(versionLen)
	origin = d.uvarint()
	if d.err != nil {
		return nil, 0, d.err
	}
	return ver, origin, nil
}

// The facts ride on the record's dedupe entry (version, change time), after
// a tag byte, so that the summary costs an Append no second index: the
// entry is read and written anyway. Readers of the entry's head (older
// agents too) ignore what follows it. The tag changed with the encoding
// (facts with per-record sink marks, 'S', never left development): facts
// under another tag are not the summary's.
const factsTag = 'F'

// dedupeHead returns the length of a dedupe value's head (version and
// change time); 0 if it is malformed.
func dedupeHead(v []byte) int {
	if len(v) <= versionLen {
		return 0
	}
	_, n := binary.Varint(v[versionLen:])
	if n <= 0 {
		return 0
	}
	return versionLen + n
}

// factsBytes returns the encoded facts a dedupe value carries, aliasing
// it; nil if none.
func factsBytes(v []byte) []byte {
	h := dedupeHead(v)
	if h == 0 || len(v) <= h || v[h] != factsTag {
		return nil
	}
	return v[h+1:]
}

// factsOf decodes the facts a dedupe value carries; nil if none.
func factsOf(v []byte) (*saleFacts, error) {
	b := factsBytes(v)
	if b == nil {
		return nil, nil
	}
	return decodeFacts(b)
}

// keepFacts returns the dedupe value nv followed by the facts old carries
// (AddDead and Requeue rewrite the entry: what the summary counts for the
// key must stay with it).
func keepFacts(nv, old []byte) []byte {
	h := dedupeHead(old)
	if h == 0 || len(old) <= h || old[h] != factsTag {
		return nv
	}
	return append(nv, old[h:]...)
}
