package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SourceState is the sync state of one source (an outlet's transactions or
// products). It is written with PutSourceState, or by Append in the same
// transaction as the records it produced.
type SourceState struct {
	Source        string           `json:"source"` // e.g. "moka/biz_1/outlet_2/transactions"
	Watermark     string           `json:"watermark,omitempty"`
	Cursor        string           `json:"cursor,omitempty"`
	LastSyncAt    time.Time        `json:"last_sync_at,omitzero"` // last successful sync
	LastAttemptAt time.Time        `json:"last_attempt_at,omitzero"`
	LastError     string           `json:"last_error,omitempty"`
	Counts        map[string]int64 `json:"counts,omitempty"`
}

func encodeState(st *SourceState) ([]byte, error) {
	if st.Source == "" {
		return nil, errors.New("store: source state: empty source")
	}
	if len(st.Source) > bolt.MaxKeySize {
		return nil, errors.New("store: source state: source name too long")
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("store: source state %q: %w", st.Source, err)
	}
	return b, nil
}

// PutSourceState replaces the state of st.Source.
func (s *Store) PutSourceState(st SourceState) error {
	v, err := encodeState(&st)
	if err != nil {
		return err
	}
	err = s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketState).Put([]byte(st.Source), v)
	})
	if err != nil {
		return fmt.Errorf("store: put source state: %w", err)
	}
	return nil
}

// SourceState returns the state of source; ok is false if none was stored.
func (s *Store) SourceState(source string) (st SourceState, ok bool, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketState).Get([]byte(source))
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &st)
	})
	if err != nil {
		return SourceState{}, false, fmt.Errorf("store: source state %q: %w", source, err)
	}
	return st, ok, nil
}

// SourceStates returns every stored source state, ordered by source.
func (s *Store) SourceStates() ([]SourceState, error) {
	var out []SourceState
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketState).ForEach(func(k, v []byte) error {
			var st SourceState
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("%q: %w", k, err)
			}
			out = append(out, st)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: source states: %w", err)
	}
	return out, nil
}

// counters are the O(1) statistics kept in the meta bucket, updated in the
// same transaction as the data they count.
type counters struct {
	pendingN, pendingBytes, deadN int64
}

func readCounters(meta *bolt.Bucket) (counters, error) {
	var c counters
	for i, p := range []*int64{&c.pendingN, &c.pendingBytes, &c.deadN} {
		v, ok := getUint64(meta.Get(counterKeys[i]))
		if !ok {
			return c, fmt.Errorf("%w: counter %q unreadable", ErrCorrupt, counterKeys[i])
		}
		*p = int64(v)
	}
	return c, nil
}

func (c counters) write(meta *bolt.Bucket) error {
	for i, v := range []int64{c.pendingN, c.pendingBytes, c.deadN} {
		if v < 0 {
			v = 0
		}
		if err := meta.Put(counterKeys[i], putUint64(uint64(v))); err != nil {
			return err
		}
	}
	return nil
}

// Stats are the buffer's statistics.
type Stats struct {
	Pending         int64     // records in the outbox: pending for at least one sink
	PendingBytes    int64     // their encoded size (what MaxPendingBytes bounds)
	DeadLetters     int64     // records in the dead-letter bucket, of every sink and stage
	OldestPendingAt time.Time // AddedAt of the oldest record in the outbox; zero if none
	LastSeq         uint64    // the last seq assigned or skipped (no later seq is at or below it)
	FileSize        int64     // size of the database file
	// Sinks are the statistics of every sink the database knows, enabled
	// or not, by name.
	Sinks []SinkStats
}

// Sink returns the statistics of the named sink; ok is false when the
// database does not know it.
func (st Stats) Sink(name string) (SinkStats, bool) {
	for _, s := range st.Sinks {
		if s.Name == name {
			return s, true
		}
	}
	return SinkStats{}, false
}

// Stats returns the statistics. It costs a read of the counters and, for
// the outbox and for each sink, of its oldest record, whatever the size of
// the buffer.
func (s *Store) Stats() (Stats, error) {
	var st Stats
	err := s.view(func(tx *bolt.Tx) error {
		c, err := readCounters(tx.Bucket(bucketMeta))
		if err != nil {
			return err
		}
		st.Pending, st.PendingBytes, st.DeadLetters = c.pendingN, c.pendingBytes, c.deadN
		out := tx.Bucket(bucketOutbox)
		st.LastSeq = out.Sequence()
		if k, v := out.Cursor().First(); k != nil {
			// An undecodable head leaves the time zero; Pending moves it
			// to the dead letters.
			st.OldestPendingAt, _ = recordAddedAt(v)
		}
		b := tx.Bucket(bucketSinks)
		if b == nil {
			return fmt.Errorf("%w: sinks bucket missing", ErrCorrupt)
		}
		return b.ForEach(func(k, v []byte) error {
			ss, err := decodeSinkState(v)
			if err != nil {
				return fmt.Errorf("%w: sink %q: %v", ErrCorrupt, k, err)
			}
			st.Sinks = append(st.Sinks, sinkStats(tx, string(k), &ss))
			return nil
		})
	})
	if err != nil {
		return Stats{}, fmt.Errorf("store: stats: %w", err)
	}
	if fi, err := os.Stat(s.path); err == nil {
		st.FileSize = fi.Size()
	}
	return st, nil
}

// Quarantine describes a corrupt database file that was moved aside.
type Quarantine struct {
	CorruptPath string    `json:"corrupt_path"`
	Reason      string    `json:"reason"`
	At          time.Time `json:"at"`
}

func encodeQuarantine(q Quarantine) ([]byte, error) { return json.Marshal(q) }

func decodeQuarantine(b []byte) (Quarantine, error) {
	var q Quarantine
	err := json.Unmarshal(b, &q)
	return q, err
}

// Quarantine reports whether this database was created fresh after a
// corrupt file was moved aside. The note is stored in the database, so it
// survives restarts until ClearQuarantine.
func (s *Store) Quarantine() (Quarantine, bool) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if s.quarantine == nil {
		return Quarantine{}, false
	}
	return *s.quarantine, true
}

// ClearQuarantine forgets the quarantine note (the operator has seen it).
// The .corrupt file itself is left on disk.
func (s *Store) ClearQuarantine() error {
	err := s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Delete(keyQuarantine)
	})
	if err != nil {
		return fmt.Errorf("store: clear quarantine: %w", err)
	}
	s.qmu.Lock()
	s.quarantine = nil
	s.qmu.Unlock()
	return nil
}
