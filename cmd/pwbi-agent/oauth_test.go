package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/moka/oauth/oauthfake"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

// These tests run the real binary against the fake Moka Open API
// (moka.api = "oauth"): `moka connect` in the browser's place, token
// refresh and rotation across SIGKILL, revocation, and the exact records
// upstream.

const oauthRPM = 300

func startOAuthMoka(t testing.TB, o oauthfake.Options) *oauthfake.Server {
	t.Helper()
	if o.Seed == 0 {
		o.Seed = 21
	}
	m := oauthfake.New(o)
	m.Start()
	t.Cleanup(m.Close)
	return m
}

// newOAuthEnv is an agent configured for m, with the client secret in a
// file next to the config, and m accepting only the agent's redirect URI.
func newOAuthEnv(t testing.TB, m *oauthfake.Server, backfill int) *testEnv {
	t.Helper()
	return newOAuthEnvRPM(t, m, backfill, oauthRPM)
}

// mokaConnect runs `pwbi-agent moka connect` as a person would, the test
// playing the browser: it reads the authorize URL the command prints,
// visits it (Moka approves and redirects to the agent's callback, which the
// HTTP client follows) and waits for the command to report success.
func mokaConnect(t *testing.T, e *testEnv) string {
	t.Helper()
	cmd := exec.Command(agentBinary(t), "moka", "connect", "--no-browser", "--timeout", "90s", "--config", e.cfgPath)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	authorize := ""
	for authorize == "" && sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if s := strings.TrimSpace(line); strings.HasPrefix(s, "http") {
			authorize = s
		}
	}
	if authorize == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("moka connect printed no URL:\n%s%s", out.String(), stderr.String())
	}
	resp, err := http.Get(authorize) // Moka's page approves; the redirect lands on the agent
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte("Moka is connected")) {
		t.Fatalf("callback page: HTTP %d at %s\n%s", resp.StatusCode, resp.Request.URL.Path, page)
	}
	rest, _ := io.ReadAll(stdout)
	out.Write(rest)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("moka connect: %v\n%s%s", err, out.String(), stderr.String())
	}
	if !strings.Contains(out.String(), "Moka is connected") {
		t.Fatalf("moka connect output:\n%s", out.String())
	}
	return out.String()
}

// checkUpstreamMatchesOAuthMoka asserts that every transaction and product
// of the fake arrived upstream with exactly the content a correct mapping
// gives (the fake computes it from its own state, not from its JSON).
func checkUpstreamMatchesOAuthMoka(t *testing.T, e *testEnv, m *oauthfake.Server) {
	t.Helper()
	got := latest(e.up.Records())
	want := m.Expected()
	if len(want) == 0 {
		t.Fatal("fake Moka has no transactions")
	}
	check := func(key string, canon []byte) {
		t.Helper()
		rec, ok := got[key]
		if !ok {
			t.Fatalf("record %s never reached the upstream", key)
		}
		if !bytes.Equal(rec.Data, canon) {
			t.Fatalf("record %s differs upstream:\n got %s\nwant %s", key, rec.Data, canon)
		}
		if rec.Version != store.Version(canon) {
			t.Fatalf("record %s: version does not hash its data", key)
		}
	}
	for _, tx := range want {
		canon, err := tx.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		check(tx.Key(), canon)
	}
	for _, p := range m.ExpectedProducts() {
		canon, err := p.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		check(p.Key(), canon)
	}
	if n := len(latestTx(e.up.Records())); n != len(want) {
		t.Fatalf("%d distinct transactions upstream, want %d", n, len(want))
	}
	if v := e.up.OrderViolations(); v != 0 {
		t.Fatalf("%d records arrived out of order", v)
	}
}

// agentRequests are the requests the agent (not the test's browser) sent.
func agentRequests(m *oauthfake.Server) []oauthfake.RequestLog {
	var out []oauthfake.RequestLog
	for _, r := range m.Requests() {
		if !strings.HasPrefix(r.Path, "/oauth/authorize") {
			out = append(out, r)
		}
	}
	return out
}

// checkOAuthRate asserts that no 60-second window saw more than oauthRPM of
// the agent's requests, and that they were spaced evenly.
func checkOAuthRate(t *testing.T, m *oauthfake.Server) {
	t.Helper()
	var at []time.Time
	for _, r := range agentRequests(m) {
		at = append(at, r.At)
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	j := 0
	for i := range at {
		for at[i].Sub(at[j]) >= time.Minute {
			j++
		}
		if n := i - j + 1; n > oauthRPM {
			t.Fatalf("%d requests within a minute, limit %d", n, oauthRPM)
		}
	}
	gap := time.Minute / oauthRPM
	for i := 10; i < len(at); i++ {
		// Slack of half an interval: a request the loaded machine
		// delivered late shortens the span by up to that (50 ms of slack
		// left 45 ms of margin); a burst of two takes a whole interval.
		if span := at[i].Sub(at[i-9]); span < 9*gap-gap/2 {
			t.Fatalf("10 requests within %v: faster than %d/min", span, oauthRPM)
		}
	}
}

// checkNoSecrets asserts that no token the fake ever issued, the client
// secret, or a token parameter shows in the agent's stderr, its log file,
// its status or its metrics.
func checkNoSecrets(t *testing.T, e *testEnv, m *oauthfake.Server, p *proc) {
	t.Helper()
	logFile, err := os.ReadFile(filepath.Join(e.dataDir, "logs", "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{
		"stderr":  p.stderr.String(),
		"log":     string(logFile),
		"status":  mustGet(t, "http://"+e.apiAddr+"/v1/status"),
		"metrics": mustGet(t, "http://"+e.apiAddr+"/metrics"),
	}
	secrets := append(m.IssuedSecrets(), m.ClientSecret())
	if len(secrets) < 3 {
		t.Fatal("no tokens issued")
	}
	for where, text := range texts {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Fatalf("%s leaks a secret (%.6s…)", where, s)
			}
		}
		for _, p := range []string{"access_token=mka_", "refresh_token=mkr_", "code=code_"} {
			if strings.Contains(text, p) {
				t.Fatalf("%s leaks %q", where, p)
			}
		}
	}
	if !strings.Contains(texts["log"], "Moka authorized") {
		t.Error("the log file does not record the authorization")
	}
}

func metricValue(t *testing.T, e *testEnv, name string) string {
	t.Helper()
	for _, line := range strings.Split(mustGet(t, "http://"+e.apiAddr+"/metrics"), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// waitSynced waits until every outlet synced after after, the buffer is
// empty, want holds and no poll is running: a settled state, whose
// snapshot the caller may judge (a snapshot taken while a later poll's
// updated_at pass still runs says "syncing"). It fails at once if the
// agent asks for a new authorization: every caller expects a connected
// agent.
func waitSynced(t *testing.T, e *testEnv, outlets int, after time.Time, want func() bool) localapi.Status {
	t.Helper()
	var st localapi.Status
	testutil.WaitFor(t, "sync delivered", 180*time.Second, func() bool {
		var err error
		st, err = e.status(t)
		if err == nil && st.Moka.NeedsAuthorization {
			t.Fatalf("the agent lost its authorization: problems %v, oauth %+v", st.Problems, st.Moka.OAuth)
		}
		if err != nil || st.State == localapi.StateSyncing || len(st.Moka.Outlets) != outlets || st.Queue.Pending != 0 ||
			st.Moka.LastPollAt == nil || st.Moka.LastPollAt.Before(after) {
			return false
		}
		for _, o := range st.Moka.Outlets {
			if o.LastSyncAt == nil || o.LastSyncAt.Before(after) {
				return false
			}
		}
		return want == nil || want()
	})
	return st
}

// TestMokaOAuthEndToEnd: the real binary, configured for the Moka Open API,
// waits for "Connect Moka", is connected through `moka connect`, then syncs
// 3 outlets (in three time zones) to the upstream exactly, within the rate
// limit; voids and refunds of week-old sales made afterwards reach the
// upstream through the updated_at pass; no secret is ever written out.
func TestMokaOAuthEndToEnd(t *testing.T) {
	m := startOAuthMoka(t, oauthfake.Options{Outlets: 3, Days: 12, TxPerDay: 20})
	e := newOAuthEnv(t, m, 30)
	p := e.start(t)

	var st localapi.Status
	testutil.WaitFor(t, "needs authorization", 60*time.Second, func() bool {
		var err error
		st, err = e.status(t)
		return err == nil && st.Moka.NeedsAuthorization && st.State == localapi.StateError
	})
	if !slices.ContainsFunc(st.Problems, func(s string) bool { return strings.Contains(s, "moka connect") }) || st.Moka.OAuth == nil || st.Moka.OAuth.Connected {
		t.Fatalf("status before connecting: %+v", st)
	}
	if v := metricValue(t, e, "pwbi_agent_moka_needs_authorization"); v != "1" {
		t.Errorf("needs_authorization metric %q", v)
	}
	if page := mustGet(t, "http://"+e.apiAddr+"/"); !strings.Contains(page, `id="connect-moka"`) {
		t.Error("the dashboard shows no Connect Moka button")
	}
	if n := len(agentRequests(m)); n != 0 {
		t.Fatalf("the agent sent %d requests to Moka without a grant", n)
	}

	connected := time.Now()
	out := mokaConnect(t, e)
	if !strings.Contains(out, "business "+m.BusinessID()) && !strings.Contains(out, "Moka is connected.") {
		t.Errorf("connect output: %s", out)
	}
	st = waitSynced(t, e, 3, connected, func() bool { return len(latestTx(e.up.Records())) >= len(m.Expected()) })
	checkUpstreamMatchesOAuthMoka(t, e, m)
	if st.State != localapi.StateOK || st.Moka.NeedsAuthorization || !st.Moka.OAuth.Connected || st.Moka.OAuth.BusinessID != m.BusinessID() {
		t.Fatalf("status after the sync: state %s, problems %v, oauth %+v", st.State, st.Problems, st.Moka.OAuth)
	}
	for _, o := range st.Moka.Outlets {
		if o.Name == "" || o.LastError != "" || o.Transactions == 0 || o.Products == 0 {
			t.Errorf("outlet status %+v", o)
		}
	}
	statuses := map[unified.Status]int{}
	for _, tx := range m.Expected() {
		statuses[tx.Status]++
	}
	if statuses[unified.StatusVoid] == 0 || statuses[unified.StatusRefunded]+statuses[unified.StatusPartiallyRefunded] == 0 {
		t.Errorf("the data has no old voids or refunds: %v", statuses)
	}

	// The back office voids and refunds sales of more than a week ago.
	var old []string
	for _, p := range m.Truth() {
		if time.Since(p.CreatedAt) > 8*24*time.Hour && !p.Voided && !p.Refunded && len(old) < 3 {
			old = append(old, p.ID)
		}
	}
	if len(old) != 3 {
		t.Fatal("no old sales")
	}
	for i, err := range []error{m.Void(old[0]), m.Refund(old[1], true), m.Refund(old[2], false)} {
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	before := len(e.up.Records())
	resync := time.Now()
	if out, err := runCLI(t, "sync", "--config", e.cfgPath); err != nil {
		t.Fatalf("sync: %v\n%s", err, out)
	}
	waitSynced(t, e, 3, resync, func() bool { return len(e.up.Records()) >= before+3 })
	checkUpstreamMatchesOAuthMoka(t, e, m)
	if n := len(e.up.Records()) - before; n != 3 {
		t.Errorf("re-sync sent %d records, want exactly the 3 changed sales", n)
	}
	sawUpdates := false
	for _, r := range agentRequests(m) {
		if strings.HasPrefix(r.Path, "/oauth/") {
			continue
		}
		if r.Query.Has("access_token") || !r.Bearer {
			t.Fatalf("request %s sent its token in the query", r.Path)
		}
		sawUpdates = sawUpdates || r.Query.Get("time_filter") == "updated_at"
	}
	if !sawUpdates {
		t.Error("no updated_at pass")
	}
	checkOAuthRate(t, m)
	checkNoSecrets(t, e, m, p)
}

// TestMokaOAuthRevoked: the owner revokes the app in Moka. The agent tries
// one refresh, gets invalid_grant and waits visibly for "Connect Moka":
// status, problem line, metrics, dashboard button. No retry storm, not even
// after a restart. Connecting again resumes the sync.
func TestMokaOAuthRevoked(t *testing.T) {
	m := startOAuthMoka(t, oauthfake.Options{Outlets: 2, Days: 3, TxPerDay: 6})
	e := newOAuthEnv(t, m, 5)
	p := e.start(t)
	testutil.WaitFor(t, "agent up", 60*time.Second, func() bool { _, err := e.status(t); return err == nil })
	mokaConnect(t, e)
	waitSynced(t, e, 2, time.Time{}, func() bool { return len(latestTx(e.up.Records())) >= len(m.Expected()) })

	m.Revoke()
	m.ExpireAccessTokens()
	revokedAt := len(m.Requests())
	if out, err := runCLI(t, "sync", "--config", e.cfgPath); err != nil {
		t.Fatalf("sync: %v\n%s", err, out)
	}
	var st localapi.Status
	testutil.WaitFor(t, "re-authorize state", 60*time.Second, func() bool {
		var err error
		st, err = e.status(t)
		return err == nil && st.Moka.NeedsAuthorization
	})
	if st.State != localapi.StateError || !slices.ContainsFunc(st.Problems, func(s string) bool { return strings.Contains(s, "re-authorize") }) ||
		st.Moka.OAuth.Connected || !strings.Contains(st.Moka.OAuth.LastError, "invalid_grant") {
		t.Fatalf("status: state %s, problems %v, oauth %+v", st.State, st.Problems, st.Moka.OAuth)
	}
	if v := metricValue(t, e, "pwbi_agent_moka_needs_authorization"); v != "1" {
		t.Errorf("needs_authorization metric %q", v)
	}
	if v := metricValue(t, e, `pwbi_agent_moka_token_refreshes_total{result="revoked"}`); v != "1" {
		t.Errorf("revoked refreshes metric %q", v)
	}
	if page := mustGet(t, "http://"+e.apiAddr+"/"); !strings.Contains(page, `id="connect-moka"`) {
		t.Error("the dashboard shows no Connect Moka button")
	}

	// "Sync now" and a restart ask nothing more of Moka. Watching for a
	// while is the point of this check: a retry storm takes time to show.
	for range 3 {
		if out, err := runCLI(t, "sync", "--config", e.cfgPath); err != nil {
			t.Fatalf("sync: %v\n%s", err, out)
		}
	}
	p.stop(t)
	p = e.start(t)
	testutil.WaitFor(t, "restarted agent waits for authorization", 60*time.Second, func() bool {
		st, err := e.status(t)
		return err == nil && st.Moka.NeedsAuthorization && st.Moka.LastPollAt == nil && st.State == localapi.StateError
	})
	time.Sleep(2 * time.Second)
	after := m.Requests()[revokedAt:]
	if len(after) != 2 || after[0].Status != 401 || after[1].Path != "/oauth/token" || after[1].Status != 400 {
		var got []string
		for _, r := range after {
			got = append(got, fmt.Sprintf("%s %d", r.Path, r.Status))
		}
		t.Fatalf("requests after the revocation: %v; want the refused call and one refresh", got)
	}

	// Connecting again resumes.
	reconnect := time.Now()
	mokaConnect(t, e)
	st = waitSynced(t, e, 2, reconnect, nil)
	if st.Moka.NeedsAuthorization || st.State != localapi.StateOK {
		t.Fatalf("after reconnecting: state %s, problems %v", st.State, st.Problems)
	}
	checkUpstreamMatchesOAuthMoka(t, e, m)
	checkNoSecrets(t, e, m, p)
}

// TestMokaOAuthKillAroundRefresh: the agent is killed with SIGKILL right
// after Moka rotated its tokens, (a) as soon as the token answer is out and
// (b) while its first request with the new access token is on the wire
// (which, Doorkeeper-style, revokes the previous refresh token). Restarted,
// it is still authorized either way: it stores the rotated refresh token
// before it uses the new access token.
func TestMokaOAuthKillAroundRefresh(t *testing.T) {
	for _, tc := range []string{"after the token answer", "during the first use of the new token"} {
		t.Run(tc, func(t *testing.T) {
			var victim atomic.Pointer[os.Process]
			killed := make(chan struct{}, 1)
			m := startOAuthMoka(t, oauthfake.Options{Outlets: 2, Days: 3, TxPerDay: 6, OnTokenIssued: func(grant string) {
				if grant != "refresh_token" {
					return
				}
				if p := victim.Swap(nil); p != nil && tc == "after the token answer" {
					p.Kill() // SIGKILL, the moment the answer is flushed
					killed <- struct{}{}
				}
			}})
			e := newOAuthEnv(t, m, 5)
			p := e.start(t)
			testutil.WaitFor(t, "agent up", 60*time.Second, func() bool { _, err := e.status(t); return err == nil })
			mokaConnect(t, e)
			waitSynced(t, e, 2, time.Time{}, func() bool { return len(latestTx(e.up.Records())) >= len(m.Expected()) })

			if tc == "during the first use of the new token" {
				m.HoldNewTokens(true)
			}
			victim.Store(p.cmd.Process)
			m.ExpireAccessTokens()
			if out, err := runCLI(t, "sync", "--config", e.cfgPath); err != nil {
				t.Fatalf("sync: %v\n%s", err, out)
			}
			if tc == "after the token answer" {
				<-killed
			} else {
				select {
				case <-m.Held():
				case <-time.After(60 * time.Second):
					t.Fatal("the new token was never used")
				}
				if err := p.cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				m.Release()
			}
			<-p.done
			if ev := m.TokenEvents(); ev[len(ev)-1].Grant != "refresh_token" && ev[len(ev)-1].Kind != "used" {
				t.Fatalf("last token event %+v", ev[len(ev)-1])
			}

			// Restarted: still authorized, and the grant keeps rotating.
			// The time is taken before the start: the new process may
			// begin its first poll before this goroutine runs again, and
			// only that poll (poll_interval is an hour) can satisfy
			// waitSynced; the killed one's polls all ended before p.done.
			restarted := time.Now()
			p = e.start(t)
			st := waitSynced(t, e, 2, restarted, nil)
			if st.Moka.NeedsAuthorization || st.State != localapi.StateOK || !st.Moka.OAuth.Connected {
				t.Fatalf("after the restart: state %s, problems %v, oauth %+v", st.State, st.Problems, st.Moka.OAuth)
			}
			m.ExpireAccessTokens()
			again := time.Now()
			if out, err := runCLI(t, "sync", "--config", e.cfgPath); err != nil {
				t.Fatalf("sync: %v\n%s", err, out)
			}
			st = waitSynced(t, e, 2, again, nil)
			if st.Moka.NeedsAuthorization || st.Moka.OAuth.LastRefreshAt == nil || st.Moka.OAuth.LastRefreshAt.Before(again) {
				t.Fatalf("refresh after the restart: %+v", st.Moka.OAuth)
			}
			checkUpstreamMatchesOAuthMoka(t, e, m)
			checkNoSecrets(t, e, m, p)
		})
	}
}

// TestMokaConnectRefusesApikey: `moka connect` explains itself when the
// agent is not configured for the Open API.
func TestMokaConnectRefusesApikey(t *testing.T) {
	e := newEnvWith(t, "[moka]\nenabled = true\napi = \"apikey\"\n")
	out, err := runCLI(t, "moka", "connect", "--no-browser", "--config", e.cfgPath)
	if exitCode(err) != 1 || !strings.Contains(string(out), `moka.api = \"oauth\"`) && !strings.Contains(string(out), `moka.api = "oauth"`) {
		t.Fatalf("exit %d:\n%s", exitCode(err), out)
	}
}
