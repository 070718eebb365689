package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Record kinds forwarded upstream (SPEC §6).
const (
	KindTransaction = "transaction"
	KindProduct     = "product"
	KindMokkaOrder  = "mokka_order"
)

// Record is one buffered record, in the shape the upstream protocol sends
// (SPEC §6). Seq is assigned by the store and increases strictly across
// restarts; Version is the SHA-256 of the canonical data and, with Key, lets
// the receiver make delivery effectively exactly-once.
type Record struct {
	Kind    string          `json:"kind"`
	Key     string          `json:"key"`
	Seq     uint64          `json:"seq"`
	Version string          `json:"version"`
	Data    json.RawMessage `json:"data"`

	// AddedAt is when the record entered the buffer. It is not sent.
	AddedAt time.Time `json:"-"`
}

// Input is a record offered to the store by a producer (a poller, the
// checkout gateway). Data must be the canonical JSON encoding of the record:
// the same content must always produce the same bytes, because its hash is
// the record's version.
type Input struct {
	Kind string
	Key  string
	Data json.RawMessage
	// Sale, for a transaction record, gives the day summary its facts
	// (summary.go); nil for records the summary does not count.
	Sale *Sale
}

// Version returns the version of data: the lowercase hex SHA-256 of the
// canonical bytes.
func Version(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
