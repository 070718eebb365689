// Package cli implements the pwbi-agent command line (SPEC §2). Every
// command except run talks to the running agent through the local API
// client, the same one the tray uses.
//
// What a person reads (messages, errors, --help) is in Bahasa Indonesia or
// English (lang.go; the texts are internal/i18n's cli catalogue).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pwbi/edge-agent/agent"
	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/service"
	"github.com/pwbi/edge-agent/agent/version"
	"github.com/pwbi/edge-agent/internal/i18n"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

type command struct {
	name  string
	usage string // the catalogue id of the one-line description
	run   func(ctx context.Context, e *env, args []string) int
}

type env struct {
	stdout, stderr io.Writer
	// p is the language of the texts (lang.go); nil is English.
	p *i18n.Printer
}

var commands = []command{
	{"run", "CliCmdRun", cmdRun},
	{"install", "CliCmdInstall", serviceCmd("install")},
	{"uninstall", "CliCmdUninstall", serviceCmd("uninstall")},
	{"start", "CliCmdStart", serviceCmd("start")},
	{"stop", "CliCmdStop", serviceCmd("stop")},
	{"restart", "CliCmdRestart", serviceCmd("restart")},
	{"status", "CliCmdStatus", cmdStatus},
	{"sync", "CliCmdSync", cmdSync},
	{"import", "CliCmdImport", cmdImport},
	{"config check", "CliCmdConfigCheck", cmdConfigCheck},
	{"tablet", "CliCmdTablet", cmdTablet},
	{"moka connect", "CliCmdMokaConnect", cmdMokaConnect}, // mokaconnect.go
	{"queue", "CliCmdQueue", cmdQueue},
	{"doctor", "CliCmdDoctor", cmdDoctor},
	{"version", "CliCmdVersion", cmdVersion},
}

// Main runs the command line with args (without the program name) and
// returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, p: i18n.New(commandLanguage(args))}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		e.usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c.run(ctx, e, args[len(words):])
		}
	}
	fmt.Fprintf(stderr, "pwbi-agent: %s\n\n", e.t("CliUnknownCommand", map[string]any{"Command": strconv.Quote(strings.Join(args, " "))}))
	e.usage(stderr)
	return exitUsage
}

func (e *env) usage(w io.Writer) {
	fmt.Fprintln(w, e.t("CliUsage"))
	fmt.Fprintln(w)
	fmt.Fprintln(w, e.t("CliUsageCommands"))
	for _, c := range commands {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, e.t(c.usage))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, e.t("CliUsageConfig", map[string]any{"Path": config.DefaultPath()}))
	fmt.Fprintln(w, e.t("CliUsageMore"))
}

// flags returns a FlagSet for a command with the shared --config flag;
// summary is the command's description, already in e's language.
func (e *env) flags(name, summary string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	cfg := fs.String("config", "", e.t("CliFlagConfig", map[string]any{"Path": config.DefaultPath()}))
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\n%s\n\n%s\n", e.t("CliCommandUsage", map[string]any{"Command": name}), summary, e.t("CliFlagsHeading"))
		printDefaults(fs, e.printer())
	}
	return fs, cfg
}

// parse parses args; it returns a non-negative exit code when the command
// should end now (help or a usage error).
func (e *env) parse(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(fs.Output(), e.t("CliUnexpectedArgument", map[string]any{"Arg": strconv.Quote(fs.Arg(0))}))
		fs.Usage()
		return exitUsage
	}
	return -1
}

func configPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return config.DefaultPath()
}

func cmdRun(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("run", e.t("CliHelpRun"))
	if code := e.parse(fs, args); code >= 0 {
		return code
	}
	path, err := filepath.Abs(configPath(*cfgFlag))
	if err != nil {
		return e.fail(err)
	}
	run := func(ctx context.Context) error {
		return agent.Run(ctx, agent.Options{ConfigPath: path, Stderr: e.stderr})
	}
	if !service.Interactive() {
		// Started by the Windows SCM or an init system: report running at
		// once and let the service manager stop us.
		if err := service.RunService(path, slog.New(slog.NewTextHandler(e.stderr, nil)), run); err != nil {
			return e.fail(err)
		}
		return exitOK
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		return e.fail(err)
	}
	return exitOK
}

// serviceCmd returns the command that performs a service action.
func serviceCmd(action string) func(context.Context, *env, []string) int {
	return func(ctx context.Context, e *env, args []string) int {
		fs, cfgFlag := e.flags(action, e.t("CliHelpService", map[string]any{"Action": action}))
		if code := e.parse(fs, args); code >= 0 {
			return code
		}
		path, err := filepath.Abs(configPath(*cfgFlag))
		if err != nil {
			return e.fail(err)
		}
		if action == "install" {
			// Refuse to install a service that would crash-loop on its config.
			if _, err := config.Load(path); err != nil {
				fmt.Fprintf(e.stderr, "pwbi-agent: %s\n", e.t("CliNotInstalling", map[string]any{"Error": e.errText(err)}))
				return exitError
			}
		}
		if err := service.Control(action, path); err != nil {
			return e.fail(err)
		}
		fmt.Fprintln(e.stdout, e.t("CliServiceDone", map[string]any{"Service": service.Name, "Action": action}))
		return exitOK
	}
}

// serviceStates are the catalogue ids of the service manager's words.
var serviceStates = map[string]string{
	service.StatusRunning: "CliServiceRunning", service.StatusStopped: "CliServiceStopped",
	service.StatusNotInstalled: "CliServiceNotInstalled", service.StatusUnknown: "CliServiceUnknown",
}

func cmdStatus(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("status", e.t("CliHelpStatus"))
	if code := e.parse(fs, args); code >= 0 {
		return code
	}
	path, err := filepath.Abs(configPath(*cfgFlag))
	if err != nil {
		return e.fail(err)
	}
	svc, err := service.Status(path)
	if err != nil {
		svc = e.t("CliStatusServiceUnknown", map[string]any{"Error": err.Error()})
	} else if id, ok := serviceStates[svc]; ok {
		svc = e.t(id)
	}
	fmt.Fprintln(e.stdout, e.t("CliStatusService", map[string]any{"State": svc}))
	c := e.client(*cfgFlag)
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := c.Status(sctx)
	if err != nil {
		fmt.Fprintln(e.stdout, e.t("CliStatusAgentError", map[string]any{"Error": e.errText(err)}))
		if errors.Is(err, localapi.ErrNotRunning) {
			fmt.Fprintln(e.stdout, e.t("CliStartHint"))
		}
		return exitError
	}
	fmt.Fprintln(e.stdout, e.t("CliStatusAgent", map[string]any{"State": stateWord(e.printer(), st.State),
		"Version": st.Version, "Generation": st.Config.Generation}))
	if st.Config.Error != "" {
		since := ""
		if st.Config.LoadedAt != nil {
			since = e.t("CliPreviousSince", map[string]any{"When": st.Config.LoadedAt.Local().Format("2006-01-02 15:04")})
		}
		fmt.Fprintln(e.stdout, e.t("CliPreviousSettings", map[string]any{"Since": since, "Error": st.Config.Error}))
	}
	for _, o := range st.Moka.Outlets {
		last := e.t("CommonNever")
		if o.LastSyncAt != nil {
			last = e.printer().Ago(time.Since(*o.LastSyncAt))
		}
		line := e.t("CliStatusOutlet", map[string]any{"Name": o.Name, "ID": o.ID, "When": last})
		if o.LastError != "" {
			line += e.t("CliStatusOutletError", map[string]any{"Error": o.LastError})
		}
		fmt.Fprintln(e.stdout, line)
	}
	fmt.Fprintln(e.stdout, e.t("CliStatusQueue", map[string]any{"Pending": e.num(st.Queue.Pending), "Dead": e.num(st.Queue.DeadLetter)}))
	for _, p := range problemTexts(e.printer(), st) {
		fmt.Fprintln(e.stdout, e.t("CliStatusProblem", map[string]any{"Text": p}))
	}
	return exitOK
}

func cmdVersion(ctx context.Context, e *env, args []string) int {
	fs, _ := e.flags("version", e.t("CliHelpVersion"))
	if code := e.parse(fs, args); code >= 0 {
		return code
	}
	fmt.Fprintf(e.stdout, "pwbi-agent %s\n", version.String())
	return exitOK
}

func cmdConfigCheck(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("config check", e.t("CliHelpConfigCheck"))
	if code := e.parse(fs, args); code >= 0 {
		return code
	}
	path := configPath(*cfgFlag)
	cfg, err := config.Load(path)
	if err != nil {
		var probs config.Problems
		if errors.As(err, &probs) {
			for _, p := range probs {
				fmt.Fprintln(e.stderr, p.Error())
			}
			fmt.Fprintln(e.stderr, e.n("CliConfigProblems", int64(len(probs)), map[string]any{"Path": path}))
		} else {
			fmt.Fprintf(e.stderr, "pwbi-agent: %v\n", err)
		}
		return exitError
	}
	fmt.Fprintln(e.stdout, e.t("CliConfigOK", map[string]any{"Path": cfg.Path}))
	if ok, why := cfg.MokaConfigured(); cfg.Moka.Enabled && !ok {
		fmt.Fprintln(e.stdout, e.t("CliNote", map[string]any{"Text": why}))
	}
	if cfg.Upstream.URL == "" {
		fmt.Fprintln(e.stdout, e.t("CliNoteNoUpstream"))
	}
	return exitOK
}

// client returns a client of the running agent's local API (reach.go:
// it works with a broken config file too).
func (e *env) client(cfgFlag string) *localapi.Client {
	return localapi.NewClient(e.reach(cfgFlag).listen, nil)
}

func cmdSync(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("sync", e.t("CliHelpSync"))
	wait := fs.Bool("wait", false, e.t("CliFlagSyncWait"))
	if code := e.parse(fs, args); code >= 0 {
		return code
	}
	c := e.client(*cfgFlag)
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err := c.Sync(sctx)
	cancel()
	if err != nil {
		return e.fail(err)
	}
	if !*wait {
		fmt.Fprintln(e.stdout, e.t("CliSyncStarted"))
		return exitOK
	}
	maxPending := 0
	return e.follow(ctx, c, func(st localapi.Status) progress {
		pending := int(st.Queue.Pending)
		maxPending = max(maxPending, pending)
		polled := !st.Moka.Enabled || !st.Moka.Configured ||
			(st.Moka.LastPollAt != nil && !st.Moka.LastPollAt.Before(start.Add(-time.Second)))
		// Every sink that delivers counts, not only the first (the
		// upstream): records pending for any of them are not sent yet.
		sent := true
		var down *localapi.SinkStatus
		for i, s := range st.Sinks {
			if !s.Enabled || !s.Configured {
				continue
			}
			sent = sent && s.Pending == 0
			if down == nil && !s.Online && s.LastError != "" {
				down = &st.Sinks[i]
			}
		}
		if down != nil && polled {
			return progress{Done: true, Cur: maxPending - pending, Total: maxPending,
				Err: errors.New(e.n("CliSyncSinkDown", int64(pending), map[string]any{"Sink": down.Name, "Error": down.LastError}))}
		}
		if !polled {
			return progress{Total: max(maxPending, 1), Desc: e.t("CliProgressPolling")}
		}
		if sent {
			for _, o := range st.Moka.Outlets {
				if o.LastError != "" {
					return progress{Done: true, Cur: maxPending, Total: max(maxPending, 1),
						Err: errors.New(e.t("CliSyncOutletError", map[string]any{"ID": o.ID, "Error": o.LastError}))}
				}
			}
		}
		p := progress{Done: sent, Cur: maxPending - pending, Total: max(maxPending, 1),
			Desc: e.n("CliProgressSending", int64(pending))}
		if sent {
			p.Summary = e.t("CliSyncDone", map[string]any{"Outlets": e.num(int64(len(st.Moka.Outlets))),
				"Count": e.num(int64(maxPending)), "Took": roundDuration(time.Since(start)).String()})
		}
		return p
	})
}

// roundDuration renders a duration for a person: "850ms", "12s", "3m4s".
func roundDuration(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// maxImportDays is how far back an import may reach (the Moka guide's limit).
const maxImportDays = 180

func cmdImport(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("import", e.t("CliHelpImport"))
	since := fs.String("since", "", e.t("CliFlagImportSince"))
	outlet := fs.String("outlet", "", e.t("CliFlagImportOutlet"))
	sink := fs.String("sink", "", e.t("CliFlagImportSink"))
	if code := e.parse(fs, args); code >= 0 {
		return code
	}
	r := e.reach(*cfgFlag)
	day, err := parseSinceIn(e.printer(), *since, time.Now().In(r.loc), maxImportDays)
	if err != nil {
		fmt.Fprintf(e.stderr, "pwbi-agent: %v\n", err)
		if _, ok := err.(*sinceSyntaxError); ok {
			fs.Usage()
		}
		return exitUsage
	}
	c := localapi.NewClient(r.listen, nil)
	req := localapi.ImportRequest{Since: day.Format(time.DateOnly), OutletID: *outlet, Sink: *sink}
	if err := c.Import(ctx, req); err != nil {
		return e.fail(err)
	}
	return e.follow(ctx, c, importProgressIn(e.printer(), time.Now()))
}

// importProgress is importProgressIn in English.
func importProgress(start time.Time) progressFunc {
	return importProgressIn(i18n.New(i18n.English), start)
}

// importProgressIn follows an import started at start (the CLI's clock;
// the agent's start and finish times give the duration when present),
// in p's language.
func importProgressIn(p *i18n.Printer, start time.Time) progressFunc {
	e := &env{p: p}
	return func(st localapi.Status) progress {
		imp := st.Moka.Import
		if imp == nil {
			return progress{Desc: e.t("CliImportWaiting")}
		}
		if imp.Error != "" {
			return progress{Done: true, Cur: imp.DaysDone, Total: imp.DaysTotal, Err: errors.New(imp.Error)}
		}
		pr := progress{Done: !imp.Running, Cur: imp.DaysDone, Total: imp.DaysTotal,
			Desc: e.n("CliProgressImporting", imp.Records)}
		if pr.Done {
			took := time.Since(start)
			if imp.FinishedAt != nil && imp.StartedAt != nil {
				took = imp.FinishedAt.Sub(*imp.StartedAt)
			}
			pr.Summary = e.t("CliImportDone", map[string]any{"Records": e.num(imp.Records), "Outlets": e.num(int64(imp.Outlets)),
				"Took": roundDuration(took).String(), "New": e.num(imp.New), "Changed": e.num(imp.Changed),
				"Unchanged": e.num(max(imp.Records-imp.New-imp.Changed, 0))})
		}
		return pr
	}
}

// fail prints err (with how to start the agent when it is not running)
// and returns the error exit code.
func (e *env) fail(err error) int {
	fmt.Fprintf(e.stderr, "pwbi-agent: %s\n", e.errText(err))
	if errors.Is(err, localapi.ErrNotRunning) {
		fmt.Fprintln(e.stderr, e.t("CliStartHint"))
	}
	return exitError
}
