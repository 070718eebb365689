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
	"unicode/utf8"

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
	name string // catalogue id
	run  func(e *env, ctx context.Context, cfg *config.Config) (ok bool, detail string)
}

var doctorChecks = []check{
	{"CliCheckAgent", (*env).checkAgent},
	{"CliCheckDisk", (*env).checkDisk},
	{"CliCheckUpstream", (*env).checkUpstream},
	{"CliCheckMoka", (*env).checkMoka},
}

func cmdDoctor(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("doctor", e.t("CliHelpDoctor"))
	if code := e.parse(fs, args); code >= 0 {
		return code
	}
	path := configPath(*cfgFlag)
	failed := 0
	// The names' column: 20 as it always was, wider for longer names.
	width := max(20, utf8.RuneCountInString(e.t("CliCheckConfig")))
	for _, c := range doctorChecks {
		width = max(width, utf8.RuneCountInString(e.t(c.name)))
	}
	report := func(ok bool, name, detail string) {
		mark := e.t("CliDoctorOK")
		if !ok {
			mark = e.t("CliDoctorFail")
			failed++
		}
		fmt.Fprintf(e.stdout, "[%s] %-*s %s\n", mark, width, e.t(name), detail)
	}
	cfg, err := config.Load(path)
	if err != nil {
		report(false, "CliCheckConfig", oneLine(err.Error(), 400))
		fmt.Fprintln(e.stdout, "\n"+e.t("CliDoctorFixConfig", map[string]any{"Path": path}))
		return exitError
	}
	report(true, "CliCheckConfig", cfg.Path)
	for _, c := range doctorChecks {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		ok, detail := c.run(e, cctx, cfg)
		cancel()
		report(ok, c.name, detail)
	}
	if failed > 0 {
		fmt.Fprintln(e.stdout, "\n"+e.n("CliDoctorFailed", int64(failed)))
		return exitError
	}
	fmt.Fprintln(e.stdout, "\n"+e.t("CliDoctorPassed"))
	return exitOK
}

func (e *env) checkAgent(ctx context.Context, cfg *config.Config) (bool, string) {
	st, err := localapi.NewClient(cfg.LocalAPI.Listen, nil).Status(ctx)
	if err != nil {
		return false, e.errText(err)
	}
	detail := e.t("CliDoctorAgentState", map[string]any{"State": stateWord(e.printer(), st.State), "Version": st.Version})
	if probs := problemTexts(e.printer(), st); len(probs) > 0 {
		detail += "; " + probs[0]
	}
	return st.State != localapi.StateError, detail
}

func (e *env) checkDisk(ctx context.Context, cfg *config.Config) (bool, string) {
	dir := cfg.Agent.DataDir
	for {
		if _, err := os.Stat(dir); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return false, e.t("CliDoctorNoDataDir", map[string]any{"Dir": cfg.Agent.DataDir})
		}
		dir = parent
	}
	free, err := freeDisk(dir)
	if err != nil {
		return false, e.t("CliDoctorDiskUnreadable", map[string]any{"Dir": dir, "Error": err.Error()})
	}
	detail := e.t("CliDoctorDiskFree", map[string]any{"Free": e.size(int64(free)), "Dir": dir})
	if free < minFreeDisk {
		return false, detail + e.t("CliDoctorDiskLow", map[string]any{"Min": e.size(minFreeDisk)})
	}
	return true, detail
}

// checkUpstream asks the upstream for its batch endpoint without sending
// data: any HTTP answer proves reachability, 401/403 a refused token, and
// the Date header tells the clock skew.
func (e *env) checkUpstream(ctx context.Context, cfg *config.Config) (bool, string) {
	if cfg.Upstream.URL == "" {
		return true, e.t("CliDoctorUpstreamNotConfigured")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(cfg.Upstream.URL, "/")+"/v1/batches", nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Upstream.Token.Value())
	sent := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, e.t("CliDoctorCannotReach", map[string]any{"Host": hostOf(cfg.Upstream.URL), "Error": redactURLError(err)})
	}
	resp.Body.Close()
	rtt := time.Since(sent)
	detail := e.t("CliDoctorAnswered", map[string]any{"Host": hostOf(cfg.Upstream.URL), "Code": resp.StatusCode,
		"Time": rtt.Round(time.Millisecond).String()})
	ok := true
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		ok = false
		detail += e.t("CliDoctorTokenRefused")
	}
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		skew := time.Until(d.Add(rtt / 2)).Round(time.Second)
		detail += e.t("CliDoctorClockSkew", map[string]any{"Skew": skew.String()})
		if skew > maxClockSkew || skew < -maxClockSkew {
			ok = false
			detail += e.t("CliDoctorSetClock")
		}
	} else {
		detail += e.t("CliDoctorNoDate")
	}
	return ok, detail
}

func (e *env) checkMoka(ctx context.Context, cfg *config.Config) (bool, string) {
	if !cfg.Moka.Enabled {
		return true, e.t("CliDoctorMokaDisabled")
	}
	if ok, why := cfg.MokaConfigured(); !ok {
		return false, why
	}
	if cfg.Moka.API == config.MokaOAuth {
		// The grant lives in the agent's database: ask the running agent.
		st, err := localapi.NewClient(cfg.LocalAPI.Listen, nil).Status(ctx)
		if err != nil {
			return false, e.t("CliDoctorMokaNoCheck", map[string]any{"Error": e.errText(err)})
		}
		switch o := st.Moka.OAuth; {
		case st.Moka.NeedsAuthorization || o == nil || !o.Connected:
			return false, e.t("CliDoctorMokaNotAuthorized")
		default:
			return true, e.t("CliDoctorMokaAuthorized", map[string]any{"Business": o.BusinessID})
		}
	}
	c := apikey.NewClient(apikey.ClientConfig{
		BaseURL: cfg.Moka.BaseURL, APIKey: cfg.Moka.APIKey.Value(), BusinessID: cfg.Moka.BusinessID,
		RequestsPerMinute: cfg.Moka.RequestsPerMinute,
	}, apikey.ClientOptions{MaxRetries: 1})
	outlets, err := c.Outlets(ctx)
	if err != nil {
		if errors.Is(err, apikey.ErrUnauthorized) {
			return false, e.t("CliDoctorMokaKeyRejected")
		}
		return false, err.Error()
	}
	names := make([]string, 0, len(outlets))
	for _, o := range outlets {
		names = append(names, o.Name)
	}
	return true, e.n("CliDoctorMokaOutlets", int64(len(outlets)), map[string]any{"Names": strings.Join(names, ", ")})
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
