package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink/jurnalfake"
	"github.com/pwbi/edge-agent/agent/deliver/natssink"
	"github.com/pwbi/edge-agent/internal/i18n"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// The doctor's checks of the NATS and Jurnal sinks, against a real NATS
// server in the test binary and the fake Jurnal.

const doctorAgent = "cafe-01"

// startNATS runs a JetStream server on 127.0.0.1 until the test ends and
// returns its URL; opt adjusts its options (users).
func startNATS(t *testing.T, opt func(*server.Options)) string {
	t.Helper()
	o := &server.Options{Host: "127.0.0.1", Port: testutil.FreePorts(t, 1)[0], ServerName: "doctor-nats",
		JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 256 << 20}
	if opt != nil {
		opt(o)
	}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(30 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	testutil.WaitFor(t, "JetStream ready", 30*time.Second, s.JetStreamEnabled)
	return fmt.Sprintf("nats://127.0.0.1:%d", o.Port)
}

// createStream creates the stream PWBI with subjects, as the NATS operator
// would.
func createStream(t *testing.T, url string, subjects []string, opts ...nats.Option) {
	t.Helper()
	js, ctx := jetStreamOf(t, url, opts...)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PWBI", Subjects: subjects, Storage: jetstream.FileStorage,
		Replicas: 1, AllowAtomicPublish: true}); err != nil {
		t.Fatal(err)
	}
}

// jetStreamOf is a JetStream client of the server at url, as the NATS
// operator's, closed when the test ends, and a context for its calls.
func jetStreamOf(t *testing.T, url string, opts ...nats.Option) (jetstream.JetStream, context.Context) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return js, ctx
}

// doctorConfig writes a config file of language lang ("" for none) with
// the sections given and returns it loaded.
func doctorConfig(t *testing.T, lang, sections string) *config.Config {
	t.Helper()
	path := doctorConfigFile(t, lang, sections)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, sections)
	}
	return cfg
}

func doctorConfigFile(t *testing.T, lang, sections string) string {
	t.Helper()
	body := "version = 1\n[agent]\nid = \"" + doctorAgent + "\"\ndata_dir = \"data\"\n"
	if lang != "" {
		body += "language = \"" + lang + "\"\n"
	}
	body += "[moka]\nenabled = false\n[local_api]\nlisten = \"" + testutil.FreeAddr(t) + "\"\n" + sections
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func natsSection(url, extra string) string {
	return "[nats]\nenabled = true\nurls = [\"" + url + "\"]\ntimeout = \"5s\"\n" + extra
}

func jurnalSection(f *jurnalfake.Server, secret string) string {
	return "[jurnal]\nenabled = true\nbase_url = \"" + f.URL() + "\"\nclient_id = \"" + f.ClientID() +
		"\"\nclient_secret = \"" + secret + "\"\nrequests_per_minute = 600\ntimeout = \"10s\"\n"
}

// runCheck runs one doctor check in lang with the doctor's 20 s.
func runCheck(t *testing.T, lang string, run func(*env, context.Context, *config.Config) (bool, string), cfg *config.Config) (bool, string) {
	t.Helper()
	e := &env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, p: i18n.New(lang)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return run(e, ctx, cfg)
}

// wantCheck fails unless the check's result is ok with a detail holding
// every one of wants.
func wantCheck(t *testing.T, what string, ok bool, detail string, wantOK bool, wants ...string) {
	t.Helper()
	if ok != wantOK {
		t.Errorf("%s: ok = %v, want %v: %s", what, ok, wantOK, detail)
	}
	for _, w := range wants {
		if !strings.Contains(detail, w) {
			t.Errorf("%s: detail lacks %q: %s", what, w, detail)
		}
	}
}

func TestDoctorNATSStreamOK(t *testing.T) {
	url := startNATS(t, nil)
	createStream(t, url, []string{"pwbi.>"})
	ok, detail := runCheck(t, i18n.English, (*env).checkNATS, doctorConfig(t, "", natsSection(url, "")))
	wantCheck(t, "stream as docs/nats.md", ok, detail, true,
		"connected to server doctor-nats (NATS ", "; stream PWBI with 1 replica;", "nothing from this agent there yet")
}

func TestDoctorNATSStreamMissingOrNotCapturing(t *testing.T) {
	url := startNATS(t, nil)
	cfg := doctorConfig(t, "", natsSection(url, ""))
	ok, detail := runCheck(t, i18n.English, (*env).checkNATS, cfg)
	wantCheck(t, "no stream", ok, detail, false, "the NATS server has no stream PWBI", "docs/nats.md")

	createStream(t, url, []string{"chain.pwbi.>"})
	ok, detail = runCheck(t, i18n.English, (*env).checkNATS, cfg)
	wantCheck(t, "stream not capturing", ok, detail, false,
		"stream PWBI does not capture the agent's subject pwbi.cafe-01.transaction.*.*",
		"the NATS operator must add pwbi.> to its subjects", "docs/nats.md")

	ok, detail = runCheck(t, i18n.Indonesian, (*env).checkNATS, cfg)
	wantCheck(t, "stream not capturing, in Indonesian", ok, detail, false,
		"stream PWBI tidak menampung subjek agen pwbi.cafe-01.transaction.*.*", "operator NATS harus menambahkan pwbi.>")
}

func TestDoctorNATSUnreachable(t *testing.T) {
	addr := testutil.FreeAddr(t) // nothing listens there
	ok, detail := runCheck(t, i18n.English, (*env).checkNATS, doctorConfig(t, "", natsSection("nats://"+addr, "")))
	wantCheck(t, "closed port", ok, detail, false, "cannot reach "+addr+": ")
	if strings.Contains(detail, "nats://") {
		t.Errorf("the detail holds the URL: %s", detail)
	}
}

func TestDoctorNATSCredentialsRefused(t *testing.T) {
	const password = "nats-PW-d0c7"
	url := startNATS(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "agent", Password: password}}
	})
	createStream(t, url, []string{"pwbi.>"}, nats.UserInfo("agent", password))
	wrong := "user = \"agent\"\npassword = \"not-" + password + "\"\n"
	for _, tc := range []struct{ lang, want string }{
		{i18n.English, "the NATS server refused the agent's credentials"},
		{i18n.Indonesian, "Server NATS menolak kredensial agen"},
	} {
		ok, detail := runCheck(t, tc.lang, (*env).checkNATS, doctorConfig(t, "", natsSection(url, wrong)))
		wantCheck(t, "wrong password ("+tc.lang+")", ok, detail, false, tc.want, "nats.password")
		if strings.Contains(detail, password) {
			t.Errorf("the password leaked: %s", detail)
		}
	}
	ok, detail := runCheck(t, i18n.English, (*env).checkNATS,
		doctorConfig(t, "", natsSection(url, "user = \"agent\"\npassword = \""+password+"\"\n")))
	wantCheck(t, "right password", ok, detail, true, "stream PWBI with 1 replica")
}

func TestDoctorJurnal(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lang   string
		setup  func(*jurnalfake.Server)
		secret string // "" is the right one
		ok     bool
		wants  []string
	}{
		{name: "accepted", ok: true, wants: []string{"answered HTTP 200 in ", "; clock skew "}},
		{name: "wrong secret", secret: "wrong-JURNAL-5ecret",
			wants: []string{"Jurnal refuses the credentials (401): check jurnal.client_id and jurnal.client_secret"}},
		{name: "clock", setup: func(f *jurnalfake.Server) { f.SetSkew(20 * time.Minute) },
			wants: []string{"the PC clock is wrong by 20 minutes (behind Jurnal's): set the date and time of this PC"}},
		{name: "clock in Indonesian", lang: i18n.Indonesian, setup: func(f *jurnalfake.Server) { f.SetSkew(20 * time.Minute) },
			wants: []string{"Jam PC ini terlambat 20 menit dibanding jam Jurnal: atur tanggal dan jam PC ini"}},
		{name: "quota", setup: func(f *jurnalfake.Server) { f.SetMonthlyQuota(100, 0) },
			wants: []string{"Jurnal's API limit is reached (", "): posting waits until "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := jurnalfake.NewServer(t, jurnalfake.Options{})
			if tc.setup != nil {
				tc.setup(f)
			}
			secret := f.ClientSecret()
			if tc.secret != "" {
				secret = tc.secret
			}
			lang := tc.lang
			if lang == "" {
				lang = i18n.English
			}
			ok, detail := runCheck(t, lang, (*env).checkJurnal, doctorConfig(t, "", jurnalSection(f, secret)))
			wantCheck(t, tc.name, ok, detail, tc.ok, tc.wants...)
			if strings.Contains(detail, secret) || strings.Contains(detail, f.ClientSecret()) {
				t.Errorf("the secret leaked: %s", detail)
			}
			for _, r := range f.Requests() {
				if r.Method != "GET" {
					t.Errorf("the check sent %s %s", r.Method, r.Path)
				}
			}
		})
	}
}

func TestDoctorJurnalUnreachable(t *testing.T) {
	f := jurnalfake.NewServer(t, jurnalfake.Options{})
	addr := testutil.FreeAddr(t)
	section := strings.Replace(jurnalSection(f, f.ClientSecret()), f.URL(), "http://"+addr, 1)
	ok, detail := runCheck(t, i18n.English, (*env).checkJurnal, doctorConfig(t, "", section))
	wantCheck(t, "closed port", ok, detail, false, "cannot reach "+addr+": ", "refused")
	if strings.Contains(detail, "http://") || strings.Contains(detail, "/public/") {
		t.Errorf("the detail holds the URL: %s", detail)
	}
}

// Sinks switched off pass, saying so; switched on without what they need
// fail, saying what to set.
func TestDoctorSinksNotEnabledOrNotConfigured(t *testing.T) {
	off := doctorConfig(t, "", "")
	ok, detail := runCheck(t, i18n.English, (*env).checkNATS, off)
	wantCheck(t, "nats off", ok, detail, true, "not enabled (nats.enabled = false)")
	ok, detail = runCheck(t, i18n.English, (*env).checkJurnal, off)
	wantCheck(t, "jurnal off", ok, detail, true, "not enabled (jurnal.enabled = false)")
	ok, detail = runCheck(t, i18n.Indonesian, (*env).checkJurnal, off)
	wantCheck(t, "jurnal off, in Indonesian", ok, detail, true, "tidak diaktifkan (jurnal.enabled = false)")

	// A file cannot enable NATS without servers (config check refuses
	// it); a config built in code can.
	on := doctorConfig(t, "", "[jurnal]\nenabled = true\n")
	on.NATS.Enabled = true
	ok, detail = runCheck(t, i18n.English, (*env).checkNATS, on)
	wantCheck(t, "nats without urls", ok, detail, false, "nats.urls is empty")
	ok, detail = runCheck(t, i18n.English, (*env).checkJurnal, on)
	wantCheck(t, "jurnal without credentials", ok, detail, false, "jurnal.client_id and jurnal.client_secret")
	ok, detail = runCheck(t, i18n.Indonesian, (*env).checkJurnal, on)
	wantCheck(t, "jurnal without credentials, in Indonesian", ok, detail, false, "belum diisi: salin dari Mekari Developer")
}

// The whole `doctor`, with both sinks refusing their credentials: each is
// a failed line in the CLI's language, and no secret is printed.
func TestDoctorSinkLinesWithoutSecrets(t *testing.T) {
	const password = "nats-PW-1f3a"
	url := startNATS(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "agent", Password: password}}
	})
	f := jurnalfake.NewServer(t, jurnalfake.Options{})
	const wrongSecret = "jurnal-WRONG-77c1"
	sections := natsSection(url, "user = \"agent\"\npassword = \"not-"+password+"\"\n") + jurnalSection(f, wrongSecret)
	for _, tc := range []struct {
		lang  string
		wants []string
	}{
		{"en", []string{"[FAIL] NATS stream ", "[FAIL] Jurnal reachable ", "refused the agent's credentials", "refuses the credentials (401)"}},
		{"id", []string{"[GAGAL] stream NATS ", "[GAGAL] Jurnal terjangkau ", "menolak kredensial agen"}},
	} {
		path := doctorConfigFile(t, tc.lang, sections)
		code, out, errOut := run("doctor", "--config", path)
		t.Logf("doctor (%s):\n%s", tc.lang, out)
		if code != exitError {
			t.Errorf("%s: exit %d, want %d", tc.lang, code, exitError)
		}
		for _, w := range tc.wants {
			if !strings.Contains(out, w) {
				t.Errorf("%s: doctor output lacks %q:\n%s", tc.lang, w, out)
			}
		}
		for _, secret := range []string{password, wrongSecret, f.ClientSecret()} {
			if strings.Contains(out+errOut, secret) {
				t.Errorf("%s: doctor prints the secret %q:\n%s%s", tc.lang, secret, out, errOut)
			}
		}
	}
}

// What the NATS line tells besides the server: a stream the agent would
// create (create_stream; the check does not create it), a stream without
// atomic batches, and the agent's last record there.
func TestDoctorNATSCreateAtomicAndLastSeq(t *testing.T) {
	url := startNATS(t, nil)
	ok, detail := runCheck(t, i18n.English, (*env).checkNATS, doctorConfig(t, "", natsSection(url, "create_stream = true\n")))
	wantCheck(t, "create_stream without a stream", ok, detail, true,
		"; stream PWBI does not exist yet: the agent creates it (nats.create_stream = true)")

	js, ctx := jetStreamOf(t, url)
	if _, err := js.Stream(ctx, "PWBI"); err == nil {
		t.Fatal("the check created the stream")
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PWBI", Subjects: []string{"pwbi.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("pwbi." + doctorAgent + ".transaction.outlet-1.r42")
	m.Header.Set(natssink.HeaderSeq, "42")
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	ok, detail = runCheck(t, i18n.English, (*env).checkNATS, doctorConfig(t, "", natsSection(url, "")))
	wantCheck(t, "a record of the agent, no atomic batches", ok, detail, true,
		"; stream PWBI with 1 replica", "; the stream does not allow atomic batches (allow_atomic)", "; the agent's last record there: seq 42")
	ok, detail = runCheck(t, i18n.Indonesian, (*env).checkNATS, doctorConfig(t, "", natsSection(url, "")))
	wantCheck(t, "the same, in Indonesian", ok, detail, true,
		"; stream PWBI dengan 1 replika", "tidak mengizinkan atomic batch", "; data terakhir agen di sana: seq 42")
}
