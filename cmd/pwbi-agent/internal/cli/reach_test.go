package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/localapi"
)

// --since takes a date or a number of days back; the day must lie within
// the last 180 days, and the error for an older one names the earliest
// allowed day (issue 15: the README's own example used to fail with
// "reaches back more than 180 days" and no date).
func TestParseSince(t *testing.T) {
	jkt, err := time.LoadLocation("Asia/Jakarta")
	if err != nil {
		t.Fatal(err)
	}
	today := time.Date(2026, 12, 7, 23, 30, 0, 0, jkt)
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "30d", want: "2026-11-07"},
		{in: "0d", want: "2026-12-07"},
		{in: "180d", want: "2026-06-10"},
		{in: "2026-06-10", want: "2026-06-10"},
		{in: "2026-12-07", want: "2026-12-07"},
		{in: "181d", err: "the earliest day you can import is 2026-06-10 (--since 180d)"},
		{in: "2026-01-01", err: "--since 2026-01-01 reaches back more than 180 days: the earliest day you can import is 2026-06-10"},
		{in: "2026-12-08", err: "is in the future (today is 2026-12-07)"},
		{in: "yesterday", err: "give a date (YYYY-MM-DD, e.g. 2026-11-07) or a number of days back (e.g. 30d)"},
		{in: "", err: "--since is required"},
		{in: "-3d", err: "give a date"},
	} {
		day, err := parseSince(tc.in, today, 180)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("parseSince(%q) = %v, %v; want an error with %q", tc.in, day, err, tc.err)
		case tc.err == "" && (err != nil || day.Format(time.DateOnly) != tc.want || day.Location() != jkt):
			t.Errorf("parseSince(%q) = %v, %v; want %s", tc.in, day, err, tc.want)
		}
	}
}

// With a broken config file the commands that talk to the running agent
// still find it: at the local_api.listen the file gives when it can be
// read, else at the default address, and they say so.
func TestReachWithBrokenConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	def := config.Default().LocalAPI.Listen
	for _, tc := range []struct {
		name, data, want, how string
	}{
		// Valid TOML, invalid config (an unknown key and a bad value).
		{"invalid.toml", "version = 1\n[local_api]\nlisten = \"127.0.0.1:4321\"\n[moka]\ntimezone = \"Asia/Makassar\"\npoll_interval = \"often\"\nnope = 1\n",
			"127.0.0.1:4321", msgAddrFromFile},
		// Not even TOML.
		{"garbled.toml", "version = 1\n[local_api\nlisten = 3\n", def, msgAddrDefault},
		// A listen address that is not loopback is not believed.
		{"lan.toml", "version = 1\n[local_api]\nlisten = \"192.168.1.5:8687\"\nbogus = true\n", def, msgAddrDefault},
	} {
		var stderr bytes.Buffer
		e := &env{stdout: &bytes.Buffer{}, stderr: &stderr}
		r := e.reach(write(tc.name, tc.data))
		if r.listen != tc.want || !strings.Contains(stderr.String(), "trying the agent at "+tc.want+", "+e.t(tc.how)) ||
			!strings.Contains(stderr.String(), "config check") {
			t.Errorf("%s: listen %s, stderr %q; want %s (%s)", tc.name, r.listen, stderr.String(), tc.want, tc.how)
		}
		if tc.name == "invalid.toml" && r.loc.String() != "Asia/Makassar" {
			t.Errorf("%s: zone %s", tc.name, r.loc)
		}
	}
	// A valid file: no note.
	var stderr bytes.Buffer
	e := &env{stdout: &bytes.Buffer{}, stderr: &stderr}
	if r := e.reach(write("good.toml", "version = 1\n[local_api]\nlisten = \"127.0.0.1:4322\"\n")); r.listen != "127.0.0.1:4322" || stderr.Len() != 0 {
		t.Errorf("good config: %s, %q", r.listen, stderr.String())
	}
}

// statusSeq serves a sequence of statuses, the last one for ever.
type statusSeq struct {
	mu  sync.Mutex
	sts []localapi.Status
}

func (s *statusSeq) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	st := s.sts[0]
	if len(s.sts) > 1 {
		s.sts = s.sts[1:]
	}
	s.mu.Unlock()
	_ = json.NewEncoder(w).Encode(st)
}

// Piped (not a terminal), the progress is plain lines, one per change, and
// the end is a summary of what the import did, not a bare "done".
func TestImportProgressPipedEndsWithSummary(t *testing.T) {
	started := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	finished := started.Add(12 * time.Second)
	imp := func(running bool, days, records, nw, changed int64, outlets int) localapi.Status {
		var st localapi.Status
		st.Moka.Import = &localapi.ImportStatus{Running: running, DaysDone: int(days), DaysTotal: 30, Records: records,
			New: nw, Changed: changed, Outlets: outlets, StartedAt: &started}
		if !running {
			st.Moka.Import.FinishedAt = &finished
		}
		return st
	}
	srv := httptest.NewServer(&statusSeq{sts: []localapi.Status{
		{},
		imp(true, 3, 100, 100, 0, 0),
		imp(true, 3, 100, 100, 0, 0),
		imp(true, 29, 1200, 1150, 20, 1), // days stop short of the total, as they do
		imp(false, 29, 1234, 1180, 30, 2),
	}})
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	e := &env{stdout: &stdout, stderr: &stderr}
	c := localapi.NewClient(strings.TrimPrefix(srv.URL, "http://"), nil)
	code := e.followEvery(context.Background(), c, importProgress(time.Now()), time.Millisecond)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	if want := "import done: 1234 record(s) fetched from 2 outlet(s) in 12s: 1180 new, 30 changed, 24 unchanged\n"; stdout.String() != want {
		t.Errorf("stdout = %q, want %q", stdout.String(), want)
	}
	wantLines := []string{
		"waiting for the import to start: 0/1",
		"importing (100 records): 3/30",
		"importing (1200 records): 29/30",
		"importing (1234 records): 30/30",
	}
	if got := strings.Split(strings.TrimSpace(stderr.String()), "\n"); strings.Join(got, "|") != strings.Join(wantLines, "|") {
		t.Errorf("stderr lines = %q\nwant %q", got, wantLines)
	}
	if strings.Contains(stderr.String(), "\r") {
		t.Error("piped progress has \\r frames")
	}
}
