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
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/internal/i18n"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// fakeAgent serves st as GET /v1/status, as a running agent's local API,
// and returns a config file of language lang ("" for none) pointing at it.
func fakeAgent(t *testing.T, lang string, st localapi.Status) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/status" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	}))
	t.Cleanup(srv.Close)
	return langConfig(t, lang, strings.TrimPrefix(srv.URL, "http://"))
}

// langConfig writes a config file of language lang with the local API at
// listen.
func langConfig(t *testing.T, lang, listen string) string {
	t.Helper()
	body := "version = 1\n[agent]\ndata_dir = \"data\"\n"
	if lang != "" {
		body += "language = \"" + lang + "\"\n"
	}
	body += "[moka]\nenabled = false\n[local_api]\nlisten = \"" + listen + "\"\n"
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// busyStatus is an agent with an outlet, two sinks, thousands of records
// waiting and a problem.
func busyStatus() localapi.Status {
	tenMin := time.Now().Add(-10 * time.Minute)
	twoH := time.Now().Add(-2 * time.Hour)
	return localapi.Status{
		State: localapi.StateOffline, Version: "1.4.0",
		Config: localapi.ConfigStatus{Generation: 3},
		Moka: localapi.MokaStatus{Enabled: true, Configured: true,
			Outlets: []localapi.OutletStatus{{ID: "88", Name: "Kopi Senja Kemang", LastSyncAt: &tenMin}}},
		Queue: localapi.QueueStatus{Pending: 12500, PendingBytes: 3 << 20, DeadLetter: 2, OldestPendingAt: &twoH},
		Sinks: []localapi.SinkStatus{
			{Name: "upstream", Title: "PWBI cloud", Enabled: true, Configured: true, Online: true, Delivered: 1200, LastSuccessAt: &tenMin},
			{Name: "nats", Title: "NATS JetStream", Enabled: true, Configured: true, Health: localapi.SinkHealthOffline,
				Pending: 12500, DeadLetters: 2, LastError: "dial tcp: connection refused", OldestPendingAt: &twoH},
		},
		Problems: []string{"cannot reach NATS: connection refused"},
		ProblemDetails: []localapi.ProblemDetail{{Code: "HealthSinkUnreachable", Severity: "retrying",
			Params: map[string]any{"Sink": "NATS", "Error": "connection refused"}, Text: "cannot reach NATS: connection refused"}},
		Store: localapi.StoreStatus{FileSize: 5 << 20},
	}
}

// TestStatusInIndonesian: `status` in natural Indonesian when
// agent.language = "id", whatever the locale.
func TestStatusInIndonesian(t *testing.T) {
	path := fakeAgent(t, "id", busyStatus())
	_, out, _ := run("status", "--config", path)
	for _, want := range []string{
		"layanan: ",
		"agen: luring (versi 1.4.0, generasi pengaturan 3)",
		"outlet Kopi Senja Kemang (88): terakhir disinkronkan 10 mnt lalu",
		"antrean: 12.500 tertunda, 2 ditolak",
		"masalah: Tidak bisa menghubungi NATS: connection refused",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	for _, english := range []string{"agent:", "last sync", "pending", "dead letters", "problem:", "version", "ago"} {
		if strings.Contains(out, english) {
			t.Errorf("status holds the English %q:\n%s", english, out)
		}
	}
}

// TestStatusInEnglish: the same in English, as before the translation
// (plain digits, the agent's own problem text).
func TestStatusInEnglish(t *testing.T) {
	path := fakeAgent(t, "en", busyStatus())
	_, out, _ := run("status", "--config", path)
	for _, want := range []string{
		"agent: offline (version 1.4.0, config generation 3)",
		"outlet Kopi Senja Kemang (88): last sync 10 min ago",
		"queue: 12500 pending, 2 dead letters",
		"problem: cannot reach NATS: connection refused",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

// TestQueueStatsInIndonesian: the buffer's table in Indonesian.
func TestQueueStatsInIndonesian(t *testing.T) {
	path := fakeAgent(t, "id", busyStatus())
	code, out, errOut := run("queue", "stats", "--config", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"tertunda ", "12.500 data (3,0 MB)", "disimpan sampai semua tujuan yang aktif menerimanya",
		"antrean penuh", "tidak", "ukuran basis data", "TUJUAN", "KEADAAN", "TERKIRIM SEJAK MULAI",
		"upstream", "daring", "nats", "luring", "jam lalu",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("queue stats lacks %q:\n%s", want, out)
		}
	}
	for _, english := range []string{"pending", "records", "dead letters", "buffer full", "database size", "SINK", "online", "offline", "ago"} {
		if strings.Contains(out, english) {
			t.Errorf("queue stats holds the English %q:\n%s", english, out)
		}
	}
}

// TestErrorsInIndonesian: errors a person reads, in Indonesian.
func TestErrorsInIndonesian(t *testing.T) {
	path := fakeAgent(t, "id", busyStatus())
	code, _, errOut := run("queue", "stats", "--sink", "kafka", "--config", path)
	if code == 0 || !strings.Contains(errOut, `pwbi-agent: tujuan kirim "kafka" tidak dikenal (yang ada: upstream, nats)`) {
		t.Errorf("unknown sink: exit %d, stderr %q", code, errOut)
	}

	// No agent at the address: not running, and how to start it.
	addr := testutil.FreeAddr(t)
	down := langConfig(t, "id", addr)
	code, _, errOut = run("queue", "stats", "--config", down)
	if code == 0 || !strings.Contains(errOut, "agen tidak berjalan") || !strings.Contains(errOut, "pwbi-agent start") {
		t.Errorf("agent down: exit %d, stderr %q", code, errOut)
	}

	code, _, errOut = run("nonsense", "--config", down)
	if code != exitUsage || !strings.Contains(errOut, `pwbi-agent: perintah "nonsense --config `) ||
		!strings.Contains(errOut, "Cara pakai: pwbi-agent <perintah>") {
		t.Errorf("unknown command: exit %d, stderr %q", code, errOut)
	}
	// No --config and no file at $PWBI_AGENT_CONFIG: the locale (C).
	t.Setenv("PWBI_AGENT_CONFIG", filepath.Join(t.TempDir(), "none.toml"))
	code, out, _ := run("--help")
	if code != 0 || !strings.Contains(out, "Usage: pwbi-agent") {
		t.Errorf("--help without a config, locale C: %q", out)
	}
}

// TestHelpInIndonesian: --help of a command, its flags and their defaults.
func TestHelpInIndonesian(t *testing.T) {
	t.Setenv("LC_ALL", "id_ID.UTF-8")
	t.Setenv("PWBI_AGENT_CONFIG", filepath.Join(t.TempDir(), "none.toml"))
	code, _, errOut := run("queue", "dead", "--help")
	if code != 0 {
		t.Errorf("exit %d", code)
	}
	for _, want := range []string{"Cara pakai: pwbi-agent queue dead [flag]", "Tampilkan data yang disisihkan", "Flag:",
		"tampilkan paling banyak sejumlah ini (bawaan 100)", "file pengaturan (bawaan "} {
		if !strings.Contains(errOut, want) {
			t.Errorf("--help lacks %q:\n%s", want, errOut)
		}
	}
	_, out, _ := run("help")
	for _, want := range []string{"Cara pakai: pwbi-agent <perintah>", "Perintah:", "periksa file pengaturan", "tampilkan versi"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
}

// TestImportProgressInIndonesian: the progress lines and the summary of an
// import, piped, in Indonesian with Indonesian thousands separators.
func TestImportProgressInIndonesian(t *testing.T) {
	started := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	finished := started.Add(12 * time.Second)
	var running, done localapi.Status
	running.Moka.Import = &localapi.ImportStatus{Running: true, DaysDone: 3, DaysTotal: 30, Records: 1500, StartedAt: &started}
	done.Moka.Import = &localapi.ImportStatus{DaysDone: 30, DaysTotal: 30, Records: 12345, New: 12000, Changed: 300, Outlets: 2,
		StartedAt: &started, FinishedAt: &finished}
	srv := httptest.NewServer(&statusSeq{sts: []localapi.Status{{}, running, done}})
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	e := &env{stdout: &stdout, stderr: &stderr, p: i18n.New(i18n.Indonesian)}
	c := localapi.NewClient(strings.TrimPrefix(srv.URL, "http://"), nil)
	if code := e.followEvery(context.Background(), c, importProgressIn(e.p, time.Now()), time.Millisecond); code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	if want := "impor selesai: 12.345 data diambil dari 2 outlet dalam 12s: 12.000 baru, 300 berubah, 45 tidak berubah\n"; stdout.String() != want {
		t.Errorf("stdout = %q, want %q", stdout.String(), want)
	}
	for _, want := range []string{"menunggu impor dimulai: 0/1", "mengimpor (1.500 data): 3/30"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q: %q", want, stderr.String())
		}
	}
}

// A sink's problem worded as a catalogue message shows in the CLI's
// language (regression: `queue stats` printed the English sentence to an
// Indonesian reader).
func TestSinkProblemInIndonesian(t *testing.T) {
	s := localapi.SinkStatus{Name: "upstream", Title: "PWBI cloud", Configured: true, Health: localapi.SinkHealthError,
		Problem:     "the upstream answered with a web page, not an acknowledgement: is a Wi-Fi login page in the way?",
		ProblemCode: "HealthUpstreamWebPage"}
	var out bytes.Buffer
	e := &env{stdout: &out, stderr: &bytes.Buffer{}, p: i18n.New(i18n.Indonesian)}
	e.writeSink(&out, s)
	if !strings.Contains(out.String(), "login ke Wi-Fi") || strings.Contains(out.String(), "web page") {
		t.Errorf("queue stats in Indonesian:\n%s", out.String())
	}
	out.Reset()
	e.p = i18n.New(i18n.English)
	e.writeSink(&out, s)
	if !strings.Contains(out.String(), s.Problem) {
		t.Errorf("queue stats in English:\n%s", out.String())
	}
	// Without a code (an older agent), the sentence as it came.
	s.ProblemCode = ""
	out.Reset()
	e.p = i18n.New(i18n.Indonesian)
	e.writeSink(&out, s)
	if !strings.Contains(out.String(), s.Problem) {
		t.Errorf("an uncoded problem in Indonesian:\n%s", out.String())
	}
}

// `status` renders problems as the dashboard does: a reason given as a
// code inside the problem (DetailCode) reads in Indonesian too (regression:
// the bare message left it English).
func TestProblemTextsRenderCodedParts(t *testing.T) {
	d := localapi.ProblemDetail{Code: "HealthSinkDaysWaiting", Severity: "retrying",
		Params: map[string]any{"Sink": "Jurnal", "SinkKey": "jurnal", "Count": 2,
			"Detail":     "Jurnal is not answering: 503 Service Unavailable",
			"DetailCode": "HealthJurnalNotAnswering", "DetailParams": map[string]any{"Error": "503 Service Unavailable"}},
		Text: "2 closed days wait to be posted to Jurnal: Jurnal is not answering: 503 Service Unavailable"}
	raw, err := json.Marshal(localapi.Status{Problems: []string{d.Text}, ProblemDetails: []localapi.ProblemDetail{d}})
	if err != nil {
		t.Fatal(err)
	}
	var st localapi.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	got := problemTexts(i18n.New(i18n.Indonesian), st)
	if len(got) != 1 || !strings.Contains(got[0], "Jurnal sedang tidak menjawab (503 Service Unavailable)") || strings.Contains(got[0], "is not") {
		t.Errorf("problems in Indonesian: %q", got)
	}
}
