package store

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// On-disk encodings. Values are read back from a file that may be damaged,
// so every decoder checks every length and never panics (FuzzDecodeRecord).
//
// Outbox value (key: seq as 8 bytes big-endian):
//
//	byte     codec version (1)
//	varint   AddedAt, Unix nanoseconds
//	uvarint  len(kind), kind
//	uvarint  len(key), key
//	[32]byte version (SHA-256 of data)
//	...      data (the rest of the value)
//
// Dead-letter value (key: id as 8 bytes big-endian):
//
//	byte     codec version (1)
//	varint   At, Unix nanoseconds
//	uvarint  original seq (0 if the record never entered the outbox)
//	uvarint  len(stage), stage
//	uvarint  len(reason), reason
//	...      the record, encoded as an outbox value
//
// Dedupe value (key: record key): [32]byte version, varint change time
// (Unix seconds).
//
// Sink-state value (key: the sink's name, in the sinks bucket): see
// sinkState.encode in sinks.go. Meta keys: format (uint64, 2 since sinks),
// pending_n, pending_bytes, dead_n (uint64 counters of the outbox and the
// dead letters), quarantine (JSON), release_from (uint64, while a disabled
// sink's records are being released).
const (
	codecV1    = 1
	versionLen = 32 // raw SHA-256
)

var errBadValue = errors.New("malformed value")

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

func putSeqKey(dst []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(dst, seq)
}

func keySeq(k []byte) (uint64, bool) {
	if len(k) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k), true
}

// recordSizeMax returns an upper bound of the encoded size of an outbox value.
func recordSizeMax(kind, key string, data []byte) int {
	return 1 + binary.MaxVarintLen64 + uvarintLen(uint64(len(kind))) + len(kind) +
		uvarintLen(uint64(len(key))) + len(key) + versionLen + len(data)
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// appendRecord appends the outbox encoding of a record to dst. version is
// the raw 32-byte hash.
func appendRecord(dst []byte, addedAt time.Time, kind, key string, version *[versionLen]byte, data []byte) []byte {
	dst = append(dst, codecV1)
	dst = binary.AppendVarint(dst, timeToNanos(addedAt))
	dst = binary.AppendUvarint(dst, uint64(len(kind)))
	dst = append(dst, kind...)
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	dst = append(dst, version[:]...)
	return append(dst, data...)
}

// decoder reads fields from a value, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errBadValue
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes returns the next length-prefixed field, aliasing the input.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) fixed(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// kindString returns kind as a string, without allocating for the known
// kinds.
func kindString(b []byte) string {
	switch string(b) {
	case KindTransaction:
		return KindTransaction
	case KindProduct:
		return KindProduct
	case KindMokkaOrder:
		return KindMokkaOrder
	}
	return string(b)
}

// timeToNanos encodes t; the zero time is 0 (UnixNano is undefined for it).
func timeToNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func timeFromNanos(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// decodeRecord decodes an outbox value. The returned record owns its
// memory (nothing aliases v, which bbolt only lends for the transaction).
func decodeRecord(seq uint64, v []byte) (Record, error) {
	d := decoder{b: v}
	if c := d.byte(); d.err == nil && c != codecV1 {
		return Record{}, fmt.Errorf("%w: codec version %d", errBadValue, c)
	}
	added := d.varint()
	kind := d.bytes()
	key := d.bytes()
	ver := d.fixed(versionLen)
	if d.err != nil {
		return Record{}, d.err
	}
	r := Record{
		Kind:    kindString(kind),
		Key:     string(key),
		Seq:     seq,
		Version: hex.EncodeToString(ver),
		AddedAt: timeFromNanos(added),
	}
	if len(d.b) > 0 {
		r.Data = append(make([]byte, 0, len(d.b)), d.b...)
	}
	return r, nil
}

// recordAddedAt decodes only the AddedAt field of an outbox value.
func recordAddedAt(v []byte) (time.Time, error) {
	d := decoder{b: v}
	if c := d.byte(); d.err == nil && c != codecV1 {
		return time.Time{}, errBadValue
	}
	ns := d.varint()
	if d.err != nil {
		return time.Time{}, d.err
	}
	return timeFromNanos(ns), nil
}

// recordHeader decodes the key and raw version of an outbox value,
// aliasing v.
func recordHeader(v []byte) (key, version []byte, err error) {
	d := decoder{b: v}
	if c := d.byte(); d.err == nil && c != codecV1 {
		return nil, nil, errBadValue
	}
	d.varint()
	d.bytes()
	key = d.bytes()
	version = d.fixed(versionLen)
	return key, version, d.err
}

func appendDead(dst []byte, at time.Time, seq uint64, stage, reason string, record []byte) []byte {
	dst = append(dst, codecV1)
	dst = binary.AppendVarint(dst, timeToNanos(at))
	dst = binary.AppendUvarint(dst, seq)
	dst = binary.AppendUvarint(dst, uint64(len(stage)))
	dst = append(dst, stage...)
	dst = binary.AppendUvarint(dst, uint64(len(reason)))
	dst = append(dst, reason...)
	return append(dst, record...)
}

// deadHeader splits a dead-letter value into its fields, aliasing v.
func deadHeader(v []byte) (at time.Time, seq uint64, stage, reason, record []byte, err error) {
	d := decoder{b: v}
	if c := d.byte(); d.err == nil && c != codecV1 {
		return time.Time{}, 0, nil, nil, nil, fmt.Errorf("%w: codec version %d", errBadValue, c)
	}
	ns := d.varint()
	seq = d.uvarint()
	stage = d.bytes()
	reason = d.bytes()
	if d.err != nil {
		return time.Time{}, 0, nil, nil, nil, d.err
	}
	return timeFromNanos(ns), seq, stage, reason, d.b, nil
}

// decodeDead decodes a dead-letter value.
func decodeDead(id uint64, v []byte) (DeadLetter, error) {
	at, seq, stage, reason, rec, err := deadHeader(v)
	if err != nil {
		return DeadLetter{}, err
	}
	r, err := decodeRecord(seq, rec)
	if err != nil {
		return DeadLetter{}, err
	}
	return DeadLetter{ID: id, Stage: string(stage), Record: r, Reason: string(reason), At: at}, nil
}

// parseVersion converts a hex version to its raw bytes.
func parseVersion(v string, dst *[versionLen]byte) error {
	if len(v) != 2*versionLen {
		return fmt.Errorf("version %q: not a hex SHA-256", v)
	}
	if _, err := hex.Decode(dst[:], []byte(v)); err != nil {
		return fmt.Errorf("version %q: %w", v, err)
	}
	return nil
}

func appendDedupe(dst []byte, version *[versionLen]byte, at time.Time) []byte {
	dst = append(dst, version[:]...)
	return binary.AppendVarint(dst, at.Unix())
}

// dedupeTime returns the change time stored in a dedupe value.
func dedupeTime(v []byte) (time.Time, bool) {
	if len(v) <= versionLen {
		return time.Time{}, false
	}
	s, n := binary.Varint(v[versionLen:])
	if n <= 0 {
		return time.Time{}, false
	}
	return time.Unix(s, 0), true
}

func putUint64(v uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, v)
}

func getUint64(v []byte) (uint64, bool) {
	if len(v) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}
