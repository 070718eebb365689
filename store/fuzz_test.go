package store

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// FuzzDecodeRecord feeds arbitrary bytes, as read back from a damaged file,
// to every value decoder: they must return an error, never panic, and a
// value they accept must round-trip.
func FuzzDecodeRecord(f *testing.F) {
	at := time.Date(2025, 12, 26, 3, 30, 0, 0, time.UTC)
	rec := mustEncode(benchInput(7), at)
	f.Add(rec)
	f.Add(mustEncode(Input{Kind: "x", Key: "k", Data: []byte(`{}`)}, time.Time{}))
	f.Add(appendDead(nil, at, 42, StageUpstream, "HTTP 422", rec))
	f.Add(appendDead(nil, at, 0, StageMap, "", appendRecord(nil, at, "", "", new([versionLen]byte), nil)))
	f.Add([]byte{})
	f.Add([]byte{codecV1})
	f.Add([]byte{codecV1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Add([]byte{codecV1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		r, err := decodeRecord(5, b)
		if err == nil {
			var ver [versionLen]byte
			if perr := parseVersion(r.Version, &ver); perr != nil {
				t.Fatalf("decoded version %q: %v", r.Version, perr)
			}
			again := appendRecord(nil, r.AddedAt, r.Kind, r.Key, &ver, r.Data)
			r2, err := decodeRecord(5, again)
			if err != nil || r2.Key != r.Key || r2.Kind != r.Kind || r2.Version != r.Version ||
				!bytes.Equal(r2.Data, r.Data) || !r2.AddedAt.Equal(r.AddedAt) {
				t.Fatalf("round trip: %+v -> %+v (%v)", r, r2, err)
			}
			if len(r.Data) > 0 && &r.Data[0] == &b[len(b)-len(r.Data)] {
				t.Fatal("decoded data aliases the input")
			}
		}
		_, _ = recordAddedAt(b)
		_, _, _ = recordHeader(b)
		_, _ = decodeDead(1, b)
		_, _ = dedupeTime(b)
		if !bytes.Equal(b, orig) {
			t.Fatal("decoder modified its input")
		}
	})
}

// FuzzCheckFile feeds arbitrary file contents to the pre-open check, which
// reads a file that may be anything: it must never panic.
func FuzzCheckFile(f *testing.F) {
	dir := f.TempDir()
	opts := Options{Path: filepath.Join(dir, "agent.db"), OpenTimeout: time.Second}
	s, err := Open(opts)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := s.Append(benchInputs(0, 5), nil); err != nil {
		f.Fatal(err)
	}
	_ = s.Close()
	db, err := os.ReadFile(opts.Path)
	if err != nil {
		f.Fatal(err)
	}
	m0, m1 := parseMeta(db), parseMeta(db[4096:])
	hwm := int(max(m0.pgid, m1.pgid)) * 4096
	db = db[:hwm] // the preallocated tail only slows the fuzzer down
	f.Add(db, 4096)
	f.Add(db[:3*4096], 4096)
	f.Add([]byte("garbage"), 4096)
	f.Add(make([]byte, 8192), 1024)
	f.Fuzz(func(t *testing.T, b []byte, pageSize int) {
		_, _ = checkFile(bytes.NewReader(b), pageSize, int64(len(b)))
	})
}

// FuzzParseSeqFile feeds arbitrary content, as found in a damaged or
// hand-edited high-water mark file, to its parser: it must never panic, and
// accept only what formatSeqFile writes.
func FuzzParseSeqFile(f *testing.F) {
	f.Add(formatSeqFile(0))
	f.Add(formatSeqFile(1766719800001012))
	f.Add(formatSeqFile(maxSeqMark))
	f.Add([]byte("seq-hwm v1 \n"))
	f.Add([]byte("seq-hwm v1 12 \n"))
	f.Add([]byte("seq-hwm v1 9007199254740000 00000000\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		mark, err := parseSeqFile(b)
		if err != nil {
			return
		}
		if mark > maxSeqMark {
			t.Fatalf("accepted mark %d beyond %d", mark, maxSeqMark)
		}
		if !bytes.Equal(formatSeqFile(mark), b) {
			t.Fatalf("accepted %q, which formats as %q", b, formatSeqFile(mark))
		}
	})
}

// FuzzDecodeSinkState feeds arbitrary bytes, as read back from a damaged
// file, to the sink-state decoder: it must return an error, never panic or
// allocate beyond the input, and a value it accepts must have sorted,
// disjoint ranges and round-trip.
func FuzzDecodeSinkState(f *testing.F) {
	f.Add((&sinkState{}).encode(nil))
	f.Add((&sinkState{enabled: true, next: 1766718001000005, pendingN: 7, pendingBytes: 855, deadN: 1}).encode(nil))
	f.Add((&sinkState{enabled: true, next: 3, done: seqRanges{{5, 9}, {20, 20}}, pendingN: 2}).encode(nil))
	f.Add([]byte{})
	f.Add([]byte{sinkCodecV1, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{sinkCodecV1, 1, 0, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		st, err := decodeSinkState(b)
		if !bytes.Equal(b, orig) {
			t.Fatal("decoder modified its input")
		}
		if err != nil {
			return
		}
		for i, r := range st.done {
			if r.hi < r.lo || (i > 0 && r.lo <= st.done[i-1].hi) {
				t.Fatalf("ranges not sorted and disjoint: %v", st.done)
			}
			if !st.done.contains(r.lo) || !st.done.contains(r.hi) {
				t.Fatalf("ranges %v do not contain their own bounds", st.done)
			}
		}
		again, err := decodeSinkState(st.encode(nil))
		if err != nil || again.enabled != st.enabled || again.next != st.next || again.pendingN != st.pendingN ||
			again.pendingBytes != st.pendingBytes || again.deadN != st.deadN || !slices.Equal(again.done, st.done) {
			t.Fatalf("round trip: %+v -> %+v (%v)", st, again, err)
		}
	})
}
