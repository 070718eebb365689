package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pwbi/edge-agent/agent"
	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink"
	"github.com/pwbi/edge-agent/agent/deliver/natssink"
	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/moka/apikey"
	"github.com/pwbi/edge-agent/agent/version"
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
	{"CliCheckNATS", (*env).checkNATS},
	{"CliCheckJurnal", (*env).checkJurnal},
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

// checkNATS connects to the NATS servers as the NATS sink does and looks
// its stream up (natssink.Probe): the credentials, TLS, the stream and
// whether its subjects capture the agent's, and the agent's position in it.
// Nothing is published.
func (e *env) checkNATS(ctx context.Context, cfg *config.Config) (bool, string) {
	if !cfg.NATS.Enabled {
		return true, e.t("CliDoctorSinkNotEnabled", map[string]any{"Key": "nats.enabled"})
	}
	if ok, _ := cfg.NATSConfigured(); !ok {
		return false, e.t("CliDoctorNatsNoURL")
	}
	nc := agent.NATSSinkConfig(cfg)
	res, err := natssink.Probe(ctx, nc, version.String())
	if err != nil {
		var pe *natssink.ProbeError
		if !errors.As(err, &pe) { // not expected: Probe words its errors
			return false, sink.Snippet([]byte(err.Error()), nc.Password, 400)
		}
		switch pe.Kind {
		case natssink.ProbeUnreachable:
			return false, e.t("CliDoctorCannotReach", map[string]any{"Host": natsHosts(nc.URLs), "Error": oneLine(pe.Cause, 200)})
		case natssink.ProbeNotCaptured:
			prefix := nc.SubjectPrefix
			if prefix == "" {
				prefix = natssink.DefaultSubjectPrefix
			}
			return false, e.t("CliDoctorNatsNotCaptured", map[string]any{"Stream": res.Stream, "Subject": pe.Subject, "Prefix": prefix})
		case natssink.ProbeNoAnswer:
			return false, e.t("CliDoctorNatsNoAnswer", map[string]any{"Stream": res.Stream, "Error": oneLine(pe.Cause, 200)})
		}
		return false, e.problem(pe.Problem)
	}
	detail := e.t("CliDoctorNatsServer", map[string]any{"Server": res.Server, "Version": res.ServerVersion})
	switch {
	case res.Missing:
		return true, detail + e.t("CliDoctorNatsWillCreate", map[string]any{"Stream": res.Stream})
	case res.Described:
		detail += e.n("CliDoctorNatsStream", int64(res.Replicas), map[string]any{"Stream": res.Stream})
		if !res.Atomic {
			detail += e.t("CliDoctorNatsNoAtomic")
		}
	default:
		detail += e.t("CliDoctorNatsStreamAnswers", map[string]any{"Stream": res.Stream})
	}
	if res.LastSeq == 0 {
		return true, detail + e.t("CliDoctorNatsNothingYet")
	}
	return true, detail + e.t("CliDoctorNatsLastSeq", map[string]any{"Seq": strconv.FormatUint(res.LastSeq, 10)})
}

// natsHosts names the NATS servers for a person: their host:port, joined
// (the URLs carry no credentials: config refuses them).
func natsHosts(urls []string) string {
	hosts := make([]string, 0, len(urls))
	for _, u := range urls {
		if !strings.Contains(u, "://") {
			u = "nats://" + u
		}
		if p, err := url.Parse(u); err == nil && p.Host != "" {
			hosts = append(hosts, p.Host)
		}
	}
	return strings.Join(hosts, ", ")
}

// checkJurnal sends Jurnal one signed read as the Jurnal sink would
// (jurnalsink.Probe): whether it answers, takes the credentials and the
// PC's clock, and has quota left. Nothing is created.
func (e *env) checkJurnal(ctx context.Context, cfg *config.Config) (bool, string) {
	if !cfg.Jurnal.Enabled {
		return true, e.t("CliDoctorSinkNotEnabled", map[string]any{"Key": "jurnal.enabled"})
	}
	if ok, _ := cfg.JurnalConfigured(); !ok {
		return false, e.t("CliDoctorJurnalNoCredentials")
	}
	host := hostOf(cfg.Jurnal.BaseURL)
	res, err := jurnalsink.Probe(ctx, agent.JurnalSinkConfig(cfg), &http.Client{})
	if err != nil {
		var pe *jurnalsink.ProbeError
		if !errors.As(err, &pe) { // not expected: Probe words its errors
			return false, sink.Snippet([]byte(err.Error()), cfg.Jurnal.ClientSecret.Value(), 400)
		}
		switch pe.Kind {
		case jurnalsink.ProbeUnreachable:
			return false, e.t("CliDoctorCannotReach", map[string]any{"Host": host, "Error": oneLine(pe.Cause, 200)})
		case jurnalsink.ProbeQuota:
			// When the sink tries again, in the reader's words.
			m := pe.Problem
			m.Params = maps.Clone(m.Params)
			m.Params["Until"] = e.clockTime(pe.Until)
			return false, e.problem(m)
		}
		return false, e.problem(pe.Problem)
	}
	detail := e.t("CliDoctorAnswered", map[string]any{"Host": host, "Code": res.Status,
		"Time": res.RoundTrip.Round(time.Millisecond).String()})
	if res.ClockKnown {
		return true, detail + e.t("CliDoctorClockSkew", map[string]any{"Skew": res.ClockOffset.String()})
	}
	return true, detail + e.t("CliDoctorNoDate")
}

// problem renders a sink's problem message in e's language, on one line.
func (e *env) problem(m sink.Message) string {
	if m.Code == "" {
		return oneLine(m.Text, 400)
	}
	return oneLine(e.printer().Msg(m.Code, m.Params), 400)
}

// clockTime is t for a person, in the PC's zone: its clock time ("14:05",
// as the sink's status words it), and its date after it when t is not
// today ("14:05 (8 Dec 2026)").
func (e *env) clockTime(t time.Time) string {
	t = t.Local()
	y, m, d := t.Date()
	if ny, nm, nd := time.Now().Date(); y == ny && m == nm && d == nd {
		return e.printer().Time(t)
	}
	return e.printer().Time(t) + " (" + e.printer().Date(t) + ")"
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
