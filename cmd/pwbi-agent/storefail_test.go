package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

// TestSeqAfterDatabaseDeleted: the technician deletes agent.db (keeping
// agent.db.seq, as a tidy-up or a "fix" would); the agent starts fresh,
// re-fetches from Moka and sends everything again, and every seq the
// upstream sees after the restart is greater than every seq before it
// (SPEC §6). The process clock cannot be set back from here, so this checks
// the promise end to end; store/seq_test.go covers a clock that is behind.
func TestSeqAfterDatabaseDeleted(t *testing.T) {
	m := startMoka(t, 2, 5, 20)
	e := newEnvWith(t, mokaSection(m, 7))
	want := len(m.Expected())

	p := e.start(t)
	testutil.WaitFor(t, "backfill delivered", 120*time.Second, func() bool {
		st, err := e.status(t)
		return err == nil && len(st.Moka.Outlets) == 2 && st.Moka.Outlets[1].LastSyncAt != nil &&
			st.Queue.Pending == 0 && len(latestTx(e.up.Records())) >= want
	})
	checkUpstreamMatchesMoka(t, e, m)
	before := e.up.Records()
	var maxBefore uint64
	for _, r := range before {
		maxBefore = max(maxBefore, r.Seq)
	}

	p.stop(t)
	db := filepath.Join(e.dataDir, "agent.db")
	if _, err := os.Stat(db + ".seq"); err != nil {
		t.Fatalf("no high-water mark file next to the database: %v", err)
	}
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}

	e.start(t)
	var after []store.Record
	testutil.WaitFor(t, "everything sent again from the fresh database", 120*time.Second, func() bool {
		after = e.up.Records()[len(before):]
		st, err := e.status(t)
		return err == nil && len(st.Moka.Outlets) == 2 && st.Moka.Outlets[1].LastSyncAt != nil &&
			st.Queue.Pending == 0 && len(latestTx(after)) >= want
	})
	for _, r := range after {
		if r.Seq <= maxBefore {
			t.Fatalf("record %s has seq %d after the restart, not above %d sent before", r.Key, r.Seq, maxBefore)
		}
	}
	if v := e.up.OrderViolations(); v != 0 {
		t.Fatalf("%d records arrived out of seq order", v)
	}
	checkUpstreamMatchesMoka(t, e, m)
	t.Logf("%d records before (max seq %d), %d after the database was deleted", len(before), maxBefore, len(after))
}
