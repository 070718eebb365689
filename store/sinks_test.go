package store

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func mustSetSinks(t testing.TB, s *Store, names ...string) {
	t.Helper()
	if err := s.SetSinks(names...); err != nil {
		t.Fatalf("SetSinks(%v): %v", names, err)
	}
}

func pendingSeqs(t testing.TB, v *SinkView) []uint64 {
	t.Helper()
	recs, err := v.Pending(1 << 20)
	if err != nil {
		t.Fatalf("Pending(%s): %v", v.Name(), err)
	}
	checkIncreasing(t, recs)
	return seqsOf(recs)
}

func mustAck(t testing.TB, v *SinkView, seqs ...uint64) {
	t.Helper()
	if err := v.Ack(seqs...); err != nil {
		t.Fatalf("Ack(%s): %v", v.Name(), err)
	}
}

func sinkStatsOf(t testing.TB, s *Store, name string) SinkStats {
	t.Helper()
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	ss, ok := st.Sink(name)
	if !ok {
		t.Fatalf("no stats for sink %s in %+v", name, st.Sinks)
	}
	return ss
}

func span(first, last uint64) []uint64 {
	var out []uint64
	for s := first; s <= last; s++ {
		out = append(out, s)
	}
	return out
}

// Two sinks read the same records at their own pace: one acking everything
// does not remove what the other still needs, the bound keeps counting it,
// and the records leave the buffer (and free space) when the second has
// them too.
func TestTwoSinksOwnPositions(t *testing.T) {
	s := openTemp(t)
	mustSetSinks(t, s, "upstream", "nats")
	up, nats := s.Sink("upstream"), s.Sink("nats")
	r := mustAppend(t, s, inputs(1, 10), nil)
	all := span(r.FirstSeq, r.LastSeq)
	for _, v := range []*SinkView{up, nats} {
		if got := pendingSeqs(t, v); !slices.Equal(got, all) {
			t.Fatalf("%s pending = %v, want %v", v.Name(), got, all)
		}
		if !signalled(v.Notify()) {
			t.Errorf("%s: Notify not signalled by Append", v.Name())
		}
	}
	before, _ := s.Stats()

	space := s.Space()
	mustAck(t, up, all...)
	if got := pendingSeqs(t, up); len(got) != 0 {
		t.Fatalf("upstream pending after its acks = %v", got)
	}
	if got := pendingSeqs(t, nats); !slices.Equal(got, all) {
		t.Fatalf("nats pending after upstream's acks = %v", got)
	}
	st, _ := s.Stats()
	if st.Pending != 10 || st.PendingBytes != before.PendingBytes {
		t.Errorf("buffer after one sink acked = %d records, %d bytes; want 10, %d", st.Pending, st.PendingBytes, before.PendingBytes)
	}
	if signalled(space) {
		t.Error("Space closed although nothing left the buffer")
	}
	if ss, _ := st.Sink("upstream"); ss.Pending != 0 || ss.PendingBytes != 0 || !ss.OldestPendingAt.IsZero() {
		t.Errorf("upstream stats = %+v", ss)
	}
	if ss, _ := st.Sink("nats"); ss.Pending != 10 || ss.PendingBytes != before.PendingBytes || ss.OldestPendingAt.IsZero() {
		t.Errorf("nats stats = %+v", ss)
	}

	mustAck(t, nats, all[:4]...)
	if !signalled(space) {
		t.Error("Space not closed when records left the buffer")
	}
	if st, _ := s.Stats(); st.Pending != 6 {
		t.Errorf("buffer after nats acked 4 = %d", st.Pending)
	}
	mustAck(t, nats, all[4:]...)
	if st, _ := s.Stats(); st.Pending != 0 || st.PendingBytes != 0 {
		t.Errorf("buffer after both acked = %+v", st)
	}
}

// A sink's acks may run ahead of a record it holds (the delivery loop's
// bisection): the held record stays pending for it alone, and leaves the
// buffer when it is dead-lettered, as that sink's dead letter.
func TestOutOfOrderAcksAndSinkDeadLetters(t *testing.T) {
	opts := testOptions(t, "")
	s := mustOpen(t, opts)
	mustSetSinks(t, s, "upstream", "nats")
	up, nats := s.Sink("upstream"), s.Sink("nats")
	r := mustAppend(t, s, inputs(1, 10), nil)
	all := span(r.FirstSeq, r.LastSeq)
	held := all[2]
	mustAck(t, up, slices.Concat(all[:2], all[3:])...)
	mustAck(t, nats, all...)
	if got := pendingSeqs(t, up); !slices.Equal(got, []uint64{held}) {
		t.Fatalf("upstream pending = %v, want the held %d", got, held)
	}
	st, _ := s.Stats()
	if st.Pending != 1 {
		t.Fatalf("buffer = %d records, want 1 (the held one)", st.Pending)
	}
	if ss, _ := st.Sink("upstream"); ss.Pending != 1 || ss.OldestPendingAt.IsZero() {
		t.Errorf("upstream stats = %+v", ss)
	}
	// Positions survive a reopen.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, opts)
	defer s.Close()
	up, nats = s.Sink("upstream"), s.Sink("nats")
	if got := pendingSeqs(t, up); !slices.Equal(got, []uint64{held}) {
		t.Fatalf("upstream pending after reopen = %v", got)
	}
	if got := pendingSeqs(t, nats); len(got) != 0 {
		t.Fatalf("nats pending after reopen = %v", got)
	}
	if err := nats.DeadLetter(held, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("nats dead-letters a record it acked: %v, want ErrNotFound", err)
	}
	if err := up.DeadLetter(held, "HTTP 422: amount"); err != nil {
		t.Fatal(err)
	}
	st, _ = s.Stats()
	if st.Pending != 0 || st.DeadLetters != 1 {
		t.Errorf("stats after the dead letter = %+v", st)
	}
	if ss, _ := st.Sink("upstream"); ss.DeadLetters != 1 {
		t.Errorf("upstream dead letters = %d", ss.DeadLetters)
	}
	if ss, _ := st.Sink("nats"); ss.DeadLetters != 0 {
		t.Errorf("nats dead letters = %d", ss.DeadLetters)
	}
	dls, err := s.DeadLettersOf("upstream", 10)
	if err != nil || len(dls) != 1 || dls[0].Stage != "upstream" || dls[0].Sink != "upstream" || dls[0].Record.Seq != held {
		t.Fatalf("upstream dead letters = %+v, %v", dls, err)
	}
	if dls, _ := s.DeadLettersOf("nats", 10); len(dls) != 0 {
		t.Errorf("nats dead letters = %+v", dls)
	}
}

// A sink enabled later starts at the oldest record still buffered; one
// disabled releases what only it needed, keeps the count of its dead
// letters, and starts afresh when enabled again.
func TestEnableAndDisableSinks(t *testing.T) {
	s := openTemp(t)
	up, nats := s.Sink("upstream"), s.Sink("nats")
	r := mustAppend(t, s, inputs(1, 10), nil)
	all := span(r.FirstSeq, r.LastSeq)
	mustAck(t, up, all[:4]...)
	if got, _ := s.Sinks(); !slices.Equal(got, []string{"upstream"}) {
		t.Fatalf("sinks of a new database = %v", got)
	}
	if got := pendingSeqs(t, nats); len(got) != 0 {
		t.Fatalf("a sink that is not enabled has pending records: %v", got)
	}

	mustSetSinks(t, s, "nats", "upstream")
	if got := pendingSeqs(t, nats); !slices.Equal(got, all[4:]) {
		t.Fatalf("nats starts with %v, want what is buffered: %v", got, all[4:])
	}
	if !signalled(nats.Notify()) {
		t.Error("enabling a sink does not wake its forwarder")
	}
	ss := sinkStatsOf(t, s, "nats")
	if ss.Pending != 6 || ss.PendingBytes != sinkStatsOf(t, s, "upstream").PendingBytes {
		t.Errorf("nats stats = %+v", ss)
	}
	// nats takes one and rejects one; upstream takes everything; nats
	// is down for the rest.
	mustAck(t, nats, all[4])
	if err := nats.DeadLetter(all[5], "stream refused it"); err != nil {
		t.Fatal(err)
	}
	mustAck(t, up, all[4:]...)
	if st, _ := s.Stats(); st.Pending != 4 {
		t.Fatalf("buffer keeps what nats needs: %d records, want 4", st.Pending)
	}

	space := s.Space()
	mustSetSinks(t, s, "upstream")
	if !signalled(space) {
		t.Error("disabling a sink freed no space")
	}
	st, _ := s.Stats()
	if st.Pending != 0 || st.PendingBytes != 0 {
		t.Errorf("buffer after nats was disabled = %+v", st)
	}
	if ss, _ := st.Sink("nats"); ss.Enabled || ss.Pending != 0 || ss.DeadLetters != 1 {
		t.Errorf("disabled nats stats = %+v", ss)
	}
	mustAck(t, nats, all...) // ignored
	if err := nats.DeadLetter(all[9], "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("dead letter of a disabled sink = %v", err)
	}
	if _, err := s.RequeueAllOf("nats"); err != nil {
		t.Fatal(err)
	}
	if dls, _ := s.DeadLettersOf("nats", 10); len(dls) != 1 {
		t.Errorf("a disabled sink's dead letter was requeued: %+v", dls)
	}

	// Enabled again, it has only what arrives from now on.
	mustSetSinks(t, s, "upstream", "nats")
	if got := pendingSeqs(t, nats); len(got) != 0 {
		t.Fatalf("re-enabled nats pending = %v", got)
	}
	r2 := mustAppend(t, s, inputs(100, 3), nil)
	if got := pendingSeqs(t, nats); !slices.Equal(got, span(r2.FirstSeq, r2.LastSeq)) {
		t.Fatalf("re-enabled nats pending = %v", got)
	}
	n, err := s.RequeueAllOf("nats")
	if n != 1 || err != nil {
		t.Fatalf("RequeueAllOf(nats) = %d, %v", n, err)
	}
	if got := pendingSeqs(t, up); !slices.Equal(got, span(r2.FirstSeq, r2.LastSeq)) {
		t.Errorf("a nats dead letter went back to upstream too: %v", got)
	}
	if got := pendingSeqs(t, nats); len(got) != 4 || got[3] <= r2.LastSeq {
		t.Errorf("nats pending after requeue = %v", got)
	}
	if ss := sinkStatsOf(t, s, "nats"); ss.DeadLetters != 0 || ss.Pending != 4 {
		t.Errorf("nats stats after requeue = %+v", ss)
	}

	for _, bad := range [][]string{nil, {"map"}, {"Upstream"}, {"a b"}, {""}, {"corrupt"}} {
		if err := s.SetSinks(bad...); !errors.Is(err, ErrSinkName) {
			t.Errorf("SetSinks(%q) = %v, want ErrSinkName", bad, err)
		}
	}
}

// A release interrupted by a crash is finished by the next SetSinks, and
// records needed by another sink are never released.
func TestReleaseResumesAfterACrash(t *testing.T) {
	defer func(n int) { releaseChunk = n }(releaseChunk)
	releaseChunk = 3
	opts := testOptions(t, "")
	s := mustOpen(t, opts)
	mustSetSinks(t, s, "upstream", "nats")
	r := mustAppend(t, s, inputs(1, 20), nil)
	all := span(r.FirstSeq, r.LastSeq)
	// upstream has taken every other record; nats is down.
	for i := 0; i < len(all); i += 2 {
		mustAck(t, s.Sink("upstream"), all[i])
	}
	calls := 0
	s.testHookRelease = func() error {
		if calls++; calls == 3 {
			return errors.New("power cut")
		}
		return nil
	}
	if err := s.SetSinks("upstream"); err == nil {
		t.Fatal("SetSinks with a failing release = nil")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, opts)
	defer s.Close()
	if st, _ := s.Stats(); st.Pending == 10 {
		t.Fatal("the interrupted release released everything: the test proves nothing")
	}
	mustSetSinks(t, s, "upstream")
	want := []uint64{}
	for i := 1; i < len(all); i += 2 {
		want = append(want, all[i])
	}
	if got := pendingSeqs(t, s.Sink("upstream")); !slices.Equal(got, want) {
		t.Fatalf("upstream pending = %v, want %v", got, want)
	}
	st, _ := s.Stats()
	if st.Pending != int64(len(want)) || st.Pending != sinkStatsOf(t, s, "upstream").Pending ||
		st.PendingBytes != sinkStatsOf(t, s, "upstream").PendingBytes {
		t.Errorf("stats after the release = %+v", st)
	}
	if err := s.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyRelease); v != nil {
			return fmt.Errorf("release marker left: %x", v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// An import for one sink re-buffers records the dedupe index holds for
// that sink alone; a record that is new or changed goes to every sink.
func TestAppendForOneSink(t *testing.T) {
	s := openTemp(t)
	mustSetSinks(t, s, "upstream", "jurnal")
	up, jur := s.Sink("upstream"), s.Sink("jurnal")
	r := mustAppend(t, s, inputs(1, 5), nil)
	mustAck(t, up, span(r.FirstSeq, r.LastSeq)...)
	mustAck(t, jur, span(r.FirstSeq, r.LastSeq)...)

	in := slices.Concat(inputs(1, 5), []Input{txInput(3, "999"), txInput(50, "1"), txInput(1, "150000")})
	res, err := s.AppendFor([]string{"jurnal"}, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Appended != 7 || res.Refetched != 5 || res.Unchanged != 1 {
		t.Fatalf("AppendFor = %+v, want 7 appended, 5 refetched, 1 unchanged", res)
	}
	all := span(res.FirstSeq, res.LastSeq)
	if got := pendingSeqs(t, jur); !slices.Equal(got, all) {
		t.Fatalf("jurnal pending = %v, want %v", got, all)
	}
	if got := pendingSeqs(t, up); !slices.Equal(got, all[5:]) {
		t.Fatalf("upstream pending = %v, want only the changed and the new record %v", got, all[5:])
	}
	// The changed record is now the known version for everybody.
	if res := mustAppend(t, s, []Input{txInput(3, "999")}, nil); res.Appended != 0 {
		t.Errorf("the changed version was not remembered: %+v", res)
	}
	if ss := sinkStatsOf(t, s, "upstream"); ss.Pending != 2 {
		t.Errorf("upstream stats = %+v", ss)
	}
	mustAck(t, up, all...)
	mustAck(t, jur, all...)
	if st, _ := s.Stats(); st.Pending != 0 || st.PendingBytes != 0 {
		t.Errorf("buffer after both acked = %+v", st)
	}

	// Records for jurnal alone are not upstream's oldest pending.
	if _, err := s.AppendFor([]string{"jurnal"}, inputs(1, 2), nil); err != nil {
		t.Fatal(err)
	}
	r = mustAppend(t, s, inputs(300, 1), nil)
	recs, _ := up.Pending(10)
	if len(recs) != 1 || recs[0].Seq != r.FirstSeq {
		t.Fatalf("upstream pending = %+v", recs)
	}
	if ss := sinkStatsOf(t, s, "upstream"); !ss.OldestPendingAt.Equal(recs[0].AddedAt) {
		t.Errorf("upstream oldest = %v, want %v", ss.OldestPendingAt, recs[0].AddedAt)
	}

	for _, sinks := range [][]string{{"nats"}, nil, {"upstream", "nats"}} {
		before, _ := s.Stats()
		if _, err := s.AppendFor(sinks, inputs(200, 2), nil); !errors.Is(err, ErrSinkName) {
			t.Errorf("AppendFor(%v) = %v, want ErrSinkName", sinks, err)
		}
		if after, _ := s.Stats(); after.LastSeq != before.LastSeq {
			t.Errorf("AppendFor(%v) wrote something", sinks)
		}
	}
}

// A record that cannot be decoded is set aside for every sink, and the
// sinks' counters follow.
func TestCorruptValueWithTwoSinks(t *testing.T) {
	s := openTemp(t)
	mustSetSinks(t, s, "upstream", "nats")
	r := mustAppend(t, s, inputs(1, 3), nil)
	mustAck(t, s.Sink("nats"), r.FirstSeq)
	if err := s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).Put(seqKey(r.FirstSeq+1), []byte{9, 9, 9})
	}); err != nil {
		t.Fatal(err)
	}
	if got := pendingSeqs(t, s.Sink("nats")); !slices.Equal(got, []uint64{r.LastSeq}) {
		t.Fatalf("nats pending = %v", got)
	}
	if got := pendingSeqs(t, s.Sink("upstream")); !slices.Equal(got, []uint64{r.FirstSeq, r.LastSeq}) {
		t.Fatalf("upstream pending = %v", got)
	}
	st, _ := s.Stats()
	if ss, _ := st.Sink("nats"); ss.Pending != 1 {
		t.Errorf("nats stats = %+v", ss)
	}
	if ss, _ := st.Sink("upstream"); ss.Pending != 2 {
		t.Errorf("upstream stats = %+v", ss)
	}
	if st.Pending != 2 || st.DeadLetters != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// The bound counts what any sink still needs: with one sink down, the
// buffer fills up and producers pause; the space comes back when that sink
// catches up.
func TestBoundCountsWhatAnySinkNeeds(t *testing.T) {
	s := openTemp(t)
	mustSetSinks(t, s, "upstream", "nats")
	r := mustAppend(t, s, inputs(1, 10), nil)
	st, _ := s.Stats()
	s.SetMaxPendingBytes(st.PendingBytes)
	mustAck(t, s.Sink("upstream"), span(r.FirstSeq, r.LastSeq)...)
	space := s.Space()
	if _, err := s.Append(inputs(11, 1), nil); !errors.Is(err, ErrFull) {
		t.Fatalf("Append while nats holds a full buffer = %v, want ErrFull", err)
	}
	mustAck(t, s.Sink("nats"), r.FirstSeq, r.FirstSeq+1) // two small ones make room for a bigger one
	if !signalled(space) {
		t.Fatal("Space not closed when nats took records")
	}
	if _, err := s.Append(inputs(11, 1), nil); err != nil {
		t.Fatalf("Append after nats took records = %v", err)
	}
}

// A database written by the store before sinks existed (format 1: the
// file was produced by that code and is kept in testdata) opens with every
// pending record pending for the upstream, its dead letters as upstream's,
// and the counters right.
func TestMigrateFormat1(t *testing.T) {
	opts := testOptions(t, "")
	b, err := os.ReadFile(filepath.Join("testdata", "format1.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(opts.Path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s := mustOpen(t, opts)
	defer s.Close()

	const base = 1766718001000000 // the file's first seq was base+1
	wantSeqs := []uint64{base + 5, base + 6, base + 8, base + 9, base + 10, base + 11, base + 12}
	recs := mustPending(t, s, 100)
	if got := seqsOf(recs); !slices.Equal(got, wantSeqs) {
		t.Fatalf("pending after the upgrade = %v, want %v", got, wantSeqs)
	}
	if recs[0].Key != "moka/biz_1/outlet_1/T005" || recs[5].Kind != KindProduct || recs[6].Kind != KindMokkaOrder {
		t.Errorf("records = %+v", recs)
	}
	if got, _ := s.Sinks(); !slices.Equal(got, []string{DefaultSink}) {
		t.Errorf("sinks = %v", got)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 7 || st.PendingBytes != 855 || st.DeadLetters != 2 {
		t.Errorf("stats = %+v", st)
	}
	up, _ := st.Sink(DefaultSink)
	if !up.Enabled || up.Pending != 7 || up.PendingBytes != 855 || up.DeadLetters != 1 || !up.OldestPendingAt.Equal(recs[0].AddedAt) {
		t.Errorf("upstream stats = %+v", up)
	}
	dls, _ := s.DeadLettersOf(DefaultSink, 10)
	if len(dls) != 1 || dls[0].Record.Key != "moka/biz_1/outlet_1/T004" || dls[0].Reason != "HTTP 422: amount is not a number" {
		t.Fatalf("upstream dead letters = %+v", dls)
	}
	if all, _ := s.DeadLetters(10); len(all) != 2 || all[1].Stage != StageMap || all[1].Sink != "" {
		t.Errorf("dead letters = %+v", all)
	}
	if src, ok, _ := s.SourceState("moka/biz_1/outlet_1/transactions"); !ok || src.Watermark != "2025-12-26T02:00:00Z" {
		t.Errorf("source state = %+v, %v", src, ok)
	}
	if doc, ok, _ := s.GetDoc("mokka_orders", "ORD1"); !ok || string(doc) != `{"order_id":"ORD1","status":"hold"}` {
		t.Errorf("document = %s, %v", doc, ok)
	}
	if !strings.Contains(logs.String(), `msg="Database upgraded`) {
		t.Errorf("no upgrade in the log:\n%s", logs.String())
	}
	// It works as a database of today: the dedupe index holds, the
	// requeued dead letter goes back to the upstream, acks empty it.
	if res := mustAppend(t, s, []Input{{Kind: KindTransaction, Key: "moka/biz_1/outlet_1/T009",
		Data: []byte(`{"external_id":"T009","amount":"10009"}`)}}, nil); res.Unchanged != 1 {
		t.Errorf("dedupe index lost in the upgrade: %+v", res)
	}
	if n, err := s.RequeueAllOf(DefaultSink); n != 1 || err != nil {
		t.Fatalf("RequeueAllOf = %d, %v", n, err)
	}
	recs = mustPending(t, s, 100)
	if len(recs) != 8 || recs[7].Key != "moka/biz_1/outlet_1/T004" || recs[7].Seq <= base+12 {
		t.Fatalf("pending after requeue = %+v", recs)
	}
	if err := s.Ack(seqsOf(recs)...); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Stats(); st.Pending != 0 || st.PendingBytes != 0 || st.DeadLetters != 1 {
		t.Errorf("stats after delivering everything = %+v", st)
	}
	// Reopened, the database is of today's format: no second upgrade.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var logs2 logBuffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs2, nil))
	s2 := mustOpen(t, opts)
	defer s2.Close()
	if strings.Contains(logs2.String(), "Database upgraded") {
		t.Error("upgraded twice")
	}
}

func TestSeqRanges(t *testing.T) {
	var r seqRanges
	for _, s := range []uint64{5, 6, 7, 10, 9, 1, 3, 2, 20, 8, 8} {
		r.add(s)
	}
	want := seqRanges{{1, 3}, {5, 10}, {20, 20}}
	if !slices.Equal(r, want) {
		t.Fatalf("ranges = %v, want %v", r, want)
	}
	for s, in := range map[uint64]bool{0: false, 1: true, 3: true, 4: false, 5: true, 10: true, 11: false, 20: true, 21: false} {
		if r.contains(s) != in {
			t.Errorf("contains(%d) = %v", s, !in)
		}
	}
	r.add(4)
	if !slices.Equal(r, seqRanges{{1, 10}, {20, 20}}) {
		t.Errorf("after joining = %v", r)
	}
	r.dropBelow(15)
	if !slices.Equal(r, seqRanges{{20, 20}}) {
		t.Errorf("after dropBelow = %v", r)
	}
}

func TestSinkStateCodec(t *testing.T) {
	for _, st := range []sinkState{
		{},
		{enabled: true, next: 1766718001000005, pendingN: 7, pendingBytes: 855, deadN: 2},
		{enabled: true, next: 3, done: seqRanges{{5, 5}, {7, 100}, {1 << 60, 1<<60 + 5}}, pendingN: 1},
	} {
		got, err := decodeSinkState(st.encode(nil))
		if err != nil {
			t.Fatalf("decode(%+v): %v", st, err)
		}
		if got.enabled != st.enabled || got.next != st.next || got.pendingN != st.pendingN ||
			got.pendingBytes != st.pendingBytes || got.deadN != st.deadN || !slices.Equal(got.done, st.done) {
			t.Errorf("round trip %+v -> %+v", st, got)
		}
	}
	for _, bad := range [][]byte{nil, {2}, {1}, {1, 2, 0, 0, 0, 0, 0}, {1, 1, 0, 0, 0, 0, 5, 1}, {1, 1, 0, 0, 0, 0, 0, 9}} {
		if _, err := decodeSinkState(bad); err == nil {
			t.Errorf("decode(%v) accepted", bad)
		}
	}
}

// modelSinks is what the buffer must hold, computed by brute force: each
// sink's pending seqs, and its dead letters.
type modelSinks struct {
	pending map[string][]uint64 // enabled sinks only
	dead    map[string]int64
	latest  map[string]string // key -> version last buffered for every sink
}

func (m *modelSinks) outbox() []uint64 {
	var all []uint64
	for _, p := range m.pending {
		all = append(all, p...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

func (m *modelSinks) enabled() []string {
	var names []string
	for n := range m.pending {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// A random mix of every operation on three sinks keeps every sink's pending
// records, every counter and the outbox exactly where a brute-force model
// says, across reopens.
func TestSinksAgainstModel(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runSinkModel(t, seed) })
	}
}

func runSinkModel(t *testing.T, seed uint64) {
	rnd := rand.New(rand.NewPCG(seed, 99))
	opts := testOptions(t, "")
	s := mustOpen(t, opts)
	defer func() { s.Close() }()
	names := []string{"jurnal", "nats", "upstream"}
	m := &modelSinks{pending: map[string][]uint64{"upstream": nil}, dead: map[string]int64{}, latest: map[string]string{}}
	input := func() Input {
		return txInput(rnd.IntN(40), fmt.Sprint(rnd.IntN(3)))
	}
	for step := 0; step < 300; step++ {
		enabled := m.enabled()
		op := rnd.IntN(100)
		switch {
		case op < 25: // Append
			in := make([]Input, 1+rnd.IntN(6))
			for i := range in {
				in[i] = input()
			}
			res := mustAppend(t, s, in, nil)
			seq := res.FirstSeq
			for _, x := range in {
				v := Version(x.Data)
				if m.latest[x.Key] == v {
					continue
				}
				m.latest[x.Key] = v
				for _, n := range enabled {
					m.pending[n] = append(m.pending[n], seq)
				}
				seq++
			}
			if res.Appended > 0 && seq != res.LastSeq+1 {
				t.Fatalf("step %d: model appended up to %d, store %+v", step, seq-1, res)
			}
		case op < 35: // AppendFor one sink
			target := enabled[rnd.IntN(len(enabled))]
			in := make([]Input, 1+rnd.IntN(6))
			for i := range in {
				in[i] = input()
			}
			res, err := s.AppendFor([]string{target}, in, nil)
			if err != nil {
				t.Fatal(err)
			}
			seq, again := res.FirstSeq, map[string]bool{}
			for _, x := range in {
				v := Version(x.Data)
				if m.latest[x.Key] == v {
					if again[x.Key] {
						continue
					}
					again[x.Key] = true
					m.pending[target] = append(m.pending[target], seq)
				} else {
					m.latest[x.Key] = v
					for _, n := range enabled {
						m.pending[n] = append(m.pending[n], seq)
					}
				}
				seq++
			}
		case op < 65: // Ack a prefix, holding some back, plus noise
			n := enabled[rnd.IntN(len(enabled))]
			p := m.pending[n]
			k := rnd.IntN(len(p) + 1)
			var acks, keep []uint64
			for i, q := range p {
				if i < k && rnd.IntN(5) > 0 {
					acks = append(acks, q)
				} else {
					keep = append(keep, q)
				}
			}
			noise := append(slices.Clone(acks), 1, s.lastSeqForTest()+5)
			if len(keep) > 0 && rnd.IntN(2) == 0 {
				noise = append(noise, keep[len(keep)-1]+100000)
			}
			rnd.Shuffle(len(noise), func(i, j int) { noise[i], noise[j] = noise[j], noise[i] })
			mustAck(t, s.Sink(n), noise...)
			m.pending[n] = keep
		case op < 72: // DeadLetter one
			n := enabled[rnd.IntN(len(enabled))]
			p := m.pending[n]
			if len(p) == 0 {
				continue
			}
			i := rnd.IntN(len(p))
			if err := s.Sink(n).DeadLetter(p[i], "rejected"); err != nil {
				t.Fatalf("step %d: DeadLetter(%s, %d): %v", step, n, p[i], err)
			}
			m.pending[n] = slices.Delete(slices.Clone(p), i, i+1)
			m.dead[n]++
		case op < 80: // Requeue a dead letter
			n := names[rnd.IntN(len(names))]
			dls, err := s.DeadLettersOf(n, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(dls)) != m.dead[n] {
				t.Fatalf("step %d: %s has %d dead letters, model %d", step, n, len(dls), m.dead[n])
			}
			if len(dls) == 0 {
				continue
			}
			d := dls[rnd.IntN(len(dls))]
			_, on := m.pending[n]
			ok := on && m.latest[d.Record.Key] == d.Record.Version
			got, err := s.RequeueOf(n, d.ID)
			if ok != (got == 1) || ok != (err == nil) {
				t.Fatalf("step %d: RequeueOf(%s, %d) = %d, %v; model says requeueable=%v", step, n, d.ID, got, err, ok)
			}
			if ok {
				m.pending[n] = append(m.pending[n], s.lastSeqForTest())
				m.dead[n]--
			}
		case op < 90: // SetSinks
			var want []string
			for _, n := range names {
				if rnd.IntN(2) == 0 {
					want = append(want, n)
				}
			}
			if len(want) == 0 {
				want = []string{names[rnd.IntN(len(names))]}
			}
			buffered := m.outbox()
			next := map[string][]uint64{}
			for _, n := range want {
				if p, ok := m.pending[n]; ok {
					next[n] = p
				} else {
					next[n] = slices.Clone(buffered)
				}
			}
			mustSetSinks(t, s, want...)
			m.pending = next
		default: // reopen
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, opts)
		}
		checkModel(t, step, s, m, names)
	}
}

// lastSeqForTest is the last seq the store assigned.
func (s *Store) lastSeqForTest() uint64 {
	var seq uint64
	_ = s.view(func(tx *bolt.Tx) error {
		seq = tx.Bucket(bucketOutbox).Sequence()
		return nil
	})
	return seq
}

func checkModel(t *testing.T, step int, s *Store, m *modelSinks, names []string) {
	t.Helper()
	sizes := map[uint64]int64{}
	var keys []uint64
	if err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			seq, _ := keySeq(k)
			keys = append(keys, seq)
			sizes[seq] = int64(len(v)) + 8
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if want := m.outbox(); !slices.Equal(keys, want) {
		t.Fatalf("step %d: outbox holds %v, model %v", step, keys, want)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, sz := range sizes {
		total += sz
	}
	if st.Pending != int64(len(keys)) || st.PendingBytes != total {
		t.Fatalf("step %d: stats %d records %d bytes, outbox %d, %d", step, st.Pending, st.PendingBytes, len(keys), total)
	}
	if got, _ := s.Sinks(); !slices.Equal(got, m.enabled()) {
		t.Fatalf("step %d: sinks %v, model %v", step, got, m.enabled())
	}
	var dead int64
	for _, n := range names {
		dead += m.dead[n]
		ss, _ := st.Sink(n)
		if ss.DeadLetters != m.dead[n] {
			t.Fatalf("step %d: %s dead letters %d, model %d", step, n, ss.DeadLetters, m.dead[n])
		}
		want, on := m.pending[n]
		if ss.Enabled != on {
			t.Fatalf("step %d: %s enabled = %v", step, n, ss.Enabled)
		}
		got := pendingSeqs(t, s.Sink(n))
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("step %d: %s pending %v, model %v", step, n, got, want)
		}
		var bytes int64
		for _, q := range want {
			bytes += sizes[q]
		}
		if ss.Pending != int64(len(want)) || ss.PendingBytes != bytes {
			t.Fatalf("step %d: %s stats %+v, model %d records %d bytes", step, n, ss, len(want), bytes)
		}
		if len(want) > 0 {
			recs, _ := s.Sink(n).Pending(1)
			if !ss.OldestPendingAt.Equal(recs[0].AddedAt) {
				t.Fatalf("step %d: %s oldest %v, first pending %+v", step, n, ss.OldestPendingAt, recs[0])
			}
		} else if !ss.OldestPendingAt.IsZero() {
			t.Fatalf("step %d: %s oldest %v with nothing pending", step, n, ss.OldestPendingAt)
		}
	}
	if st.DeadLetters != dead {
		t.Fatalf("step %d: dead letters %d, model %d", step, st.DeadLetters, dead)
	}
}
