package moka

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

// Issue 15: an import for an outlet Moka does not list used to print
// "done", exit 0 and show a finished import. It fails, naming the outlets
// there are; a good import reports what it did: records, new, changed,
// outlets and when it finished.
func TestImportUnknownOutletAndSummary(t *testing.T) {
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "agent.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := runHistory(t, st, 5)
	since := time.Now().UTC().AddDate(0, 0, -2)

	if err := s.Import(since, "nope"); err != nil {
		t.Fatal(err)
	}
	imp := waitImported(t, s)
	if !strings.Contains(imp.Error, `unknown outlet "nope"; the outlets are: o1 (Outlet Satu)`) || imp.Outlets != 0 || imp.Records != 0 {
		t.Errorf("import for an unknown outlet: %+v", imp)
	}
	if got := (UnknownOutletError{ID: "x"}).Error(); !strings.Contains(got, "none yet") {
		t.Errorf("no outlets: %q", got)
	}

	// Once the poll has buffered the 5 records, an import finds them
	// unchanged.
	testutil.WaitFor(t, "the poll", 20*time.Second, func() bool {
		stats, err := st.Stats()
		return err == nil && stats.Pending == 5
	})
	if err := s.Import(since, ""); err != nil {
		t.Fatal(err)
	}
	imp = waitImported(t, s)
	if imp.Error != "" || imp.Records != 5 || imp.New != 0 || imp.Changed != 0 || imp.Outlets != 1 || imp.FinishedAt.IsZero() {
		t.Errorf("import of known records: %+v", imp)
	}
}

// importOnlyConn is historyConn for a walk from before cutoff (an
// import) and empty for later walks (the poll), so that only imports
// buffer its records; ver changes the first two records' data.
type importOnlyConn struct {
	historyConn
	cutoff time.Time
	ver    *atomic.Int64
}

func (c importOnlyConn) Transactions(ctx context.Context, outlet string, from time.Time, emit func(Page) error) error {
	if !from.Before(c.cutoff) {
		return nil
	}
	var in []store.Input
	for i := range c.n {
		amount := int64(1000 + i)
		if i < 2 {
			amount += 100 * c.ver.Load()
		}
		in = append(in, store.Input{Kind: store.KindTransaction, Key: fmt.Sprintf("moka/b1/%s/T%03d", outlet, i),
			Data: json.RawMessage(fmt.Sprintf(`{"external_id":"T%03d","amount":"%d"}`, i, amount))})
	}
	return emit(Page{Inputs: in, Last: true, Through: from.Add(72 * time.Hour)})
}

// An import counts what it brought: records not in the buffer before as
// new, records there in another version as changed (the test above sees
// only unchanged ones, so it would pass with both counts always 0).
func TestImportCountsNewAndChanged(t *testing.T) {
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "agent.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	conn := importOnlyConn{historyConn: historyConn{n: 5}, cutoff: now.AddDate(0, 0, -5), ver: new(atomic.Int64)}
	s := runImporter(t, st, conn)
	since := now.AddDate(0, 0, -10)

	if err := s.Import(since, ""); err != nil {
		t.Fatal(err)
	}
	if imp := waitImported(t, s); imp.Error != "" || imp.Records != 5 || imp.New != 5 || imp.Changed != 0 {
		t.Errorf("first import: %+v, want 5 records, 5 new", imp)
	}
	conn.ver.Add(1) // two sales edited in Moka
	if err := s.Import(since, ""); err != nil {
		t.Fatal(err)
	}
	if imp := waitImported(t, s); imp.Error != "" || imp.Records != 5 || imp.New != 0 || imp.Changed != 2 {
		t.Errorf("import after two edits: %+v, want 5 records, 0 new, 2 changed", imp)
	}
}
