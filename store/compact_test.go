package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fillAndDrain appends n ~800-byte records and acks all but the last keep.
func fillAndDrain(t *testing.T, s *Store, n, keep int) []uint64 {
	t.Helper()
	for i := 0; i < n; i += 500 {
		in := make([]Input, min(500, n-i))
		for j := range in {
			in[j] = benchInput(i + j)
		}
		mustAppend(t, s, in, nil)
	}
	for {
		recs := mustPending(t, s, 500)
		st, _ := s.Stats()
		if int(st.Pending) <= keep {
			return seqsOf(mustPending(t, s, keep))
		}
		recs = recs[:min(len(recs), int(st.Pending)-keep)]
		if err := s.Ack(seqsOf(recs)...); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCompactShrinksAndKeepsData(t *testing.T) {
	s := openTemp(t)
	kept := fillAndDrain(t, s, 6000, 10)
	if _, err := s.AddDead(txInput(1, "x"), StageMap, "bad"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSourceState(SourceState{Source: "src", Cursor: "c"}); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Stats()

	// Readers and writers keep going while the compaction runs.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Stats(); err != nil {
				errc <- err
				return
			}
			if _, err := s.Append([]Input{txInput(100000+i%3, "1")}, nil); err != nil {
				errc <- err
				return
			}
		}
	})
	b, a, err := s.Compact()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Compact: %v", err)
	}
	select {
	case err := <-errc:
		t.Fatalf("concurrent operation: %v", err)
	default:
	}
	t.Logf("compact: %d -> %d bytes", b, a)
	if b != before.FileSize || a >= b/4 {
		t.Errorf("Compact sizes %d -> %d (stats said %d)", b, a, before.FileSize)
	}
	if fi, _ := os.Stat(s.Path()); fi.Size() != a {
		t.Errorf("file size %d, Compact said %d", fi.Size(), a)
	}
	if got := seqsOf(mustPending(t, s, 10)); !slices.Equal(got, kept) {
		t.Errorf("pending after compact = %v, want %v", got, kept)
	}
	after, _ := s.Stats()
	if after.DeadLetters != 1 || after.LastSeq < before.LastSeq || after.Pending < 10 {
		t.Errorf("stats after compact = %+v, before %+v", after, before)
	}
	if st, ok, _ := s.SourceState("src"); !ok || st.Cursor != "c" {
		t.Errorf("source state after compact = %+v", st)
	}
	res := mustAppend(t, s, []Input{txInput(424242, "1")}, nil)
	if res.FirstSeq <= after.LastSeq {
		t.Errorf("seq after compact = %d, last was %d", res.FirstSeq, after.LastSeq)
	}
	// Dedupe survived: an old key with the same content is still a no-op.
	if res := mustAppend(t, s, []Input{benchInput(5999)}, nil); res.Unchanged != 1 {
		t.Errorf("dedupe lost by compaction: %+v", res)
	}
	if _, err := os.Stat(s.Path() + compactSuffix); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
}

func TestCompactAtOpen(t *testing.T) {
	old := compactMinSize
	compactMinSize = 1 << 20
	t.Cleanup(func() { compactMinSize = old })

	opts := testOptions(t, "")
	s := mustOpen(t, opts)
	kept := fillAndDrain(t, s, 4000, 3)
	_ = s.Close()
	before, _ := fileSize(opts.Path)

	var logs logBuffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s = mustOpen(t, opts)
	defer s.Close()
	after, _ := fileSize(opts.Path)
	if after >= before/2 || !strings.Contains(logs.String(), "Compacted database") {
		t.Fatalf("open did not compact: %d -> %d; log %s", before, after, logs.String())
	}
	if got := seqsOf(mustPending(t, s, 10)); !slices.Equal(got, kept) {
		t.Errorf("pending = %v, want %v", got, kept)
	}

	// A file that is mostly live data is left alone.
	mustAppend(t, s, benchInputs(10000, 2000), nil)
	_ = s.Close()
	var logs2 logBuffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs2, nil))
	before, _ = fileSize(opts.Path)
	s2 := mustOpen(t, opts)
	defer s2.Close()
	if after, _ := fileSize(opts.Path); after != before || strings.Contains(logs2.String(), "Compact") {
		t.Errorf("compacted a full file: %d -> %d", before, after)
	}
}

func TestCompactClosed(t *testing.T) {
	s := mustOpen(t, testOptions(t, ""))
	_ = s.Close()
	if _, _, err := s.Compact(); err != ErrClosed {
		t.Errorf("Compact after Close = %v", err)
	}
}

func benchInputs(from, n int) []Input {
	in := make([]Input, n)
	for i := range in {
		in[i] = benchInput(from + i)
	}
	return in
}

// benchInput is a ~800-byte unified transaction with a distinct key.
func benchInput(i int) Input {
	data := fmt.Sprintf(`{"external_id":"MOK%09d","source_system":"moka","business_id":"biz_1","outlet_id":"outlet_456",`+
		`"receipt_no":"INV%08d","status":"completed","currency":"IDR","amount":"150000","subtotal":"136364",`+
		`"tax_amount":"13636","service_charge_amount":"0","discount_amount":"0","refund_amount":"0",`+
		`"payment_method":"cash","timestamp":"2025-12-26T10:30:00+07:00","business_date":"2025-12-26","items":[`+
		`{"name":"Es Kopi Susu","variant":"Large","sku":"","quantity":"2","unit_price":"25000","total":"50000","discount_amount":"0","modifiers":[{"name":"Extra shot","price":"5000"}]},`+
		`{"name":"Croissant","variant":"","sku":"CR-01","quantity":"1","unit_price":"36364","total":"36364","discount_amount":"0","modifiers":[]},`+
		`{"name":"Nasi Goreng","variant":"Pedas","sku":"NG-02","quantity":"1","unit_price":"50000","total":"50000","discount_amount":"0","modifiers":[]}]}`, i, i)
	return Input{Kind: KindTransaction, Key: fmt.Sprintf("moka/biz_1/outlet_456/MOK%09d", i), Data: []byte(data)}
}

// A long-running agent compacts without a restart once a backlog drained.
func TestMaybeCompactWhileOpen(t *testing.T) {
	old := compactMinSize
	compactMinSize = 1 << 20
	t.Cleanup(func() { compactMinSize = old })

	opts := testOptions(t, "")
	s := mustOpen(t, opts)
	defer s.Close()
	kept := fillAndDrain(t, s, 4000, 3)
	before, _ := fileSize(opts.Path)
	if err := s.MaybeCompact(); err != nil {
		t.Fatal(err)
	}
	after, _ := fileSize(opts.Path)
	if after >= before/2 {
		t.Fatalf("not compacted: %d -> %d", before, after)
	}
	if got := seqsOf(mustPending(t, s, 10)); !slices.Equal(got, kept) {
		t.Errorf("pending = %v, want %v", got, kept)
	}
	// Still usable, and a second call on a compact file does nothing.
	mustAppend(t, s, benchInputs(20000, 10), nil)
	if err := s.MaybeCompact(); err != nil {
		t.Fatal(err)
	}
	if again, _ := fileSize(opts.Path); again < after {
		t.Errorf("compacted a compact file: %d -> %d", after, again)
	}
	_ = s.Close()
	if err := s.MaybeCompact(); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}
