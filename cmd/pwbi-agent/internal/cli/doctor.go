package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/moka/apikey"
)

// Doctor thresholds.
const (
	maxClockSkew = 2 * time.Minute
	minFreeDisk  = 500 << 20 // below this the buffer may not hold a long outage
)

type check struct {
	name string
	run  func(ctx context.Context, cfg *config.Config) (ok bool, detail string)
}

var doctorChecks = []check{
	{"agent running", checkAgent},
	{"disk space", checkDisk},
	{"upstream reachable", checkUpstream},
	{"Moka credentials", checkMoka},
}

func cmdDoctor(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("doctor", "Check the config, the clock, free disk, Moka credentials and upstream reachability.")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	path := configPath(*cfgFlag)
	failed := 0
	report := func(ok bool, name, detail string) {
		mark := "ok  "
		if !ok {
			mark = "FAIL"
			failed++
		}
		fmt.Fprintf(e.stdout, "[%s] %-20s %s\n", mark, name, detail)
	}
	cfg, err := config.Load(path)
	if err != nil {
		report(false, "config", oneLine(err.Error(), 400))
		fmt.Fprintln(e.stdout, "\nFix the config first: pwbi-agent config check --config "+path)
		return exitError
	}
	report(true, "config", cfg.Path)
	for _, c := range doctorChecks {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		ok, detail := c.run(cctx, cfg)
		cancel()
		report(ok, c.name, detail)
	}
	if failed > 0 {
		fmt.Fprintf(e.stdout, "\n%d check(s) failed\n", failed)
		return exitError
	}
	fmt.Fprintln(e.stdout, "\nall checks passed")
	return exitOK
}

func checkAgent(ctx context.Context, cfg *config.Config) (bool, string) {
	st, err := localapi.NewClient(cfg.LocalAPI.Listen, nil).Status(ctx)
	if err != nil {
		return false, err.Error()
	}
	detail := fmt.Sprintf("state %s, version %s", st.State, st.Version)
	if len(st.Problems) > 0 {
		detail += "; " + st.Problems[0]
	}
	return st.State != localapi.StateError, detail
}

func checkDisk(ctx context.Context, cfg *config.Config) (bool, string) {
	dir := cfg.Agent.DataDir
	for {
		if _, err := os.Stat(dir); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return false, "data directory and its parents do not exist: " + cfg.Agent.DataDir
		}
		dir = parent
	}
	free, err := freeDisk(dir)
	if err != nil {
		return false, fmt.Sprintf("cannot read free space of %s: %v", dir, err)
	}
	detail := fmt.Sprintf("%s free on %s", humanBytes(int64(free)), dir)
	if free < minFreeDisk {
		return false, detail + fmt.Sprintf(" (less than %s: the buffer may not hold a long outage)", humanBytes(minFreeDisk))
	}
	return true, detail
}

// checkUpstream asks the upstream for its batch endpoint without sending
// data: any HTTP answer proves reachability, 401/403 a refused token, and
// the Date header tells the clock skew.
func checkUpstream(ctx context.Context, cfg *config.Config) (bool, string) {
	if cfg.Upstream.URL == "" {
		return true, "not configured (records stay in the local buffer)"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(cfg.Upstream.URL, "/")+"/v1/batches", nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Upstream.Token.Value())
	sent := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, "cannot reach " + hostOf(cfg.Upstream.URL) + ": " + redactURLError(err)
	}
	resp.Body.Close()
	rtt := time.Since(sent)
	detail := fmt.Sprintf("%s answered HTTP %d in %v", hostOf(cfg.Upstream.URL), resp.StatusCode, rtt.Round(time.Millisecond))
	ok := true
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		ok = false
		detail += ": the upstream token is refused (upstream.token)"
	}
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		skew := time.Until(d.Add(rtt / 2)).Round(time.Second)
		detail += fmt.Sprintf("; clock skew %v", skew)
		if skew > maxClockSkew || skew < -maxClockSkew {
			ok = false
			detail += " (set the PC's clock: timestamps and business dates depend on it)"
		}
	} else {
		detail += "; no Date header, clock not checked"
	}
	return ok, detail
}

func checkMoka(ctx context.Context, cfg *config.Config) (bool, string) {
	if !cfg.Moka.Enabled {
		return true, "Moka is disabled"
	}
	if ok, why := cfg.MokaConfigured(); !ok {
		return false, why
	}
	if cfg.Moka.API == config.MokaOAuth {
		// The grant lives in the agent's database: ask the running agent.
		st, err := localapi.NewClient(cfg.LocalAPI.Listen, nil).Status(ctx)
		if err != nil {
			return false, "cannot check the Moka authorization: " + err.Error()
		}
		switch o := st.Moka.OAuth; {
		case st.Moka.NeedsAuthorization || o == nil || !o.Connected:
			return false, "Moka is not authorized: run `pwbi-agent moka connect`"
		default:
			return true, "authorized for business " + o.BusinessID
		}
	}
	c := apikey.NewClient(apikey.ClientConfig{
		BaseURL: cfg.Moka.BaseURL, APIKey: cfg.Moka.APIKey.Value(), BusinessID: cfg.Moka.BusinessID,
		RequestsPerMinute: cfg.Moka.RequestsPerMinute,
	}, apikey.ClientOptions{MaxRetries: 1})
	outlets, err := c.Outlets(ctx)
	if err != nil {
		if errors.Is(err, apikey.ErrUnauthorized) {
			return false, "Moka rejected the API key (moka.api_key)"
		}
		return false, err.Error()
	}
	names := make([]string, 0, len(outlets))
	for _, o := range outlets {
		names = append(names, o.Name)
	}
	return true, fmt.Sprintf("%d outlet(s): %s", len(outlets), strings.Join(names, ", "))
}

func hostOf(u string) string {
	u = strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	if i := strings.IndexAny(u, "/?#"); i >= 0 {
		u = u[:i]
	}
	return u
}

// redactURLError keeps a transport error's cause without the URL (which
// could carry credentials in a query).
func redactURLError(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return err.Error()
}
