package health

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pwbi/edge-agent/internal/i18n"
)

// cloud is a configured HTTP upstream in good health.
func cloud() Sink {
	return Sink{Name: "the PWBI cloud", Configured: true}
}

func moka() Moka { return Moka{Enabled: true} }

// TestEvaluate is the rule table of SPEC §8 / issue 10, one row per rule.
func TestEvaluate(t *testing.T) {
	type row struct {
		name string
		in   Input
		want State
		// problem is a fragment the first problem must contain ("" for
		// none expected at all).
		problem string
	}
	with := func(f func(*Input)) Input {
		in := Input{Moka: moka(), Sinks: []Sink{cloud()}}
		f(&in)
		return in
	}
	rows := []row{
		{"all quiet", with(func(*Input) {}), OK, ""},
		{"polling", with(func(in *Input) { in.Moka.Busy = true }), Syncing, ""},
		{"sending", with(func(in *Input) { in.Sinks[0].Busy = true }), Syncing, ""},
		{"an unconfigured sink is never busy", with(func(in *Input) {
			in.Sinks[0] = Sink{Name: "x", Busy: true}
		}), OK, ""},

		// Error: a person must act.
		{"config error", with(func(in *Input) { in.ConfigError = "config.toml:3: unknown key" }), Error, "config file has an error"},
		{"upstream token refused", with(func(in *Input) {
			in.Sinks[0].Health, in.Sinks[0].Problem = SinkError, "the PWBI cloud refused the token (401 Unauthorized): check upstream.token"
		}), Error, "refused the token"},
		{"Jurnal refused a closed day", with(func(in *Input) {
			in.Sinks = append(in.Sinks, Sink{Name: "Jurnal", Key: "jurnal", Configured: true, Days: SinkDays{Waiting: 1,
				Refused: []Day{{OutletID: "101", OutletName: "Kemang", Date: "2026-12-05", Error: "base: Tanggal transaksi is locked"}}}})
		}), Error, "Jurnal refused the day 2026-12-05 of outlet Kemang (101): base: Tanggal transaksi is locked. Its sales are not in the books"},
		{"upstream answers with a web page", with(func(in *Input) {
			in.Sinks[0].Health, in.Sinks[0].Problem = SinkError, "the upstream answered with a web page, not an acknowledgement: is a Wi-Fi login page in the way?"
		}), Error, "Wi-Fi login page"},
		{"a sink refusing every record", with(func(in *Input) {
			in.Sinks[0].Health, in.Sinks[0].LastError = SinkError, `upstream answered 400 Bad Request: {"error":"agent_id not registered"}`
		}), Error, "agent_id not registered"},
		{"Moka refuses the credentials", with(func(in *Input) {
			in.Moka.AuthRefused = "Moka rejected the credentials: check moka.api_key"
		}), Error, "rejected the credentials"},
		{"disk full", with(func(in *Input) {
			in.Store.WriteError, in.Store.DiskFull = "write agent.db: no space left on device", true
		}), Error, "disk is full"},
		{"database write failure", with(func(in *Input) {
			in.Store.WriteError = "write agent.db: input/output error"
		}), Error, "cannot be written"},
		{"buffer unreadable", with(func(in *Input) { in.Store.ReadError = "database not open" }), Error, "cannot read the local buffer"},
		{"outlet failing for a few polls", with(func(in *Input) {
			in.Moka.Outlets = []Outlet{{ID: "o1", Name: "Kopi Kenangan", Error: "moka GET /v1/transactions: unreadable page", Failures: FailingPolls}}
		}), Error, "Kopi Kenangan (o1) has failed 3 polls in a row"},
		{"outlet whose sales cannot be stored fails at once", with(func(in *Input) {
			in.Moka.Outlets = []Outlet{{ID: "o1", Error: "buffer records: no space left on device", Kind: KindStorage, Failures: 1}}
		}), Error, "cannot be saved"},
		{"Moka polling failing as a whole", with(func(in *Input) {
			in.Moka.PollError, in.Moka.PollFailures = "list outlets: HTTP 404", FailingPolls
		}), Error, "Moka cannot be polled"},
		{"buffer full with nothing to drain it", with(func(in *Input) {
			in.Moka.Full, in.Sinks[0].Configured = true, false
		}), Error, "no delivery target"},
		{"checkout cannot listen", with(func(in *Input) {
			in.Checkout = Checkout{Enabled: true, ListenError: "the checkout gateway cannot listen on 192.168.1.10:8686: address in use"}
		}), Error, "cannot listen"},
		{"checkout cannot start", with(func(in *Input) {
			in.Checkout = Checkout{Enabled: true, StartError: "the checkout gateway cannot start: store"}
		}), Error, "cannot start"},
		{"checkout certificate expired", with(func(in *Input) {
			in.Checkout = Checkout{Enabled: true, TLSExpired: "the checkout TLS certificate expired on 2026-12-01: tablets refuse to connect"}
		}), Error, "expired on 2026-12-01"},

		// Offline: retries will fix it.
		{"upstream unreachable", with(func(in *Input) {
			in.Sinks[0].Health, in.Sinks[0].LastError = SinkOffline, "send batch: connection refused"
		}), Offline, "cannot reach the PWBI cloud"},
		{"Moka unreachable", with(func(in *Input) {
			in.Moka.PollError, in.Moka.PollErrorKind, in.Moka.PollFailures = "dial tcp: no route to host", KindTransient, 40
		}), Offline, "cannot reach Moka"},
		{"outlet with 503s for hours", with(func(in *Input) {
			in.Moka.Outlets = []Outlet{{ID: "o1", Error: "HTTP 503", Kind: KindTransient, Failures: 50}}
		}), Offline, "cannot reach Moka"},
		{"outlet that failed once", with(func(in *Input) {
			in.Moka.Outlets = []Outlet{{ID: "o1", Error: "unreadable page", Failures: 1}}
		}), Offline, "retrying"},
		{"Moka polling failed once", with(func(in *Input) {
			in.Moka.PollError, in.Moka.PollFailures = "list outlets: HTTP 404", 1
		}), Offline, "retrying"},
		{"buffer full while the cloud catches up", with(func(in *Input) { in.Moka.Full = true }), Offline, "buffer is full"},
		{"closed days waiting for Jurnal, which cannot be reached", with(func(in *Input) {
			in.Sinks = append(in.Sinks, Sink{Name: "Jurnal", Key: "jurnal", Configured: true,
				Days: SinkDays{Waiting: 2, Error: "Jurnal cannot be reached: timeout"}})
		}), Offline, "2 closed days wait to be posted to Jurnal: Jurnal cannot be reached: timeout"},
		{"closed days not tried yet are no problem", with(func(in *Input) {
			in.Sinks = append(in.Sinks, Sink{Name: "Jurnal", Key: "jurnal", Configured: true, Days: SinkDays{Waiting: 1}})
		}), OK, ""},
		{"closed days of a sink already offline say it once", with(func(in *Input) {
			in.Sinks[0].Health, in.Sinks[0].LastError = SinkOffline, "timeout"
			in.Sinks[0].Days = SinkDays{Waiting: 1, Error: "timeout"}
		}), Offline, "cannot reach the PWBI cloud"},
		{"open orders cannot be refreshed", with(func(in *Input) {
			in.Checkout.RefreshError = "Mokka: timeout"
		}), Offline, "refresh open Mokka orders"},

		// Notes do not change the state.
		{"records set aside", with(func(in *Input) { in.Store.DeadLetters = 2 }), OK, "2 record(s) were set aside"},
		{"database replaced", with(func(in *Input) { in.Store.Quarantined = true }), OK, "damaged and has been replaced"},
		{"Moka not set up yet", with(func(in *Input) { in.Moka.Setup = "moka.business_id is not set" }), OK, "business_id"},
		{"no upstream configured", with(func(in *Input) {
			in.Sinks[0] = Sink{Name: "the PWBI cloud", Unconfigured: "upstream.url is not set"}
		}), OK, "upstream.url is not set"},
		{"restart required", with(func(in *Input) { in.RestartRequired = []string{"agent.data_dir"} }), OK, "restart the agent"},
		{"checkout not set up", with(func(in *Input) {
			in.Checkout = Checkout{Enabled: true, Setup: "checkout.store_id is not set"}
		}), OK, "checkout: checkout.store_id"},
		{"plain HTTP on the shop Wi-Fi is a note", with(func(in *Input) {
			in.Checkout = Checkout{Enabled: true, Warning: "checkout.tls = false: tablet tokens cross the shop network in plain text"}
		}), OK, "plain text"},
		{"a tablet certificate ending without renewal is a note", with(func(in *Input) {
			in.Checkout = Checkout{Enabled: true, TLSEnding: "the checkout TLS certificate ends on 2027-01-01 and renewing it failed: disk full"}
		}), OK, "renewing it failed"},
		{"checkout disabled: its listener does not matter", with(func(in *Input) {
			in.Checkout = Checkout{ListenError: "cannot listen"}
		}), OK, ""},
		{"moka disabled: its errors do not matter", with(func(in *Input) {
			in.Moka = Moka{AuthRefused: "refused", PollError: "x", PollFailures: 9}
		}), OK, ""},

		// Paused wins, and still says what is wrong.
		{"paused", with(func(in *Input) { in.Paused = true }), Paused, ""},
		{"paused with an error", with(func(in *Input) {
			in.Paused, in.ConfigError = true, "bad"
		}), Paused, "config file has an error"},

		// The worst problem decides and comes first.
		{"error beats offline", with(func(in *Input) {
			in.Sinks[0].Health, in.Sinks[0].LastError = SinkOffline, "timeout"
			in.Moka.AuthRefused = "Moka rejected the credentials"
		}), Error, "rejected the credentials"},
		{"offline beats syncing", with(func(in *Input) {
			in.Moka.Busy = true
			in.Sinks[0].Health, in.Sinks[0].LastError = SinkOffline, "timeout"
		}), Offline, "cannot reach"},
		{"disk full is said once", with(func(in *Input) {
			in.Store.WriteError, in.Store.DiskFull = "no space left on device", true
			in.Moka.Outlets = []Outlet{{ID: "o1", Error: "buffer records: no space left on device", Kind: KindStorage, Failures: 1}}
		}), Error, "disk is full"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			got, ps := Evaluate(r.in)
			if got != r.want {
				t.Errorf("state = %q, want %q (problems %q)", got, r.want, Texts(ps))
			}
			if r.problem == "" {
				if r.want == OK || r.want == Syncing || r.want == Paused {
					if len(ps) != 0 {
						t.Errorf("problems = %q, want none", Texts(ps))
					}
				}
			} else if len(ps) == 0 || !strings.Contains(ps[0].Text, r.problem) {
				t.Errorf("first problem of %q does not contain %q", Texts(ps), r.problem)
			}
			// No state but ok/syncing/paused without a reason a person
			// can read.
			if (got == Error || got == Offline) && len(ps) == 0 {
				t.Errorf("state %q with no problem", got)
			}
			for i := 1; i < len(ps); i++ {
				if ps[i].Severity > ps[i-1].Severity {
					t.Errorf("problems not ordered by severity: %+v", ps)
				}
			}
		})
	}
	t.Run("storage duplicates are not repeated", func(t *testing.T) {
		_, ps := Evaluate(with(func(in *Input) {
			in.Store.WriteError, in.Store.DiskFull = "no space left on device", true
			in.Moka.Outlets = []Outlet{{ID: "o1", Error: "no space left on device", Kind: KindStorage, Failures: 2}}
		}))
		if len(ps) != 1 {
			t.Errorf("problems = %q, want the disk-full one only", Texts(ps))
		}
	})
}

// TestNoStallLeavesOK checks the promise behind the table: whatever single
// stall is present, the state is not ok.
func TestNoStallLeavesOK(t *testing.T) {
	stalls := map[string]func(*Input){
		"sink error":        func(in *Input) { in.Sinks[0].Health = SinkError },
		"sink offline":      func(in *Input) { in.Sinks[0].Health = SinkOffline },
		"auth":              func(in *Input) { in.Moka.AuthRefused = "x" },
		"poll":              func(in *Input) { in.Moka.PollError, in.Moka.PollFailures = "x", 1 },
		"outlet":            func(in *Input) { in.Moka.Outlets = []Outlet{{ID: "o", Error: "x", Failures: 1}} },
		"outlet storage":    func(in *Input) { in.Moka.Outlets = []Outlet{{ID: "o", Error: "x", Kind: KindStorage, Failures: 1}} },
		"write":             func(in *Input) { in.Store.WriteError = "x" },
		"read":              func(in *Input) { in.Store.ReadError = "x" },
		"full":              func(in *Input) { in.Moka.Full = true },
		"config":            func(in *Input) { in.ConfigError = "x" },
		"checkout listen":   func(in *Input) { in.Checkout = Checkout{Enabled: true, ListenError: "x"} },
		"checkout refresh":  func(in *Input) { in.Checkout.RefreshError = "x" },
		"checkout no start": func(in *Input) { in.Checkout = Checkout{Enabled: true, StartError: "x"} },
		"checkout tls":      func(in *Input) { in.Checkout = Checkout{Enabled: true, TLSExpired: "x"} },
		"day refused":       func(in *Input) { in.Sinks[0].Days.Refused = []Day{{OutletID: "o", Date: "2026-12-05", Error: "x"}} },
		"days waiting":      func(in *Input) { in.Sinks[0].Days = SinkDays{Waiting: 1, Error: "x"} },
	}
	for name, f := range stalls {
		in := Input{Moka: moka(), Sinks: []Sink{cloud()}}
		f(&in)
		if got, ps := Evaluate(in); got == OK || got == Syncing || len(ps) == 0 {
			t.Errorf("%s: state %q, problems %q", name, got, Texts(ps))
		}
	}
}

// TestProblemsInBothLanguages: every problem carries a code of the health
// catalogue and its parameters; its English Text is the sentence the
// status always said (clients and tests read it), and the same code and
// parameters read in Indonesian, with the data kept as it came.
func TestProblemsInBothLanguages(t *testing.T) {
	in := Input{
		ConfigError:     "config.toml:3: unknown key",
		RestartRequired: []string{"agent.data_dir", "local_api.listen"},
		Store:           Store{WriteError: "write agent.db: no space left on device", DiskFull: true, ReadError: "closed", Quarantined: true, DeadLetters: 3},
		Moka: Moka{Enabled: true, Setup: "moka.business_id is not set", AuthRefused: "Moka rejected the credentials: check moka.api_key",
			PollError: "list outlets: HTTP 404", PollFailures: 4, Full: true,
			Outlets: []Outlet{
				{ID: "o1", Name: "Kopi Kenangan", Error: "unreadable page", Failures: 3},
				{ID: "o2", Error: "HTTP 503", Kind: KindTransient, Failures: 1},
				{ID: "o3", Error: "bad JSON", Failures: 1},
			}},
		Sinks: []Sink{
			{Name: "the PWBI cloud", Key: "upstream", Configured: true, Health: SinkError},
			{Name: "NATS", Key: "nats", Configured: true, Health: SinkOffline, LastError: "dial tcp: connection refused"},
			{Name: "Jurnal", Key: "jurnal", Configured: true, Health: SinkError, Problem: "Jurnal refused the API key",
				Days: SinkDays{Waiting: 3, Refused: []Day{
					{OutletID: "101", OutletName: "Kemang", Date: "2026-12-04", Error: "base: Tanggal transaksi is locked"},
					{OutletID: "101", OutletName: "Kemang", Date: "2026-12-05", Error: "base: Tanggal transaksi is locked"}}}},
			{Name: "Jurnal", Key: "jurnal", Configured: true, Days: SinkDays{Waiting: 1, Error: "Jurnal cannot be reached: timeout"}},
		},
		Checkout: Checkout{Enabled: true, Setup: "checkout.store_id is not set", Warning: "plain text on the LAN",
			ListenError: "cannot listen on :8686", StartError: "cannot start", RefreshError: "Mokka: timeout"},
	}
	_, ps := Evaluate(in)
	english := map[string]string{
		"HealthConfigError":       "the config file has an error; the previous settings stay in force: config.toml:3: unknown key",
		"HealthRestartRequired":   "restart the agent to apply: agent.data_dir, local_api.listen",
		"HealthDiskFull":          "the disk is full: new sales cannot be saved (write agent.db: no space left on device). Free some space on the PC; nothing is lost, sales are fetched again from Moka",
		"HealthBufferRead":        "cannot read the local buffer: closed",
		"HealthDBReplaced":        "the database was damaged and has been replaced; sales are fetched again from Moka",
		"HealthDeadLetters":       "3 record(s) were set aside (see `pwbi-agent queue dead`)",
		"HealthMokaSetup":         "moka.business_id is not set",
		"HealthMokaAuthRefused":   "Moka rejected the credentials: check moka.api_key",
		"HealthMokaPollBlocked":   "Moka cannot be polled (4 times in a row): list outlets: HTTP 404",
		"HealthOutletFailing":     "outlet Kopi Kenangan (o1) has failed 3 polls in a row: unreadable page",
		"HealthOutletUnreachable": "outlet o2: cannot reach Moka: HTTP 503",
		"HealthOutletRetrying":    "outlet o3 failed; retrying: bad JSON",
		"HealthSinkRefuses":       "the PWBI cloud refuses the records: no reason given",
		"HealthSinkUnreachable":   "cannot reach NATS: dial tcp: connection refused",
		"HealthSinkProblem":       "Jurnal refused the API key",
		"HealthBufferFull":        "the buffer is full: Moka polling is paused until the records are delivered",
		"HealthSinkDaysRefused":   "Jurnal refused 2 days, the first 2026-12-04 of outlet Kemang (101): base: Tanggal transaksi is locked. Their sales are not in the books; they are tried again every minute (fix the cause in Jurnal or the config)",
		"HealthSinkDaysWaiting":   "1 closed day waits to be posted to Jurnal: Jurnal cannot be reached: timeout",
		"HealthCheckoutSetup":     "checkout: checkout.store_id is not set",
		"HealthCheckoutWarning":   "plain text on the LAN",
		"HealthCheckoutStart":     "cannot start",
		"HealthCheckoutListen":    "cannot listen on :8686",
		"HealthCheckoutRefresh":   "cannot refresh open Mokka orders: Mokka: timeout",
	}
	id := i18n.New(i18n.Indonesian)
	seen := map[string]bool{}
	for _, p := range ps {
		seen[p.Code] = true
		if !i18n.Has(p.Code) {
			t.Errorf("code %q is not in the catalogue", p.Code)
		}
		if want, ok := english[p.Code]; ok && p.Text != want {
			t.Errorf("%s: English text\n%q, want\n%q", p.Code, p.Text, want)
		}
		if got := p.In(i18n.New(i18n.English)); got != p.Text {
			t.Errorf("%s: In(en) = %q, Text %q", p.Code, got, p.Text)
		}
		ind := p.In(id)
		if ind == p.Text || ind == p.Code || strings.Contains(ind, "<no value>") {
			t.Errorf("%s: Indonesian %q", p.Code, ind)
		}
		for k, v := range p.Params {
			if s, ok := v.(string); ok && s != "" && k != "Sink" && k != "SinkKey" && k != "ErrorCode" && !strings.Contains(ind, s) {
				t.Errorf("%s: Indonesian %q lost %s = %q", p.Code, ind, k, s)
			}
		}
	}
	for code := range english {
		if !seen[code] {
			t.Errorf("no problem with code %s", code)
		}
	}
	byCode := map[string]Problem{}
	for _, p := range ps {
		byCode[p.Code] = p
	}
	for code, want := range map[string]string{
		"HealthSinkRefuses":     "Cloud PWBI menolak data: tanpa alasan",
		"HealthSinkUnreachable": "Tidak bisa menghubungi server NATS: dial tcp: connection refused",
		"HealthSinkProblem":     "Jurnal menolak pengiriman: Jurnal refused the API key",
		"HealthDeadLetters":     "3 data disisihkan (lihat `pwbi-agent queue dead`)",
		"HealthSinkDaysRefused": "Jurnal menolak penjualan 2 hari (mulai tanggal 2026-12-04 di outlet Kemang (101)): base: Tanggal transaksi is locked. Penjualan itu belum masuk pembukuan; agen mencoba lagi setiap menit (perbaiki penyebabnya di Jurnal atau di pengaturan)",
		"HealthSinkDaysWaiting": "Penjualan 1 hari yang sudah selesai menunggu dikirim ke Jurnal: Jurnal cannot be reached: timeout",
	} {
		if got := byCode[code].In(id); got != want {
			t.Errorf("%s in Indonesian: %q, want %q", code, got, want)
		}
	}
	// The PWBI cloud's "not set up" note has its own Indonesian.
	_, ps = Evaluate(Input{Sinks: []Sink{{Name: "the PWBI cloud", Key: "upstream", Unconfigured: "upstream.url is not set: records are kept in the local buffer only"}}})
	if len(ps) != 1 || ps[0].Text != "upstream.url is not set: records are kept in the local buffer only" ||
		ps[0].In(id) != "Alamat cloud PWBI (upstream.url) belum diisi: penjualan hanya disimpan di antrean PC ini" {
		t.Errorf("the upstream note: %+v, in Indonesian %q", ps, ps[0].In(id))
	}
	if Blocking.String() != "blocking" || Retrying.String() != "retrying" || Note.String() != "note" {
		t.Error("severity names")
	}
	// A problem without a code, or with one this build does not know
	// (from a newer agent), reads as its own text.
	if got := (Problem{Code: "HealthFromTheFuture", Text: "x"}).In(id); got != "x" {
		t.Errorf("unknown code: %q", got)
	}
}

// Closed days waiting for a sink say why in the reader's language when the
// sink worded its reason as a message of the catalogue, also after the
// params went through JSON (the tray and the CLI read problem_details).
func TestDaysWaitingDetailInIndonesian(t *testing.T) {
	in := Input{Sinks: []Sink{{Name: "Jurnal", Key: "jurnal", Configured: true, Days: SinkDays{Waiting: 2,
		Error:     "Jurnal is not answering: 503 Service Unavailable",
		ErrorCode: "HealthJurnalNotAnswering", ErrorParams: map[string]any{"Error": "503 Service Unavailable"}}}}}
	_, ps := Evaluate(in)
	if len(ps) != 1 || ps[0].Code != "HealthSinkDaysWaiting" {
		t.Fatalf("problems %+v", ps)
	}
	if want := "2 closed days wait to be posted to Jurnal: Jurnal is not answering: 503 Service Unavailable"; ps[0].Text != want {
		t.Errorf("English %q, want %q", ps[0].Text, want)
	}
	raw, err := json.Marshal(ps[0].Params)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	want := "Penjualan 2 hari yang sudah selesai menunggu dikirim ke Jurnal: Jurnal sedang tidak menjawab (503 Service Unavailable); akan dicoba lagi"
	for name, p := range map[string]Problem{"direct": ps[0], "through JSON": {Code: ps[0].Code, Params: back, Text: ps[0].Text}} {
		if got := p.In(i18n.New(i18n.Indonesian)); got != want {
			t.Errorf("%s: Indonesian %q, want %q", name, got, want)
		}
	}
	// A code this build does not know: the sentence as it came.
	in.Sinks[0].Days.ErrorCode = "HealthFromTheFuture"
	_, ps = Evaluate(in)
	if got := ps[0].In(i18n.New(i18n.Indonesian)); !strings.Contains(got, "Jurnal is not answering: 503") {
		t.Errorf("unknown detail code: %q", got)
	}
	// The same from a newer agent, whose problem_details carry it.
	back["DetailCode"] = "HealthFromTheFuture"
	got := Problem{Code: "HealthSinkDaysWaiting", Params: back, Text: "x"}.In(i18n.New(i18n.Indonesian))
	if !strings.Contains(got, "Jurnal is not answering: 503") || !strings.HasPrefix(got, "Penjualan 2 hari") {
		t.Errorf("a newer agent's detail code: %q", got)
	}
}
