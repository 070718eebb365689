package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

// A store that fails while the agent runs (here: a compaction that cannot
// reopen the file) makes Run stop and return an error, so that the process
// exits non-zero and the service manager restarts it, instead of running on
// with no database behind it.
func TestRunExitsWhenStoreFails(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("replaces the open database file by a directory, which Windows does not allow")
	}
	dir := t.TempDir()
	apiAddr := testutil.FreeAddr(t)
	cfgPath := filepath.Join(dir, "config.toml")
	cfg := fmt.Sprintf("version = 1\n[agent]\nid = \"storefail-test\"\ndata_dir = \"data\"\nlog_level = \"info\"\n"+
		"[moka]\nenabled = false\n[local_api]\nlisten = %q\n", apiAddr)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	stores := make(chan *store.Store, 1)
	realOpen := openStore
	openStore = func(o store.Options) (*store.Store, error) {
		s, err := realOpen(o)
		if err == nil {
			stores <- s
		}
		return s, err
	}
	t.Cleanup(func() { openStore = realOpen })

	var logs testutil.SyncBuffer
	ready := make(chan struct{})
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		done <- Run(ctx, Options{ConfigPath: cfgPath, Stderr: &logs, Ready: func(string) { close(ready) }})
	}()
	t.Cleanup(func() { // on an early failure: stop the agent before openStore is restored
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run returned before it was ready: %v\n%s", err, logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("agent not ready\n%s", logs.String())
	}
	st := <-stores

	// The database file is replaced by a directory under the running agent:
	// the compaction writes its copy, cannot rename it into place, and
	// cannot reopen anything.
	if err := os.Remove(st.Path()); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(st.Path(), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Compact(); !errors.Is(err, store.ErrFailed) {
		t.Fatalf("Compact = %v, want store.ErrFailed", err)
	}

	select {
	case err := <-done:
		if !errors.Is(err, store.ErrFailed) {
			t.Fatalf("Run = %v, want an error wrapping store.ErrFailed", err)
		}
		done <- err // for the cleanup
	case <-time.After(60 * time.Second):
		t.Fatalf("Run did not return after the store failed\n%s", logs.String())
	}
	if out := logs.String(); !strings.Contains(out, "Store failed") {
		t.Errorf("store failure not logged:\n%s", out)
	}
}
