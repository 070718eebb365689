package main

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// Issue 15, "tried as a new user would": the rough edges of the command
// line, through the real binary.

// TestImportRoughEdges: --since takes a number of days back (the README's
// examples stay valid whatever the date), a date too far back is refused
// with the earliest allowed day, an unknown --outlet is refused with the
// list of the outlets and no finished import, and the progress, piped as
// here, is plain lines ending with a summary of what the import did.
func TestImportRoughEdges(t *testing.T) {
	m := startMoka(t, 2, 20, 10)
	e := newEnvWith(t, mokaSection(m, 3))
	e.start(t)
	testutil.WaitFor(t, "first sync", 120*time.Second, func() bool {
		st, err := e.status(t)
		return err == nil && len(st.Moka.Outlets) == 2 && st.Moka.Outlets[1].LastSyncAt != nil
	})

	earliest := time.Now().In(m.Location()).AddDate(0, 0, -180).Format(time.DateOnly)
	out, err := runCLI(t, "import", "--since", "2020-01-01", "--config", e.cfgPath)
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), "the earliest day you can import is "+earliest) {
		t.Errorf("import --since 2020-01-01: exit %d\n%s", code, out)
	}

	out, err = runCLI(t, "import", "--since", "30d", "--outlet", "nope", "--config", e.cfgPath)
	ids := m.OutletIDs()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), `unknown outlet "nope"`) ||
		!strings.Contains(string(out), ids[0]) || !strings.Contains(string(out), ids[1]) {
		t.Errorf("import --outlet nope: exit %d\n%s", code, out)
	}
	if st, err := e.status(t); err != nil || st.Moka.Import != nil {
		t.Errorf("an import for an unknown outlet shows: %+v, %v", st.Moka.Import, err)
	}

	out, err = runCLI(t, "import", "--since", "15d", "--config", e.cfgPath)
	if err != nil {
		t.Fatalf("import --since 15d: %v\n%s", err, out)
	}
	text := string(out)
	if strings.Contains(text, "\r") {
		t.Errorf("piped progress has \\r frames:\n%q", text)
	}
	if !strings.Contains(text, "import done: ") || !strings.Contains(text, "from 2 outlet(s) in ") ||
		!strings.Contains(text, " new, ") || !strings.Contains(text, " changed, ") {
		t.Errorf("import output has no summary:\n%s", text)
	}
	st, err := e.status(t)
	if err != nil {
		t.Fatal(err)
	}
	imp := st.Moka.Import
	want := time.Now().In(m.Location()).AddDate(0, 0, -15).Format(time.DateOnly)
	if imp == nil || imp.Since != want || imp.Running || imp.Error != "" || imp.Outlets != 2 || imp.FinishedAt == nil ||
		imp.Records == 0 || imp.New == 0 {
		t.Fatalf("import status: %+v", imp)
	}
	if line := "import done: " + strconv.FormatInt(imp.Records, 10) + " record(s) fetched from 2 outlet(s)"; !strings.Contains(text, line) {
		t.Errorf("summary does not match the status (%+v):\n%s", imp, text)
	}
}

// TestBrokenConfigStillReachesTheAgent: with an error in the config file
// the agent keeps running on its previous settings, and status, sync and
// queue stats still reach it (they need only the local API address),
// saying that they fell back and that the agent runs on its previous
// settings. With no agent at all, the error says how to start one.
func TestBrokenConfigStillReachesTheAgent(t *testing.T) {
	e := newEnv(t)
	e.start(t)
	testutil.WaitFor(t, "agent up", 60*time.Second, func() bool {
		_, err := e.status(t)
		return err == nil
	})
	good, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(good), "batch_size = 200", "batch_size = \"lots\"", 1)
	if err := os.WriteFile(e.cfgPath, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	// The agent notices (the reload asked here, or the watcher first).
	if res, err := localapi.NewClient(e.apiAddr, nil).Reload(t.Context()); !errors.Is(err, localapi.ErrConfigRejected) ||
		!strings.Contains(res.Error, "batch_size") {
		t.Fatalf("reload of the broken file: %+v, %v", res, err)
	}
	testutil.WaitFor(t, "config error reported", 60*time.Second, func() bool {
		st, err := e.status(t)
		return err == nil && st.Config.Error != ""
	})

	for _, args := range [][]string{{"status"}, {"sync"}, {"queue", "stats"}} {
		out, err := runCLI(t, append(args, "--config", e.cfgPath)...)
		text := string(out)
		if err != nil || !strings.Contains(text, "trying the agent at "+e.apiAddr+", the local_api.listen the file gives") {
			t.Errorf("%v with a broken config: %v\n%s", args, err, text)
		}
		if args[0] == "status" && !strings.Contains(text, "the agent keeps running on its previous settings") {
			t.Errorf("status does not say the agent runs on its previous settings:\n%s", text)
		}
	}

	// No agent there: say how to start it.
	other := newEnv(t)
	out, err := runCLI(t, "status", "--config", other.cfgPath)
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "agent not running at "+other.apiAddr) ||
		!strings.Contains(string(out), "pwbi-agent start") {
		t.Errorf("status without an agent: exit %d\n%s", code, out)
	}
	// A missing config file gives one "load config" prefix, not two.
	// (Exactly one: a check that printed nothing or succeeded would pass
	// "not two" as well.)
	out, err = runCLI(t, "config", "check", "--config", e.dir+"/missing.toml")
	if code := exitCode(err); code != 1 || strings.Count(string(out), "load config") != 1 {
		t.Errorf("config check of a missing file: exit %d\n%s", code, out)
	}
}
