package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/moka/apikey/apikeyfake"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// reloadEnv runs the agent against a live fake Moka (it keeps selling) so
// that reloads happen while transactions flow.
type reloadEnv struct {
	*testEnv
	moka *apikeyfake.Server
	base string // the config text, without the marker line
}

func newReloadEnv(t *testing.T) *reloadEnv {
	m := apikeyfake.New(apikeyfake.Options{Seed: 3, Outlets: 2, Days: 3, TxPerDay: 200, Live: true})
	m.Start()
	t.Cleanup(m.Close)
	sec := strings.Replace(mokaSection(m, 3), `poll_interval = "1h"`, `poll_interval = "1s"`, 1)
	e := newEnvWith(t, sec)
	base, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	return &reloadEnv{testEnv: e, moka: m, base: string(base)}
}

// content is the config with a marker comment and an optional log level,
// so every version differs.
func (r *reloadEnv) content(marker string, level string) []byte {
	s := strings.Replace(r.base, `log_level = "debug"`, fmt.Sprintf("log_level = %q", level), 1)
	return []byte(s + "# " + marker + "\n")
}

func (r *reloadEnv) generation(t *testing.T) uint64 {
	t.Helper()
	st, err := r.status(t)
	if err != nil {
		t.Fatal(err)
	}
	return st.Config.Generation
}

func (r *reloadEnv) waitGeneration(t *testing.T, want uint64) localapi.Status {
	t.Helper()
	var st localapi.Status
	testutil.WaitFor(t, fmt.Sprintf("config generation %d", want), 30*time.Second, func() bool {
		var err error
		st, err = r.status(t)
		return err == nil && st.Config.Generation >= want
	})
	if st.Config.Generation != want {
		t.Fatalf("generation %d, want %d", st.Config.Generation, want)
	}
	return st
}

// settle waits long enough for any pending debounced reload to happen, so
// a test can assert that no further reload follows.
func settle() { time.Sleep(2 * time.Second) }

func TestHotReload(t *testing.T) {
	r := newReloadEnv(t)
	r.start(t)
	testutil.WaitFor(t, "agent up and syncing", 60*time.Second, func() bool {
		st, err := r.status(t)
		return err == nil && len(st.Moka.Outlets) == 2 && st.Moka.Outlets[1].LastSyncAt != nil
	})
	gen := r.generation(t)
	if gen != 1 {
		t.Fatalf("initial generation %d", gen)
	}
	dir := filepath.Dir(r.cfgPath)

	t.Run("editor atomic rename", func(t *testing.T) {
		tmp := filepath.Join(dir, ".config.toml.swp")
		if err := os.WriteFile(tmp, r.content("rename", "info"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, r.cfgPath); err != nil {
			t.Fatal(err)
		}
		gen++
		r.waitGeneration(t, gen)
	})

	t.Run("notepad in-place double write", func(t *testing.T) {
		f, err := os.OpenFile(r.cfgPath, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(r.content("notepad", "debug")[:40]) // first write: half a file
		f.Sync()
		f.Write(r.content("notepad", "debug")[40:])
		f.Close()
		gen++
		r.waitGeneration(t, gen)
		settle()
		if g := r.generation(t); g != gen {
			t.Fatalf("a double write gave %d reloads", g-gen+1)
		}
	})

	t.Run("delete then recreate", func(t *testing.T) {
		if err := os.Remove(r.cfgPath); err != nil {
			t.Fatal(err)
		}
		var st localapi.Status
		testutil.WaitFor(t, "missing file shown", 30*time.Second, func() bool {
			st, _ = r.status(t)
			return strings.Contains(st.Config.Error, "missing")
		})
		if st.Config.Generation != gen {
			t.Fatalf("a missing file changed the running config: %+v", st.Config)
		}
		// Recreated with the running content: nothing to apply, error gone.
		if err := os.WriteFile(r.cfgPath, r.content("notepad", "debug"), 0o600); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, "missing-file error cleared", 30*time.Second, func() bool {
			st, _ = r.status(t)
			return st.Config.Error == ""
		})
		if st.Config.Generation != gen {
			t.Fatalf("same content re-applied: generation %d, want %d", st.Config.Generation, gen)
		}
		if err := os.WriteFile(r.cfgPath, r.content("recreated", "info"), 0o600); err != nil {
			t.Fatal(err)
		}
		gen++
		r.waitGeneration(t, gen)
	})

	t.Run("50 rapid saves", func(t *testing.T) {
		for i := 0; i < 50; i++ {
			if err := os.WriteFile(r.cfgPath, r.content(fmt.Sprintf("rapid %d", i), "info"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		testutil.WaitFor(t, "a reload after the burst", 30*time.Second, func() bool { return r.generation(t) > gen })
		settle()
		n := r.generation(t) - gen
		if n > 3 {
			t.Fatalf("50 rapid saves gave %d reloads", n)
		}
		gen += n
	})

	t.Run("invalid then fixed", func(t *testing.T) {
		bad := append(r.content("bad", "info"), []byte("[moka]\npoll_interval = \"soon\"\n")...)
		if err := os.WriteFile(r.cfgPath, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		var st localapi.Status
		testutil.WaitFor(t, "config error shown", 30*time.Second, func() bool {
			st, _ = r.status(t)
			return st.Config.Error != ""
		})
		if st.Config.Generation != gen || st.State != localapi.StateError || !strings.Contains(st.Config.Error, "config.toml:") {
			t.Fatalf("after an invalid save: %+v state %s", st.Config, st.State)
		}
		// The old config keeps running: the agent still syncs. A cashier
		// edits the latest bill; the change must still reach the upstream.
		truth := r.moka.Truth()
		if err := r.moka.Edit(truth[len(truth)-1].ID); err != nil {
			t.Fatal(err)
		}
		before := len(r.up.Records())
		testutil.WaitFor(t, "records still flowing", 30*time.Second, func() bool { return len(r.up.Records()) > before })

		// POST /v1/reload reports the same error.
		res, err := localapi.NewClient(r.apiAddr, nil).Reload(t.Context())
		if err == nil || res.Error == "" {
			t.Fatalf("manual reload of a bad file: %+v %v", res, err)
		}

		if err := os.WriteFile(r.cfgPath, r.content("fixed", "info"), 0o600); err != nil {
			t.Fatal(err)
		}
		gen++
		st = r.waitGeneration(t, gen)
		if st.Config.Error != "" {
			t.Fatalf("error not cleared: %q", st.Config.Error)
		}
	})

	t.Run("local API moves, data_dir needs a restart", func(t *testing.T) {
		newAddr := testutil.FreeAddr(t)
		text := strings.Replace(string(r.content("moved", "info")), r.apiAddr, newAddr, 1)
		text = strings.Replace(text, `data_dir = "data"`, `data_dir = "data2"`, 1)
		if err := os.WriteFile(r.cfgPath, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		gen++
		old := r.apiAddr
		r.apiAddr = newAddr
		st := r.waitGeneration(t, gen)
		if len(st.Config.RestartRequired) != 1 || st.Config.RestartRequired[0] != "agent.data_dir" {
			t.Fatalf("restart_required %v", st.Config.RestartRequired)
		}
		// The new listener serves before the old one is stopped (no moment
		// without an API), and the generation moves before either: the
		// old address may still answer just after the new one did.
		testutil.WaitFor(t, "the old local API address closed", 30*time.Second, func() bool {
			_, err := localapi.NewClient(old, nil).Status(t.Context())
			return err != nil
		})
		r.base = strings.Replace(strings.Replace(r.base, old, newAddr, 1), `data_dir = "data"`, `data_dir = "data2"`, 1)
	})

	t.Run("metrics", func(t *testing.T) {
		// The reload sets the metrics before it serves a moved local API
		// (agent/reload.go), so the new address that answered above has
		// them already; waiting keeps the check valid should a later
		// subtest reload without moving the API.
		wants := []string{"pwbi_agent_config_last_reload_successful 1", fmt.Sprintf("pwbi_agent_config_generation %d", gen)}
		testutil.WaitFor(t, "the metrics of the last reload", 30*time.Second, func() bool {
			body := mustGet(t, "http://"+r.apiAddr+"/metrics")
			for _, want := range wants {
				if !strings.Contains(body, want) {
					return false
				}
			}
			return true
		})
	})

	// Nothing was lost through all of it: every sale Moka has (as of a
	// final sync) arrives upstream. The fake stops selling first: a sale
	// made after the sync fetched would be expected of it (a CI failure:
	// "transaction … never reached the upstream").
	r.moka.Freeze()
	if _, err := runCLI(t, "sync", "--wait", "--config", r.cfgPath); err != nil {
		t.Fatalf("sync --wait: %v", err)
	}
	checkUpstreamMatchesMoka(t, r.testEnv, r.moka)
}

func TestLocalAPISecurityLive(t *testing.T) {
	e := newEnv(t)
	e.start(t)
	testutil.WaitFor(t, "status", 60*time.Second, func() bool { _, err := e.status(t); return err == nil })
	do := func(method, path, host, origin string) int {
		req, _ := http.NewRequest(method, "http://"+e.apiAddr+path, nil)
		req.Host = host
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := do("GET", "/v1/status", "attacker.example", ""); c != 403 {
		t.Errorf("wrong Host: %d", c)
	}
	if c := do("POST", "/v1/sync", e.apiAddr, "https://attacker.example"); c != 403 {
		t.Errorf("cross-site POST: %d", c)
	}
	if c := do("POST", "/v1/pause", e.apiAddr, "https://attacker.example"); c != 403 {
		t.Errorf("cross-site pause: %d", c)
	}
	if c := do("POST", "/v1/sync", e.apiAddr, ""); c != 202 {
		t.Errorf("CLI-style POST: %d", c)
	}
}
