package moka

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

// historyConn serves one outlet whose transactions are the same on every
// walk: n of them, one page, through now.
type historyConn struct{ n int }

func (h historyConn) Outlets(context.Context) ([]Outlet, error) {
	return []Outlet{{ID: "o1", Name: "Outlet Satu"}}, nil
}

func (h historyConn) Products(context.Context, string, func(Page) error) error { return nil }

func (h historyConn) Transactions(_ context.Context, outlet string, from time.Time, emit func(Page) error) error {
	var in []store.Input
	for i := range h.n {
		in = append(in, store.Input{Kind: store.KindTransaction, Key: fmt.Sprintf("moka/b1/%s/T%03d", outlet, i),
			Data: json.RawMessage(fmt.Sprintf(`{"external_id":"T%03d","amount":"%d"}`, i, 1000+i))})
	}
	return emit(Page{Inputs: in, Last: true, Through: from.Add(72 * time.Hour)})
}

func runHistory(t *testing.T, st *store.Store, n int) *Syncer {
	t.Helper()
	return runImporter(t, st, historyConn{n: n})
}

// runImporter runs a syncer of conn on st (backfill 3 days, an hourly
// poll on a fake clock) until the test ends.
func runImporter(t *testing.T, st *store.Store, conn Connector) *Syncer {
	t.Helper()
	s := New(conn, st, Config{BusinessID: "b1", Location: time.UTC, PollInterval: time.Hour, InitialBackfillDays: 3},
		Options{Clock: clockwork.NewFakeClock()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return s
}

func waitImported(t *testing.T, s *Syncer) ImportStatus {
	t.Helper()
	var imp ImportStatus
	testutil.WaitFor(t, "the import to finish", 20*time.Second, func() bool {
		st := s.Status()
		if st.Import == nil || st.Import.Running {
			return false
		}
		imp = *st.Import
		return true
	})
	return imp
}

// The import's status is in place before the loop can start it, so its
// progress is never recorded on a status that is then replaced: an import
// that finished says how many days it did out of how many. (Regression:
// the status was set after handing the request over, and an import that
// started at once ended with DaysTotal 0.)
func TestImportStatusIsSetBeforeTheImportStarts(t *testing.T) {
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "agent.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := runHistory(t, st, 5)
	since := time.Now().UTC().AddDate(0, 0, -2)
	for i := range 30 {
		if err := s.Import(since, ""); err != nil {
			t.Fatalf("import %d: %v", i, err)
		}
		imp := waitImported(t, s)
		if imp.Error != "" || imp.DaysTotal == 0 || imp.DaysDone != imp.DaysTotal {
			t.Fatalf("import %d finished with %+v", i, imp)
		}
	}
}

// An import for one sink re-buffers the history the buffer had already
// for that sink alone; the other sinks get nothing again.
func TestImportForOneSink(t *testing.T) {
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "agent.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.SetSinks("upstream", "jurnal"); err != nil {
		t.Fatal(err)
	}
	s := runHistory(t, st, 7)
	// The first poll buffers the history for every sink; both take it.
	testutil.WaitFor(t, "the first poll", 20*time.Second, func() bool {
		ss, err := st.Sink("jurnal").Stats()
		return err == nil && ss.Pending == 7
	})
	for _, name := range []string{"upstream", "jurnal"} {
		recs, err := st.Sink(name).Pending(100)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, r := range recs {
			seqs = append(seqs, r.Seq)
		}
		if err := st.Sink(name).Ack(seqs...); err != nil {
			t.Fatal(err)
		}
	}

	if err := s.ImportFor(time.Now().UTC().AddDate(0, 0, -2), "", "jurnal"); err != nil {
		t.Fatal(err)
	}
	// The 7 were buffered before: fetched again for jurnal alone, they
	// are neither new nor changed.
	if imp := waitImported(t, s); imp.Error != "" || imp.Sink != "jurnal" || imp.Records != 7 || imp.New != 0 || imp.Changed != 0 {
		t.Fatalf("import status: %+v", imp)
	}
	recs, err := st.Sink("jurnal").Pending(100)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range recs {
		keys = append(keys, r.Key)
	}
	if len(keys) != 7 || !slices.IsSorted(keys) || keys[0] != "moka/b1/o1/T000" {
		t.Fatalf("jurnal got %v, want the 7 transactions again", keys)
	}
	if recs, _ := st.Sink("upstream").Pending(100); len(recs) != 0 {
		t.Fatalf("the upstream got %d records again", len(recs))
	}
	// Only an enabled sink can be imported for.
	if err := s.ImportFor(time.Now().UTC().AddDate(0, 0, -2), "", "nats"); err != nil {
		t.Fatal(err)
	}
	if imp := waitImported(t, s); imp.Error == "" {
		t.Fatalf("import for a sink that is not enabled: %+v", imp)
	}
}
