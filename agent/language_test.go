package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// agent.language (issue 15) shows in /v1/status, decides the language of
// the problems' texts there, and follows a reload of the config file.
func TestStatusFollowsAgentLanguage(t *testing.T) {
	dir := t.TempDir()
	apiAddr := testutil.FreeAddr(t)
	cfgPath := filepath.Join(dir, "config.toml")
	write := func(lang string) {
		t.Helper()
		cfg := fmt.Sprintf("version = 1\n[agent]\nid = \"language-test\"\ndata_dir = \"data\"\nlanguage = %q\n"+
			"[moka]\nenabled = false\n[local_api]\nlisten = %q\n", lang, apiAddr)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("id")

	var logs testutil.SyncBuffer
	ready := make(chan struct{})
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		done <- Run(ctx, Options{ConfigPath: cfgPath, Stderr: &logs, Ready: func(string) { close(ready) }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the agent did not stop")
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run returned before it was ready: %v\n%s", err, logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("agent not ready\n%s", logs.String())
	}
	c := localapi.NewClient(apiAddr, nil)
	status := func() localapi.Status {
		t.Helper()
		st, err := c.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	// Nothing delivers anywhere: the note about the PWBI cloud not being
	// set up is a problem, in Indonesian.
	st := status()
	if st.Language != (localapi.LanguageStatus{Setting: "id", Resolved: "id"}) {
		t.Errorf("language = %+v, want id/id", st.Language)
	}
	if len(st.Problems) == 0 || len(st.ProblemDetails) != len(st.Problems) {
		t.Fatalf("problems %q, details %+v", st.Problems, st.ProblemDetails)
	}
	d := st.ProblemDetails[0]
	if d.Code != "HealthSinkNote" || d.Severity != "note" || d.Text != st.Problems[0] ||
		st.Problems[0] != "Alamat cloud PWBI (upstream.url) belum diisi: penjualan hanya disimpan di antrean PC ini" {
		t.Errorf("problem %q, detail %+v: want the Indonesian note with its code", st.Problems[0], d)
	}

	write("en")
	if _, err := c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the status in English after the reload", 20*time.Second, func() bool {
		st = status()
		return st.Language.Setting == "en"
	})
	if st.Language.Resolved != "en" || len(st.Problems) == 0 ||
		st.Problems[0] != "upstream.url is not set: records are kept in the local buffer only" {
		t.Errorf("after the reload: language %+v, problems %q", st.Language, st.Problems)
	}
}
