package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/pwbi/edge-agent/internal/testutil"
)

// fakeClock advances one millisecond per reading.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 12, 26, 3, 30, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

// logBuffer collects log output for assertions.
type logBuffer = testutil.SyncBuffer

func testOptions(t testing.TB, dir string) Options {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	return Options{
		Path:        filepath.Join(dir, "agent.db"),
		OpenTimeout: 100 * time.Millisecond,
		Now:         newClock().Now,
	}
}

func mustOpen(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func openTemp(t testing.TB) *Store {
	t.Helper()
	s := mustOpen(t, testOptions(t, ""))
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func txInput(id int, amount string) Input {
	return Input{
		Kind: KindTransaction,
		Key:  fmt.Sprintf("moka/biz_1/outlet_1/%d", id),
		Data: []byte(fmt.Sprintf(`{"external_id":"%d","amount":"%s"}`, id, amount)),
	}
}

func inputs(from, n int) []Input {
	in := make([]Input, n)
	for i := range in {
		in[i] = txInput(from+i, "150000")
	}
	return in
}

func mustAppend(t testing.TB, s *Store, in []Input, st *SourceState) AppendResult {
	t.Helper()
	res, err := s.Append(in, st)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return res
}

func mustPending(t testing.TB, s *Store, max int) []Record {
	t.Helper()
	recs, err := s.Pending(max)
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	return recs
}

func seqsOf(recs []Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

func checkIncreasing(t testing.TB, recs []Record) {
	t.Helper()
	for i := 1; i < len(recs); i++ {
		if recs[i].Seq <= recs[i-1].Seq {
			t.Fatalf("seq not increasing at %d: %d then %d", i, recs[i-1].Seq, recs[i].Seq)
		}
	}
}

func signalled(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestAppendPendingOrderAndFields(t *testing.T) {
	s := openTemp(t)
	in := inputs(1, 5)
	in[2].Kind = KindProduct
	res := mustAppend(t, s, in, nil)
	if res.Appended != 5 || res.Unchanged != 0 || res.LastSeq != res.FirstSeq+4 {
		t.Fatalf("result = %+v", res)
	}
	recs := mustPending(t, s, 10)
	if len(recs) != 5 {
		t.Fatalf("pending = %d records", len(recs))
	}
	checkIncreasing(t, recs)
	for i, r := range recs {
		if r.Seq != res.FirstSeq+uint64(i) || r.Key != in[i].Key || r.Kind != in[i].Kind ||
			!bytes.Equal(r.Data, in[i].Data) || r.Version != Version(in[i].Data) || r.AddedAt.IsZero() {
			t.Errorf("record %d = %+v, input %+v", i, r, in[i])
		}
	}
	if got := mustPending(t, s, 2); len(got) != 2 || got[0].Seq != res.FirstSeq {
		t.Errorf("Pending(2) = %v", seqsOf(got))
	}
	if got := mustPending(t, s, 0); len(got) != 0 {
		t.Errorf("Pending(0) = %d records", len(got))
	}
}

func TestAppendRejectsInvalidInput(t *testing.T) {
	s := openTemp(t)
	for _, in := range []Input{
		{Kind: "", Key: "k", Data: []byte(`{}`)},
		{Kind: KindProduct, Key: "", Data: []byte(`{}`)},
		{Kind: KindProduct, Key: "k", Data: nil},
		{Kind: KindProduct, Key: strings.Repeat("k", bolt.MaxKeySize+1), Data: []byte(`{}`)},
	} {
		if _, err := s.Append([]Input{txInput(1, "1"), in}, nil); err == nil {
			t.Errorf("Append(%.20q) succeeded", in.Key)
		}
	}
	if _, err := s.Append(nil, &SourceState{}); err == nil {
		t.Error("Append with an empty source name succeeded")
	}
	if st, _ := s.Stats(); st.Pending != 0 {
		t.Errorf("pending = %d after rejected appends", st.Pending)
	}
}

func TestSeqPersistsAcrossReopen(t *testing.T) {
	opts := testOptions(t, "")
	s := mustOpen(t, opts)
	r1 := mustAppend(t, s, inputs(1, 3), nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if _, err := s.Pending(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Pending after Close = %v, want ErrClosed", err)
	}

	s = mustOpen(t, opts)
	recs := mustPending(t, s, 10)
	if !slices.Equal(seqsOf(recs), []uint64{r1.FirstSeq, r1.FirstSeq + 1, r1.FirstSeq + 2}) {
		t.Fatalf("after reopen pending = %v", seqsOf(recs))
	}
	// Ack everything: the outbox is empty, the sequence must not restart.
	if err := s.Ack(seqsOf(recs)...); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, opts)
	defer s.Close()
	if recs := mustPending(t, s, 10); len(recs) != 0 {
		t.Fatalf("pending after ack = %v", seqsOf(recs))
	}
	// An open continues above the high-water mark: seqs may skip, never
	// repeat (seqfile.go).
	r2 := mustAppend(t, s, inputs(10, 2), nil)
	if r2.FirstSeq <= r1.LastSeq || r2.FirstSeq > r1.LastSeq+1+2*seqLeaseStep {
		t.Errorf("seq after ack-all and reopen = %d, want above %d by at most two reservations", r2.FirstSeq, r1.LastSeq)
	}
	if st, _ := s.Stats(); st.LastSeq != r2.LastSeq {
		t.Errorf("Stats.LastSeq = %d, want %d", st.LastSeq, r2.LastSeq)
	}
}

func TestFreshSeqStartsFromClock(t *testing.T) {
	opts := testOptions(t, "")
	now := opts.Now()
	s := mustOpen(t, opts)
	defer s.Close()
	res := mustAppend(t, s, inputs(1, 1), nil)
	if res.FirstSeq <= uint64(now.UnixMicro()) || res.FirstSeq >= 1<<53 {
		t.Errorf("first seq = %d, want just above %d", res.FirstSeq, now.UnixMicro())
	}
}

func TestAppendWithStateIsAtomic(t *testing.T) {
	s := openTemp(t)
	st := SourceState{Source: "moka/biz_1/outlet_1/transactions", Watermark: "2025-12-26", Cursor: "c1",
		LastSyncAt: time.Date(2025, 12, 26, 1, 0, 0, 0, time.UTC), Counts: map[string]int64{"transactions": 3}}
	mustAppend(t, s, inputs(1, 3), &st)

	// An injected failure after the records were written: neither records
	// nor state may change.
	boom := errors.New("boom")
	s.testHookAppend = func() error { return boom }
	st2 := st
	st2.Watermark, st2.Cursor = "2025-12-27", "c2"
	if _, err := s.Append(inputs(4, 3), &st2); !errors.Is(err, boom) {
		t.Fatalf("Append with failing hook = %v", err)
	}
	s.testHookAppend = nil

	got, ok, err := s.SourceState(st.Source)
	if err != nil || !ok {
		t.Fatalf("SourceState = %v, %v", ok, err)
	}
	if got.Watermark != "2025-12-26" || got.Cursor != "c1" || !got.LastSyncAt.Equal(st.LastSyncAt) || got.Counts["transactions"] != 3 {
		t.Errorf("state changed by a failed append: %+v", got)
	}
	if recs := mustPending(t, s, 10); len(recs) != 3 {
		t.Errorf("pending = %d, want 3", len(recs))
	}
	stats, _ := s.Stats()
	if stats.Pending != 3 {
		t.Errorf("Stats.Pending = %d", stats.Pending)
	}
	// The failed inputs were not recorded in the dedupe index either.
	if res := mustAppend(t, s, inputs(4, 3), &st2); res.Appended != 3 {
		t.Errorf("retry appended %d, want 3", res.Appended)
	}
	got, _, _ = s.SourceState(st.Source)
	if got.Watermark != "2025-12-27" {
		t.Errorf("watermark = %q after successful append", got.Watermark)
	}
}

func TestSourceStates(t *testing.T) {
	s := openTemp(t)
	if _, ok, err := s.SourceState("nope"); ok || err != nil {
		t.Fatalf("missing state: %v %v", ok, err)
	}
	for _, src := range []string{"b", "a", "c"} {
		if err := s.PutSourceState(SourceState{Source: src, LastError: "e-" + src}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutSourceState(SourceState{Source: "a", LastError: "again"}); err != nil {
		t.Fatal(err)
	}
	all, err := s.SourceStates()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[0].Source != "a" || all[0].LastError != "again" || all[2].Source != "c" {
		t.Errorf("SourceStates = %+v", all)
	}
	if err := s.PutSourceState(SourceState{}); err == nil {
		t.Error("PutSourceState with empty source succeeded")
	}
}

func TestDedupe(t *testing.T) {
	s := openTemp(t)
	first := mustAppend(t, s, inputs(1, 3), nil)
	if !signalled(s.Notify()) {
		t.Error("Notify not signalled by Append")
	}

	// Same content again: a no-op.
	res := mustAppend(t, s, inputs(1, 3), nil)
	if res.Appended != 0 || res.Unchanged != 3 || res.FirstSeq != 0 || res.LastSeq != 0 {
		t.Errorf("unchanged append = %+v", res)
	}
	if signalled(s.Notify()) {
		t.Error("Notify signalled by an append that added nothing")
	}

	// One changed, one unchanged, one new.
	in := []Input{txInput(1, "999"), txInput(2, "150000"), txInput(7, "1")}
	res = mustAppend(t, s, in, nil)
	if res.Appended != 2 || res.Unchanged != 1 || res.FirstSeq != first.LastSeq+1 || res.LastSeq != first.LastSeq+2 {
		t.Errorf("mixed append = %+v", res)
	}
	recs := mustPending(t, s, 10)
	if len(recs) != 5 {
		t.Fatalf("pending = %d", len(recs))
	}
	changed := recs[3]
	if changed.Key != in[0].Key || changed.Version != Version(in[0].Data) || changed.Version == recs[0].Version {
		t.Errorf("changed record = %+v", changed)
	}

	// Acking does not forget the version: the same content stays a no-op.
	if err := s.Ack(seqsOf(recs)...); err != nil {
		t.Fatal(err)
	}
	if res := mustAppend(t, s, in, nil); res.Appended != 0 || res.Unchanged != 3 {
		t.Errorf("after ack = %+v", res)
	}
}

func TestDuplicateKeysInOneAppend(t *testing.T) {
	s := openTemp(t)
	a, b := txInput(1, "1"), txInput(1, "2")
	res := mustAppend(t, s, []Input{a, a, b, b}, nil)
	if res.Appended != 2 || res.Unchanged != 2 {
		t.Fatalf("result = %+v", res)
	}
	recs := mustPending(t, s, 10)
	if len(recs) != 2 || recs[0].Version != Version(a.Data) || recs[1].Version != Version(b.Data) {
		t.Errorf("records = %+v", recs)
	}
}

func TestPruneDedupe(t *testing.T) {
	opts := testOptions(t, "")
	clock := newClock()
	var mu sync.Mutex
	offset := time.Duration(0)
	opts.Now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return clock.Now().Add(offset)
	}
	s := mustOpen(t, opts)
	defer s.Close()
	mustAppend(t, s, inputs(1, 3), nil)
	mu.Lock()
	offset = 48 * time.Hour
	mu.Unlock()
	mustAppend(t, s, inputs(4, 2), nil)
	n, err := s.PruneDedupe(opts.Now().Add(-24 * time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("PruneDedupe = %d, %v; want 3", n, err)
	}
	if res := mustAppend(t, s, inputs(1, 5), nil); res.Appended != 3 || res.Unchanged != 2 {
		t.Errorf("after prune = %+v", res)
	}
}

func TestDeadLetterAndRequeue(t *testing.T) {
	s := openTemp(t)
	r := mustAppend(t, s, inputs(1, 4), nil)
	bad := r.FirstSeq + 1
	if err := s.DeadLetter(bad, "HTTP 422: amount invalid"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeadLetter(bad, "again"); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeadLetter of a moved seq = %v, want ErrNotFound", err)
	}
	if got := seqsOf(mustPending(t, s, 10)); !slices.Equal(got, []uint64{r.FirstSeq, r.FirstSeq + 2, r.FirstSeq + 3}) {
		t.Errorf("pending after dead letter = %v", got)
	}
	mapID, err := s.AddDead(Input{Kind: KindTransaction, Data: []byte(`{"id":"x","grand_total":"abc"}`)}, StageMap, "bad number grand_total")
	if err != nil {
		t.Fatal(err)
	}

	dead, err := s.DeadLetters(10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 2 {
		t.Fatalf("dead letters = %+v", dead)
	}
	d := dead[0]
	want := txInput(2, "150000")
	if d.Stage != StageUpstream || d.Reason != "HTTP 422: amount invalid" || d.Record.Seq != bad ||
		d.Record.Key != want.Key || !bytes.Equal(d.Record.Data, want.Data) || d.Record.Version != Version(want.Data) || d.At.IsZero() {
		t.Errorf("dead letter = %+v", d)
	}
	if dead[1].ID != mapID || dead[1].Stage != StageMap || dead[1].Record.Seq != 0 || dead[1].Record.Key != "" {
		t.Errorf("map dead letter = %+v", dead[1])
	}

	// The map one is not requeueable, the upstream one is, with a new seq
	// at the end.
	n, err := s.Requeue(mapID, d.ID, 12345)
	if n != 1 || !errors.Is(err, ErrNotRequeueable) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("Requeue = %d, %v", n, err)
	}
	recs := mustPending(t, s, 10)
	last := recs[len(recs)-1]
	if len(recs) != 4 || last.Key != want.Key || last.Seq <= r.LastSeq || last.Version != Version(want.Data) {
		t.Errorf("pending after requeue = %+v", recs)
	}
	checkIncreasing(t, recs)
	if !signalled(s.Notify()) {
		t.Error("Notify not signalled by Requeue")
	}
	dead, _ = s.DeadLetters(10)
	if len(dead) != 1 || dead[0].ID != mapID {
		t.Errorf("dead letters after requeue = %+v", dead)
	}
	if n, err := s.RequeueAll(); n != 0 || err != nil {
		t.Errorf("RequeueAll with only a map letter = %d, %v", n, err)
	}
	st, _ := s.Stats()
	if st.DeadLetters != 1 || st.Pending != 4 {
		t.Errorf("stats = %+v", st)
	}
	if n, err := s.DeleteDead(mapID, 999); n != 1 || !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteDead = %d, %v", n, err)
	}
	if st, _ := s.Stats(); st.DeadLetters != 0 {
		t.Errorf("dead letters after delete = %d", st.DeadLetters)
	}
}

func TestRequeueAllAndSuperseded(t *testing.T) {
	s := openTemp(t)
	r := mustAppend(t, s, inputs(1, 3), nil)
	for seq := r.FirstSeq; seq <= r.LastSeq; seq++ {
		if err := s.DeadLetter(seq, "rejected"); err != nil {
			t.Fatal(err)
		}
	}
	// Key 1 is buffered again with new content: its dead letter is stale.
	mustAppend(t, s, []Input{txInput(1, "777")}, nil)
	n, err := s.RequeueAll()
	if n != 2 || err != nil {
		t.Fatalf("RequeueAll = %d, %v", n, err)
	}
	dead, _ := s.DeadLetters(10)
	if len(dead) != 1 || dead[0].Record.Key != txInput(1, "").Key {
		t.Fatalf("remaining dead letters = %+v", dead)
	}
	if _, err := s.Requeue(dead[0].ID); !errors.Is(err, ErrNotRequeueable) {
		t.Errorf("Requeue of a superseded letter = %v", err)
	}
	recs := mustPending(t, s, 10)
	checkIncreasing(t, recs)
	if len(recs) != 3 || recs[0].Data == nil || recs[1].Key != txInput(2, "").Key || recs[2].Key != txInput(3, "").Key {
		t.Errorf("pending = %+v", recs)
	}
}

func TestDeadLetterReasonIsCapped(t *testing.T) {
	s := openTemp(t)
	r := mustAppend(t, s, inputs(1, 1), nil)
	if err := s.DeadLetter(r.FirstSeq, strings.Repeat("é", maxReasonLen)); err != nil {
		t.Fatal(err)
	}
	dead, _ := s.DeadLetters(1)
	if len(dead[0].Reason) > maxReasonLen || !strings.HasPrefix(dead[0].Reason, "éé") || strings.ContainsRune(dead[0].Reason, '\uFFFD') {
		t.Errorf("reason of %d bytes", len(dead[0].Reason))
	}
}

func TestBound(t *testing.T) {
	opts := testOptions(t, "")
	one := int64(len(mustEncode(txInput(1, "150000"), opts.Now())) + 8)
	opts.MaxPendingBytes = 3 * one
	s := mustOpen(t, opts)
	defer s.Close()
	st := SourceState{Source: "src", Watermark: "w1"}

	// An empty outbox accepts one append bigger than the bound.
	big := mustAppend(t, s, inputs(1, 5), &st)
	signalled(s.Notify())
	space := s.Space()
	st2 := SourceState{Source: "src", Watermark: "w2"}
	if _, err := s.Append(inputs(6, 1), &st2); !errors.Is(err, ErrFull) {
		t.Fatalf("Append over the bound = %v, want ErrFull", err)
	}
	if got, _, _ := s.SourceState("src"); got.Watermark != "w1" {
		t.Errorf("watermark moved by a refused append: %q", got.Watermark)
	}
	stats, _ := s.Stats()
	if stats.Pending != 5 || stats.PendingBytes != 5*one {
		t.Errorf("stats after ErrFull = %+v (one = %d)", stats, one)
	}
	// Unchanged inputs add nothing: state may still advance.
	if _, err := s.Append(inputs(1, 2), &st2); err != nil {
		t.Errorf("unchanged append when full = %v", err)
	}
	if signalled(space) || signalled(s.Notify()) {
		t.Fatal("space signalled before anything was freed")
	}

	// Free space: both channels fire, appends continue.
	if err := s.Ack(big.FirstSeq, big.FirstSeq+1, big.FirstSeq+2); err != nil {
		t.Fatal(err)
	}
	if !signalled(space) {
		t.Error("Space not closed by Ack")
	}
	if !signalled(s.Notify()) {
		t.Error("Notify not signalled by Ack after ErrFull")
	}
	if _, err := s.Append(inputs(6, 1), nil); err != nil {
		t.Fatalf("Append after Ack = %v", err)
	}
	stats, _ = s.Stats()
	if stats.Pending != 3 || stats.PendingBytes != 3*one {
		t.Errorf("stats = %+v", stats)
	}
	// Exactly at the bound: the next one is refused, a dead letter frees.
	space = s.Space()
	if _, err := s.Append(inputs(7, 1), nil); !errors.Is(err, ErrFull) {
		t.Fatalf("Append at the bound = %v, want ErrFull", err)
	}
	if err := s.DeadLetter(big.FirstSeq+3, "x"); err != nil {
		t.Fatal(err)
	}
	if !signalled(space) {
		t.Error("Space not closed by DeadLetter")
	}
}

// mustEncode returns the outbox value of in.
func mustEncode(in Input, at time.Time) []byte {
	items, err := (&Store{now: func() time.Time { return at }}).prepare([]Input{in})
	if err != nil {
		panic(err)
	}
	return items[0].val
}

func TestStatsAfterMixedOperations(t *testing.T) {
	s := openTemp(t)
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 0 || st.PendingBytes != 0 || !st.OldestPendingAt.IsZero() || st.FileSize == 0 {
		t.Errorf("empty stats = %+v", st)
	}
	r := mustAppend(t, s, inputs(1, 10), nil)
	if err := s.Ack(r.FirstSeq, r.FirstSeq+1, r.FirstSeq+2, 1, r.FirstSeq+2); err != nil { // unknown and repeated seqs
		t.Fatal(err)
	}
	for _, seq := range []uint64{r.FirstSeq + 5, r.FirstSeq + 6} {
		if err := s.DeadLetter(seq, "no"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AddDead(txInput(99, "x"), StageMap, "bad"); err != nil {
		t.Fatal(err)
	}
	dead, _ := s.DeadLetters(10)
	if _, err := s.Requeue(dead[0].ID); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, []Input{txInput(3, "changed")}, nil)

	st, err = s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	recs := mustPending(t, s, 100)
	var bytesSum int64
	err = s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			bytesSum += int64(len(k) + len(v))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	// 10 - 3 acked - 2 dead + 1 requeued + 1 changed
	if st.Pending != 7 || int(st.Pending) != len(recs) || st.PendingBytes != bytesSum {
		t.Errorf("stats = %+v, records %d, bytes %d", st, len(recs), bytesSum)
	}
	if st.DeadLetters != 2 {
		t.Errorf("dead letters = %d, want 2", st.DeadLetters)
	}
	if !st.OldestPendingAt.Equal(recs[0].AddedAt) || recs[0].Seq != r.FirstSeq+3 {
		t.Errorf("oldest = %v, first record %+v", st.OldestPendingAt, recs[0])
	}
	if st.LastSeq != recs[len(recs)-1].Seq {
		t.Errorf("LastSeq = %d, last record %d", st.LastSeq, recs[len(recs)-1].Seq)
	}
	// The counters survive a reopen.
	opts := testOptions(t, filepath.Dir(s.Path()))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := mustOpen(t, opts)
	defer s2.Close()
	st2, _ := s2.Stats()
	if st2.LastSeq < st.LastSeq {
		t.Errorf("LastSeq after reopen = %d, was %d", st2.LastSeq, st.LastSeq)
	}
	st2.FileSize, st.FileSize = 0, 0
	st2.LastSeq = st.LastSeq // an open may skip seqs (seqfile.go)
	if !reflect.DeepEqual(st2, st) {
		t.Errorf("stats after reopen = %+v, want %+v", st2, st)
	}
}

func TestCorruptOutboxValueIsDeadLettered(t *testing.T) {
	s := openTemp(t)
	r := mustAppend(t, s, inputs(1, 3), nil)
	err := s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).Put(seqKey(r.FirstSeq+1), []byte{9, 9, 9})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustPending(t, s, 10); len(got) != 1 || got[0].Seq != r.FirstSeq {
		t.Fatalf("first Pending = %v", seqsOf(got))
	}
	if err := s.Ack(r.FirstSeq); err != nil {
		t.Fatal(err)
	}
	if got := mustPending(t, s, 10); len(got) != 1 || got[0].Seq != r.LastSeq {
		t.Fatalf("Pending past the corrupt value = %v", seqsOf(got))
	}
	dead, _ := s.DeadLetters(10)
	if len(dead) != 1 || dead[0].Stage != StageCorrupt || !bytes.Equal(dead[0].Record.Data, []byte{9, 9, 9}) {
		t.Fatalf("dead letters = %+v", dead)
	}
	if _, err := s.Requeue(dead[0].ID); !errors.Is(err, ErrNotRequeueable) {
		t.Errorf("Requeue of a corrupt letter = %v", err)
	}
}

func TestConcurrentProducersAndForwarder(t *testing.T) {
	opts := testOptions(t, "")
	opts.MaxPendingBytes = 20 << 10 // small: producers hit ErrFull
	s := mustOpen(t, opts)
	defer s.Close()
	const producers, batches, perBatch = 4, 20, 25
	total := producers * batches * perBatch

	var wg sync.WaitGroup
	errc := make(chan error, producers+1)
	for p := range producers {
		wg.Go(func() {
			for b := range batches {
				in := inputs((p*batches+b)*perBatch, perBatch)
				st := &SourceState{Source: fmt.Sprintf("p%d", p), Cursor: fmt.Sprint(b)}
				for {
					space := s.Space()
					_, err := s.Append(in, st)
					if err == nil {
						break
					}
					if !errors.Is(err, ErrFull) {
						errc <- err
						return
					}
					<-space
				}
			}
		})
	}
	done := make(chan []uint64)
	go func() {
		var got []uint64
		for len(got) < total {
			recs, err := s.Pending(100)
			if err != nil {
				errc <- err
				break
			}
			if len(recs) == 0 {
				<-s.Notify()
				continue
			}
			if err := s.Ack(seqsOf(recs)...); err != nil {
				errc <- err
				break
			}
			got = append(got, seqsOf(recs)...)
		}
		done <- got
	}()
	wg.Wait()
	got := <-done
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if len(got) != total {
		t.Fatalf("delivered %d, want %d", len(got), total)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("delivery out of order at %d: %d then %d", i, got[i-1], got[i])
		}
	}
	st, _ := s.Stats()
	if st.Pending != 0 || st.PendingBytes != 0 {
		t.Errorf("stats after drain = %+v", st)
	}
	states, _ := s.SourceStates()
	for _, ss := range states {
		if ss.Cursor != fmt.Sprint(batches-1) {
			t.Errorf("state %s cursor = %q", ss.Source, ss.Cursor)
		}
	}
}

func TestSetMaxPendingBytes(t *testing.T) {
	opts := testOptions(t, "")
	opts.MaxPendingBytes = 1
	s := mustOpen(t, opts)
	defer s.Close()
	mustAppend(t, s, inputs(1, 1), nil)
	space := s.Space()
	if _, err := s.Append(inputs(2, 1), nil); !errors.Is(err, ErrFull) {
		t.Fatalf("Append = %v, want ErrFull", err)
	}
	s.SetMaxPendingBytes(1 << 20)
	if !signalled(space) {
		t.Error("raising the bound did not wake producers")
	}
	if _, err := s.Append(inputs(2, 1), nil); err != nil {
		t.Fatalf("Append after raising the bound = %v", err)
	}
	s.SetMaxPendingBytes(1)
	if _, err := s.Append(inputs(3, 1), nil); !errors.Is(err, ErrFull) {
		t.Errorf("Append after lowering the bound = %v, want ErrFull", err)
	}
	s.SetMaxPendingBytes(0)
	if _, err := s.Append(inputs(3, 1), nil); err != nil {
		t.Errorf("Append unbounded = %v", err)
	}
}

// Regression: a broken source record re-fetched by every poll is set aside
// once; once fixed it is buffered normally.
func TestAddDeadDedupesSameContent(t *testing.T) {
	s, err := Open(Options{Path: filepath.Join(t.TempDir(), "agent.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bad := Input{Kind: KindTransaction, Key: "moka/b/o/T1", Data: json.RawMessage(`{"id":"T1","grand_total":"12a"}`)}
	id, err := s.AddDead(bad, StageMap, "grand_total: bad number")
	if err != nil || id == 0 {
		t.Fatalf("first AddDead: %d %v", id, err)
	}
	if id2, err := s.AddDead(bad, StageMap, "grand_total: bad number"); err != nil || id2 != 0 {
		t.Fatalf("repeated AddDead: id %d err %v, want 0 nil", id2, err)
	}
	other := bad
	other.Data = json.RawMessage(`{"id":"T1","grand_total":"12b"}`)
	if id3, err := s.AddDead(other, StageMap, "grand_total: bad number"); err != nil || id3 == 0 {
		t.Fatalf("changed broken record not set aside: %d %v", id3, err)
	}
	if st, _ := s.Stats(); st.DeadLetters != 2 {
		t.Fatalf("dead letters %d, want 2", st.DeadLetters)
	}
	fixed := Input{Kind: KindTransaction, Key: "moka/b/o/T1", Data: json.RawMessage(`{"external_id":"T1","amount":"12"}`)}
	if res, err := s.Append([]Input{fixed}, nil); err != nil || res.Appended != 1 {
		t.Fatalf("fixed record: %+v %v", res, err)
	}
}

// TestWriteErr: a write that fails because of the disk is remembered until a
// write commits again; a logical refusal (the buffer bound, a failing
// transaction function) is not a disk problem.
func TestWriteErr(t *testing.T) {
	s := openTemp(t)
	if err := s.WriteErr(); err != nil {
		t.Fatalf("fresh store: WriteErr = %v", err)
	}
	s.testHookAppend = func() error { return errors.New("logical refusal") }
	if _, err := s.Append(inputs(1, 1), nil); err == nil {
		t.Fatal("append with failing hook succeeded")
	}
	if err := s.WriteErr(); err != nil {
		t.Fatalf("a logical refusal counted as a write failure: %v", err)
	}

	enospc := &fs.PathError{Op: "write", Path: "agent.db", Err: syscall.ENOSPC}
	s.testHookAppend = func() error { return enospc }
	if _, err := s.Append(inputs(1, 1), nil); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append = %v, want ENOSPC", err)
	}
	if err := s.WriteErr(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("WriteErr = %v, want the disk-full error", err)
	}
	// Reads do not clear it: only a write proves the disk writable again.
	if _, err := s.Stats(); err != nil {
		t.Fatal(err)
	}
	if s.WriteErr() == nil {
		t.Fatal("a read cleared WriteErr")
	}
	s.testHookAppend = nil
	mustAppend(t, s, inputs(1, 1), nil)
	if err := s.WriteErr(); err != nil {
		t.Fatalf("after a committed write: WriteErr = %v", err)
	}
}
