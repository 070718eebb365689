// Package cli implements the pwbi-agent command line (SPEC §2). Every
// command except run talks to the running agent through the local API
// client, the same one the tray uses.
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
	"strings"
	"syscall"
	"time"

	"github.com/pwbi/edge-agent/agent"
	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/service"
	"github.com/pwbi/edge-agent/agent/version"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

type command struct {
	name  string
	usage string
	run   func(ctx context.Context, e *env, args []string) int
}

type env struct {
	stdout, stderr io.Writer
}

var commands = []command{
	{"run", "run the agent in the foreground (what the service runs)", cmdRun},
	{"install", "install the OS service (automatic start, restart on failure)", serviceCmd("install")},
	{"uninstall", "remove the OS service (the config and data stay)", serviceCmd("uninstall")},
	{"start", "start the OS service", serviceCmd("start")},
	{"stop", "stop the OS service", serviceCmd("stop")},
	{"restart", "restart the OS service", serviceCmd("restart")},
	{"status", "show whether the OS service runs, and the agent's state", cmdStatus},
	{"sync", "ask the running agent to poll Moka and flush upstream now (--wait: until done)", cmdSync},
	{"import", "historical import: --since YYYY-MM-DD [--outlet ID] [--sink NAME] (at most 180 days back)", cmdImport},
	{"config check", "validate the configuration file; print every problem with file:line and key", cmdConfigCheck},
	{"tablet", "checkout tablets: tablet add NAME (prints its token once) | tablet list | tablet remove NAME", cmdTablet},
	{"moka connect", "Moka Open API (moka.api = \"oauth\"): authorize the agent in the browser", cmdMokaConnect}, // mokaconnect.go
	{"queue", "the buffer: queue stats | queue dead | queue retry [ID…|--all], each with [--sink NAME]", cmdQueue},
	{"doctor", "check config, clock, disk, Moka credentials and upstream reachability", cmdDoctor},
	{"version", "print the version", cmdVersion},
}

// Main runs the command line with args (without the program name) and
// returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr}
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
	fmt.Fprintf(stderr, "pwbi-agent: unknown command %q\n\n", strings.Join(args, " "))
	e.usage(stderr)
	return exitUsage
}

func (e *env) usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: pwbi-agent <command> [--config PATH] [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.usage)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Without --config: $PWBI_AGENT_CONFIG, else %s.\n", config.DefaultPath())
	fmt.Fprintln(w, "Run 'pwbi-agent <command> --help' for a command's flags.")
}

// flags returns a FlagSet for a command with the shared --config flag.
func (e *env) flags(name, summary string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	cfg := fs.String("config", "", "configuration file (default "+config.DefaultPath()+")")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: pwbi-agent %s [flags]\n\n%s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs, cfg
}

// parse parses args; it returns a non-negative exit code when the command
// should end now (help or a usage error).
func parse(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
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
	fs, cfgFlag := e.flags("run", "Run the agent in the foreground until SIGINT or SIGTERM (or under the OS service manager).")
	if code := parse(fs, args); code >= 0 {
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
		fs, cfgFlag := e.flags(action, "Manage the OS service: "+action+". Needs Administrator (Windows) or root (Linux).")
		if code := parse(fs, args); code >= 0 {
			return code
		}
		path, err := filepath.Abs(configPath(*cfgFlag))
		if err != nil {
			return e.fail(err)
		}
		if action == "install" {
			// Refuse to install a service that would crash-loop on its config.
			if _, err := config.Load(path); err != nil {
				fmt.Fprintf(e.stderr, "pwbi-agent: not installing: %v\n", err)
				return exitError
			}
		}
		if err := service.Control(action, path); err != nil {
			return e.fail(err)
		}
		fmt.Fprintf(e.stdout, "service %s: %s done\n", service.Name, action)
		return exitOK
	}
}

func cmdStatus(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("status", "Show whether the OS service runs, and the running agent's state.")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	path, err := filepath.Abs(configPath(*cfgFlag))
	if err != nil {
		return e.fail(err)
	}
	svc, err := service.Status(path)
	if err != nil {
		svc = "unknown (" + err.Error() + ")"
	}
	fmt.Fprintf(e.stdout, "service: %s\n", svc)
	c, err := e.client(*cfgFlag)
	if err != nil {
		return e.fail(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := c.Status(sctx)
	if err != nil {
		fmt.Fprintf(e.stdout, "agent: %v\n", err)
		return exitError
	}
	fmt.Fprintf(e.stdout, "agent: %s (version %s, config generation %d)\n", st.State, st.Version, st.Config.Generation)
	for _, o := range st.Moka.Outlets {
		last := "never"
		if o.LastSyncAt != nil {
			last = localapi.Ago(time.Since(*o.LastSyncAt))
		}
		line := fmt.Sprintf("outlet %s (%s): last sync %s", o.Name, o.ID, last)
		if o.LastError != "" {
			line += ", error: " + o.LastError
		}
		fmt.Fprintln(e.stdout, line)
	}
	fmt.Fprintf(e.stdout, "queue: %d pending, %d dead letters\n", st.Queue.Pending, st.Queue.DeadLetter)
	for _, p := range st.Problems {
		fmt.Fprintf(e.stdout, "problem: %s\n", p)
	}
	return exitOK
}

func cmdVersion(ctx context.Context, e *env, args []string) int {
	fs, _ := e.flags("version", "Print the version.")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	fmt.Fprintf(e.stdout, "pwbi-agent %s\n", version.String())
	return exitOK
}

func cmdConfigCheck(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("config check", "Validate the configuration file and print every problem with file:line and key.")
	if code := parse(fs, args); code >= 0 {
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
			fmt.Fprintf(e.stderr, "%s: %d problem(s)\n", path, len(probs))
		} else {
			fmt.Fprintf(e.stderr, "pwbi-agent: %v\n", err)
		}
		return exitError
	}
	fmt.Fprintf(e.stdout, "%s: OK\n", cfg.Path)
	if ok, why := cfg.MokaConfigured(); cfg.Moka.Enabled && !ok {
		fmt.Fprintf(e.stdout, "note: %s\n", why)
	}
	if cfg.Upstream.URL == "" {
		fmt.Fprintln(e.stdout, "note: upstream.url is empty: records will only be buffered locally")
	}
	return exitOK
}

// client loads just enough of the configuration to find the local API.
func (e *env) client(cfgFlag string) (*localapi.Client, error) {
	cfg, err := config.Load(configPath(cfgFlag))
	if err != nil {
		return nil, err
	}
	return localapi.NewClient(cfg.LocalAPI.Listen, nil), nil
}

func cmdSync(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("sync", "Ask the running agent to poll Moka and flush the buffer upstream now.")
	wait := fs.Bool("wait", false, "wait until the poll is done and the buffer is sent, with progress")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	c, err := e.client(*cfgFlag)
	if err != nil {
		return e.fail(err)
	}
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = c.Sync(sctx)
	cancel()
	if err != nil {
		return e.fail(err)
	}
	if !*wait {
		fmt.Fprintln(e.stdout, "sync started")
		return exitOK
	}
	maxPending := 0
	return e.follow(ctx, c, func(st localapi.Status) (bool, int, int, string, error) {
		pending := int(st.Queue.Pending)
		maxPending = max(maxPending, pending)
		polled := !st.Moka.Enabled || !st.Moka.Configured ||
			(st.Moka.LastPollAt != nil && !st.Moka.LastPollAt.Before(start.Add(-time.Second)))
		if st.Upstream.Configured && !st.Upstream.Online && st.Upstream.LastError != "" && polled {
			return true, maxPending - pending, maxPending, "", fmt.Errorf("cannot reach the upstream (%s); %d record(s) stay in the buffer and are sent when it is back", st.Upstream.LastError, pending)
		}
		if !polled {
			return false, 0, max(maxPending, 1), "polling Moka", nil
		}
		sent := !st.Upstream.Configured || pending == 0
		if sent {
			for _, o := range st.Moka.Outlets {
				if o.LastError != "" {
					return true, maxPending, max(maxPending, 1), "", fmt.Errorf("outlet %s: %s", o.ID, o.LastError)
				}
			}
		}
		return sent, maxPending - pending, max(maxPending, 1), fmt.Sprintf("sending (%d waiting)", pending), nil
	})
}

// maxImportDays is how far back an import may reach (the Moka guide's limit).
const maxImportDays = 180

func cmdImport(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("import", "Import past Moka transactions through the running agent, with progress.")
	since := fs.String("since", "", "first day to import, YYYY-MM-DD (at most 180 days back)")
	outlet := fs.String("outlet", "", "import only this outlet id (default: every outlet)")
	sink := fs.String("sink", "", "re-fetch for this sink only (upstream, nats, jurnal, …): it gets the history again, the other sinks get only what is new or changed")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	cfg, err := config.Load(configPath(*cfgFlag))
	if err != nil {
		fmt.Fprintf(e.stderr, "pwbi-agent: %v\n", err)
		return exitError
	}
	loc, err := time.LoadLocation(cfg.Moka.Timezone)
	if err != nil {
		fmt.Fprintf(e.stderr, "pwbi-agent: moka.timezone: %v\n", err)
		return exitError
	}
	day, err := time.ParseInLocation(time.DateOnly, *since, loc)
	if err != nil {
		fmt.Fprintln(e.stderr, "pwbi-agent: --since must be a date like 2026-01-31")
		fs.Usage()
		return exitUsage
	}
	today := time.Now().In(loc)
	if day.After(today) {
		fmt.Fprintln(e.stderr, "pwbi-agent: --since is in the future")
		return exitUsage
	}
	if day.Before(today.AddDate(0, 0, -maxImportDays)) {
		fmt.Fprintf(e.stderr, "pwbi-agent: --since reaches back more than %d days\n", maxImportDays)
		return exitUsage
	}
	c := localapi.NewClient(cfg.LocalAPI.Listen, nil)
	if err := c.Import(ctx, localapi.ImportRequest{Since: *since, OutletID: *outlet, Sink: *sink}); err != nil {
		fmt.Fprintf(e.stderr, "pwbi-agent: %v\n", err)
		return exitError
	}
	return e.follow(ctx, c, func(st localapi.Status) (done bool, cur, total int, desc string, err error) {
		imp := st.Moka.Import
		if imp == nil {
			return false, 0, 1, "waiting", nil
		}
		if imp.Error != "" {
			return true, imp.DaysDone, imp.DaysTotal, "", errors.New(imp.Error)
		}
		return !imp.Running, imp.DaysDone, imp.DaysTotal, fmt.Sprintf("importing (%d records)", imp.Records), nil
	})
}

// fail prints err and returns the error exit code.
func (e *env) fail(err error) int {
	fmt.Fprintf(e.stderr, "pwbi-agent: %v\n", err)
	return exitError
}
