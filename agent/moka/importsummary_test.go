package moka

import (
	"errors"
	"path/filepath"
	"strings"
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
	var uo UnknownOutletError
	if !errors.As(error(UnknownOutletError{ID: "x"}), &uo) || !strings.Contains(uo.Error(), "none yet") {
		t.Errorf("no outlets: %q", uo.Error())
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
