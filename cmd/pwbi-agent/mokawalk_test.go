package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/moka/oauth"
	"github.com/pwbi/edge-agent/agent/moka/oauth/oauthfake"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

// These tests run the real binary against the fake Moka Open API as real
// Moka behaves where our own fakes used to be kinder (issue 12): next_url
// in every shape public code shows (or none), busy outlets, sales sharing
// a time at page boundaries, refunds as rows of their own, and sales that
// join the catalogue by id.

// newOAuthEnvRPM is newOAuthEnv with its own request budget, for outlets
// too busy for the default one.
func newOAuthEnvRPM(t testing.TB, m *oauthfake.Server, backfill, rpm int) *testEnv {
	t.Helper()
	e := newEnvWith(t, fmt.Sprintf(`[moka]
enabled = true
api = "oauth"
base_url = %q
client_id = %q
client_secret_file = "moka-client.secret"
timezone = "Asia/Jakarta"
poll_interval = "1h"
initial_backfill_days = %d
requests_per_minute = %d
`, m.URL(), m.ClientID(), backfill, rpm))
	if err := os.WriteFile(filepath.Join(e.dir, "moka-client.secret"), []byte(m.ClientSecret()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m.SetRedirectURI("http://" + e.apiAddr + localapi.PathMokaCallback)
	return e
}

// parseEpoch reads the fake's since/until (epoch seconds with a fraction).
func parseEpoch(t *testing.T, v string) time.Time {
	t.Helper()
	sec, frac, _ := strings.Cut(v, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		t.Fatalf("epoch %q", v)
	}
	ns := int64(0)
	if frac != "" {
		ns, _ = strconv.ParseInt((frac + "000000000")[:9], 10, 64)
	}
	return time.Unix(s, ns)
}

// walkFigures counts, from the fake's request log, the get_latest_transactions
// requests of every pass the agent walked (a pass: one outlet, one
// time_filter, one until) and the pages its rows need (the sales whose
// pass time lies in the pass's window, PaymentsPerPage to a page).
func walkFigures(t *testing.T, m *oauthfake.Server) (requests, pages, passes int) {
	t.Helper()
	type pass struct{ outlet, filter, until string }
	first := map[pass]string{} // since of the pass's first request
	count := map[pass]int{}
	for _, r := range agentRequests(m) {
		if !strings.HasSuffix(r.Path, "/get_latest_transactions") {
			continue
		}
		p := pass{strings.Split(r.Path, "/")[3], r.Query.Get("time_filter"), r.Query.Get("until")}
		if _, ok := first[p]; !ok {
			first[p] = r.Query.Get("since")
		}
		count[p]++
	}
	truth := m.Truth()
	for p, n := range count {
		since, until := parseEpoch(t, first[p]), parseEpoch(t, p.until)
		rows := 0
		for _, s := range truth {
			at := s.CreatedAt
			if p.filter == oauth.TimeFilterUpdated {
				at = s.UpdatedAt
			}
			if s.OutletID == p.outlet && !at.Before(since) && !at.After(until) {
				rows++
			}
		}
		requests += n
		pages += max(1, int(math.Ceil(float64(rows)/oauth.PaymentsPerPage)))
		if p.filter == "" {
			passes++
		}
	}
	return requests, pages, passes
}

// TestMokaWalkNextURLStyles: whatever next_url looks like — the shape an
// ASC walk may follow, the DESC shape public code shows (until one step
// before the last row), none at all, or the same page again — the agent
// brings every sale of busy outlets (more than 10 pages per pass, sales
// sharing a time at page boundaries) upstream exactly once, with exactly
// the content the mapping gives, in at most 1.1 × the pages the rows need
// plus one request per outlet and poll.
func TestMokaWalkNextURLStyles(t *testing.T) {
	for _, style := range []oauthfake.NextURLStyle{oauthfake.NextURLSince, oauthfake.NextURLUntil, oauthfake.NextURLMissing, oauthfake.NextURLRepeat} {
		t.Run(style.String(), func(t *testing.T) {
			const outlets = 2
			m := startOAuthMoka(t, oauthfake.Options{Outlets: outlets, Days: 3, TxPerDay: 450, NoEvents: true, SameTimeSales: 15, NextURL: style})
			e := newOAuthEnvRPM(t, m, 3, 3000)
			e.start(t)
			waitUp(t, e)
			connected := time.Now()
			mokaConnect(t, e)
			want := m.Expected()
			waitSynced(t, e, outlets, connected, func() bool { return len(latestTx(e.up.Records())) >= len(want) })
			checkUpstreamMatchesOAuthMoka(t, e, m)

			// Exactly once: one record per sale, none twice.
			perKey := map[string]int{}
			for _, r := range e.up.Records() {
				if r.Kind == store.KindTransaction {
					perKey[r.Key]++
				}
			}
			for k, n := range perKey {
				if n != 1 {
					t.Fatalf("%s arrived %d times", k, n)
				}
			}
			if m.BoundaryTies() == 0 {
				t.Error("no page was cut inside a group of sales of one time")
			}
			requests, pages, passes := walkFigures(t, m)
			if pages/passes <= 10 {
				t.Fatalf("%d pages for %d transaction passes: not busy outlets", pages, passes)
			}
			t.Logf("next_url %s: %d requests for %d pages (%.3f per page), %d outlet polls", style, requests, pages,
				float64(requests)/float64(pages), passes)
			if float64(requests) > 1.1*float64(pages)+float64(passes) {
				t.Errorf("%d requests for %d pages: above 1.1 × pages + %d", requests, pages, passes)
			}
		})
	}
}

// waitUp waits until the agent answers on its local API.
func waitUp(t *testing.T, e *testEnv) {
	t.Helper()
	testutil.WaitFor(t, "agent up", 60*time.Second, func() bool { _, err := e.status(t); return err == nil })
}

// TestMokaRefundsFlagsAndRows: refunds arrive as flags on the sale for
// some sales and as rows of their own (parent_payment_id) for others. No
// refund row ever reaches the upstream as a sale; every refunded sale
// arrives with its status and refund_amount: a row after its sale (synced
// in an earlier poll) makes one new version of the sale; a row whose sale
// is older than the backfill waits, and the sale arrives refunded, once,
// when an import brings it.
func TestMokaRefundsFlagsAndRows(t *testing.T) {
	const outlets, backfill = 2, 9
	m := startOAuthMoka(t, oauthfake.Options{Outlets: outlets, Days: 12, TxPerDay: 30, RefundStyle: oauthfake.RefundMixed})
	e := newOAuthEnvRPM(t, m, backfill, 1200)
	e.start(t)
	waitUp(t, e)
	connected := time.Now()
	mokaConnect(t, e)
	// In the first poll's window for sure (it starts after connected) or
	// out of it for sure (before connected − backfill).
	inside := func(s oauthfake.PaymentTruth) bool {
		return !s.CreatedAt.Before(connected.Add(time.Minute).AddDate(0, 0, -backfill))
	}
	outside := func(s oauthfake.PaymentTruth) bool { return s.CreatedAt.Before(connected.AddDate(0, 0, -backfill)) }
	var waiting, rowsInside, flagsInside []oauthfake.PaymentTruth
	for _, s := range m.Truth() {
		switch {
		case len(s.RefundRows) > 0 && outside(s):
			waiting = append(waiting, s)
		case len(s.RefundRows) > 0 && inside(s):
			rowsInside = append(rowsInside, s)
		case s.Refunded && inside(s):
			flagsInside = append(flagsInside, s)
		}
	}
	if len(waiting) == 0 || len(rowsInside) == 0 || len(flagsInside) == 0 {
		t.Fatalf("the data lacks a kind of refund: %d waiting, %d rows, %d flags", len(waiting), len(rowsInside), len(flagsInside))
	}
	var window []unified.Transaction
	byID := map[string]unified.Transaction{}
	for _, tx := range m.Expected() {
		byID[tx.ExternalID] = tx
	}
	for _, s := range m.Truth() {
		if inside(s) {
			window = append(window, byID[s.ID])
		}
	}
	waitSynced(t, e, outlets, connected, func() bool { return len(latestTx(e.up.Records())) >= len(window) })

	rowIDs := map[string]bool{}
	for _, s := range m.Truth() {
		for _, r := range s.RefundRows {
			rowIDs[r] = true
		}
	}
	checkRecords := func(want []unified.Transaction) map[string]store.Record {
		t.Helper()
		got := latest(e.up.Records())
		for _, tx := range want {
			canon, _ := tx.Canonical()
			if r, ok := got[tx.Key()]; !ok || string(r.Data) != string(canon) {
				t.Fatalf("sale %s upstream:\n got %s\nwant %s", tx.ExternalID, r.Data, canon)
			}
		}
		for k, r := range got {
			if r.Kind != store.KindTransaction {
				continue
			}
			var tx unified.Transaction
			if err := json.Unmarshal(r.Data, &tx); err != nil {
				t.Fatal(err)
			}
			if rowIDs[tx.ExternalID] {
				t.Fatalf("refund row %s arrived as a sale (%s)", tx.ExternalID, k)
			}
		}
		return got
	}
	got := checkRecords(window)
	for _, s := range waiting {
		if _, ok := got[byID[s.ID].Key()]; ok {
			t.Fatalf("sale %s, older than the backfill, arrived", s.ID)
		}
	}
	for _, s := range append(rowsInside, flagsInside...) {
		if st := byID[s.ID].Status; st != unified.StatusRefunded && st != unified.StatusPartiallyRefunded && st != unified.StatusVoid {
			t.Fatalf("refunded sale %s expected %s", s.ID, st)
		}
	}

	// Refunds made now of sales synced by that poll: one as a row, one as
	// flags. The next poll brings a new version of each sale, nothing else.
	var fresh []string
	for _, s := range m.Truth() {
		if inside(s) && !s.Refunded && !s.Voided && time.Since(s.CreatedAt) > 3*24*time.Hour && len(fresh) < 2 {
			fresh = append(fresh, s.ID)
		}
	}
	if _, err := m.RefundRow(fresh[0], true); err != nil {
		t.Fatal(err)
	}
	if err := m.Refund(fresh[1], false); err != nil {
		t.Fatal(err)
	}
	before := len(e.up.Records())
	resync := time.Now()
	if out, err := runCLI(t, "sync", "--config", e.cfgPath); err != nil {
		t.Fatalf("sync: %v\n%s", err, out)
	}
	waitSynced(t, e, outlets, resync, func() bool { return len(e.up.Records()) >= before+2 })
	if n := len(e.up.Records()) - before; n != 2 {
		t.Errorf("the refunds sent %d records, want the 2 refunded sales", n)
	}
	rowsInside = nil
	for _, s := range m.Truth() {
		if inside(s) && len(s.RefundRows) > 0 {
			rowsInside = append(rowsInside, s)
		}
	}
	want := m.Expected()
	window = window[:0]
	for _, tx := range want {
		byID[tx.ExternalID] = tx
	}
	for _, s := range m.Truth() {
		if inside(s) {
			window = append(window, byID[s.ID])
		}
	}
	checkRecords(window)
	for _, id := range fresh {
		if st := byID[id].Status; st != unified.StatusRefunded && st != unified.StatusPartiallyRefunded {
			t.Fatalf("sale %s expected %s", id, st)
		}
	}

	// The import brings the old sales (the fake's 12 days); those whose
	// refund waited arrive refunded, once.
	jakarta := time.FixedZone("WIB", 7*3600)
	since := time.Now().In(jakarta).AddDate(0, 0, -13).Format(time.DateOnly)
	if out, err := runCLI(t, "import", "--since", since, "--config", e.cfgPath); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	all := m.Expected()
	waitSynced(t, e, outlets, time.Time{}, func() bool {
		got := latest(e.up.Records())
		for _, tx := range all {
			if _, ok := got[tx.Key()]; !ok {
				return false
			}
		}
		return true
	})
	checkRecords(all)
	perKey := map[string]int{}
	for _, r := range e.up.Records() {
		perKey[r.Key]++
	}
	for _, s := range waiting {
		tx := byID[s.ID]
		if n := perKey[tx.Key()]; n != 1 {
			t.Errorf("sale %s, refunded before it was fetched, arrived %d times", s.ID, n)
		}
		if tx.Status == unified.StatusCompleted {
			t.Errorf("sale %s expected completed", s.ID)
		}
	}
}

// TestMokaCatalogueJoin: every line of every sale upstream names the item
// and variant of a product record upstream (same outlet, same ids, same
// category), so sales join the catalogue by id, not by name.
func TestMokaCatalogueJoin(t *testing.T) {
	m := startOAuthMoka(t, oauthfake.Options{Outlets: 2, Days: 2, TxPerDay: 15})
	e := newOAuthEnvRPM(t, m, 3, 1200)
	e.start(t)
	waitUp(t, e)
	connected := time.Now()
	mokaConnect(t, e)
	waitSynced(t, e, 2, connected, func() bool { return len(latestTx(e.up.Records())) >= len(m.Expected()) })
	checkUpstreamMatchesOAuthMoka(t, e, m)
	products := map[string]unified.Product{}
	var txs []unified.Transaction
	for _, r := range latest(e.up.Records()) {
		switch r.Kind {
		case store.KindProduct:
			var p unified.Product
			if err := json.Unmarshal(r.Data, &p); err != nil {
				t.Fatal(err)
			}
			if p.VariantID != "" {
				products[p.OutletID+"/"+p.ItemID+"/"+p.VariantID] = p
			}
		case store.KindTransaction:
			var tx unified.Transaction
			if err := json.Unmarshal(r.Data, &tx); err != nil {
				t.Fatal(err)
			}
			txs = append(txs, tx)
		}
	}
	sort.Slice(txs, func(i, j int) bool { return txs[i].ExternalID < txs[j].ExternalID })
	lines := 0
	for _, tx := range txs {
		for _, it := range tx.Items {
			lines++
			p, ok := products[tx.OutletID+"/"+it.ItemID+"/"+it.VariantID]
			if !ok || it.ItemID == "" || it.VariantID == "" {
				t.Fatalf("line %q (item %q, variant %q) of sale %s joins no product", it.Name, it.ItemID, it.VariantID, tx.ExternalID)
			}
			if p.Category != it.Category || p.Variant != it.Variant {
				t.Fatalf("line %+v and product %+v disagree", it, p)
			}
		}
	}
	if lines == 0 {
		t.Fatal("no lines")
	}
}

// TestMokaFreshInstallGuidesToConnect: the installers' config is
// config.example.toml, whose [moka] is the Moka Open API with no client
// yet. The agent starts, asks Moka nothing, and its status says what to
// do: fill in the client, then "Connect Moka".
func TestMokaFreshInstallGuidesToConnect(t *testing.T) {
	example, err := os.ReadFile("../../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(example), "\napi = \"oauth\"\n") {
		t.Fatal(`config.example.toml does not set api = "oauth"`)
	}
	e := newEnvWith(t, "[moka]\nenabled = true\n") // every other [moka] key as in the example: its defaults
	e.start(t)
	var st localapi.Status
	testutil.WaitFor(t, "status", 60*time.Second, func() bool {
		var err error
		st, err = e.status(t)
		return err == nil
	})
	guided := false
	for _, p := range st.Problems {
		guided = guided || (strings.Contains(p, "moka.client_id") && strings.Contains(p, "Connect Moka"))
	}
	if !st.Moka.Enabled || st.Moka.Configured || !guided {
		t.Fatalf("fresh install: moka %+v, problems %v", st.Moka, st.Problems)
	}
	t.Logf("fresh install: state %s, moka.configured %v, moka.needs_authorization %v, problems %q",
		st.State, st.Moka.Configured, st.Moka.NeedsAuthorization, st.Problems)
}
