package httpsink

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/pwbi/edge-agent/internal/jsonstr"
	"github.com/pwbi/edge-agent/store"
)

// BatchID returns the batch id of recs sent by agentID: the hex SHA-256 of
// the agent id and the records' seqs. It depends on nothing else, so every
// retry of a batch — also after a restart, when the buffer yields the same
// records — carries the same id, and the upstream can answer 409 to a batch
// it already has.
func BatchID(agentID string, recs []store.Record) string {
	h := sha256.New()
	h.Write([]byte("pwbi-batch-v1\x00"))
	h.Write([]byte(agentID))
	h.Write([]byte{0})
	var b [8]byte
	for _, r := range recs {
		binary.BigEndian.PutUint64(b[:], r.Seq)
		h.Write(b[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// gzipLevel trades CPU for bytes on the wire. On 500 realistic
// transactions (480 KB of JSON) level 2 gives 14.4 % of the input at
// ~180 MB/s, level 1 16.7 % at ~200 MB/s, the default level 6 11.8 % at
// ~86 MB/s: level 2 keeps most of the speed and sends 14 % fewer bytes than
// level 1 over a cafe's slow uplink.
const gzipLevel = 2

// sentAtLayout is RFC 3339 with milliseconds.
const sentAtLayout = "2006-01-02T15:04:05.000Z07:00"

// encoder builds request bodies. It keeps its scratch buffer and gzip
// writer between batches; it is used by one goroutine at a time.
type encoder struct {
	raw     []byte
	zw      *gzip.Writer
	lastOut int
}

// encode returns the gzip-compressed JSON body of a batch (SPEC §6). The
// returned slice is fresh: the HTTP transport may still read it after the
// request returned.
func (e *encoder) encode(agentID, batchID string, sentAt time.Time, recs []store.Record) ([]byte, error) {
	b := e.raw[:0]
	b = append(b, `{"agent_id":`...)
	b = jsonstr.Append(b, agentID)
	b = append(b, `,"batch_id":`...)
	b = jsonstr.Append(b, batchID)
	b = append(b, `,"sent_at":"`...)
	b = sentAt.AppendFormat(b, sentAtLayout)
	b = append(b, `","records":[`...)
	for i, r := range recs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"kind":`...)
		b = jsonstr.Append(b, r.Kind)
		b = append(b, `,"key":`...)
		b = jsonstr.Append(b, r.Key)
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, r.Seq, 10)
		b = append(b, `,"version":`...)
		b = jsonstr.Append(b, r.Version)
		b = append(b, `,"data":`...)
		// Data is the store's canonical JSON and goes out as is. Should
		// it be malformed, the upstream rejects the batch and bisection
		// dead-letters that record.
		if len(bytes.TrimSpace(r.Data)) == 0 {
			b = append(b, "null"...)
		} else {
			b = append(b, r.Data...)
		}
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	if cap(b) <= 16<<20 {
		e.raw = b // keep the scratch buffer unless one huge batch grew it
	} else {
		e.raw = nil
	}

	out := bytes.NewBuffer(make([]byte, 0, max(e.lastOut+e.lastOut/8, 4<<10)))
	if e.zw == nil {
		zw, err := gzip.NewWriterLevel(out, gzipLevel)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		e.zw = zw
	} else {
		e.zw.Reset(out)
	}
	if _, err := e.zw.Write(b); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if err := e.zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	e.lastOut = out.Len()
	return out.Bytes(), nil
}
