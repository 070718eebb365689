// Command pwbi-tray is the PWBI Edge Agent's system-tray program, started
// per user at login (SPEC §9). It shows the agent's state and offers "Sync
// now", pause/resume and shortcuts; it talks to the agent only through the
// local API. The behaviour is in package tray, the systray glue in
// cmd/pwbi-tray/internal/systrayui; this is flags and wiring.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/version"
	"github.com/pwbi/edge-agent/cmd/pwbi-tray/internal/systrayui"
	"github.com/pwbi/edge-agent/internal/i18n"
	"github.com/pwbi/edge-agent/tray"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("pwbi-tray", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// The help is in the desktop's language: the config file, which may
	// set agent.language, is read after the flags.
	p := i18n.New(i18n.OSLanguage())
	cfgPath := fs.String("config", "", p.T("TrayFlagConfig", map[string]any{"Env": config.EnvPath, "Path": config.DefaultPath()}))
	apiAddr := fs.String("api", "", p.T("TrayFlagAPI"))
	logPath := fs.String("log", defaultLogPath(), p.T("TrayFlagLog"))
	poll := fs.Duration("poll", 3*time.Second, p.T("TrayFlagPoll"))
	debug := fs.Bool("debug", false, p.T("TrayFlagDebug"))
	showVersion := fs.Bool("version", false, p.T("TrayFlagVersion"))
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), p.T("TrayUsage"))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stderr, "pwbi-tray", version.String())
		return 0
	}

	log, closeLog := newLogger(*logPath, *debug, stderr)
	defer closeLog()

	lock, err := tray.AcquireLock()
	if errors.Is(err, tray.ErrAlreadyRunning) {
		log.Info("Another pwbi-tray is running for this user; exiting")
		return 0
	}
	if err != nil {
		// Better two icons than none.
		log.Warn("Cannot check for another pwbi-tray", "err", err)
	} else {
		defer lock.Release()
	}

	settings, err := tray.LoadSettings(*cfgPath)
	switch {
	case errors.Is(err, iofs.ErrPermission):
		// The normal case for a desktop user on Linux: the file holds
		// secrets and is readable by root and the service only.
		log.Info("The agent's config file is not readable by this user; using the default local API address", "config", settings.ConfigPath)
	case err != nil:
		log.Warn("Cannot read the agent's config file", "err", err)
	}
	if *apiAddr != "" {
		settings.APIAddr = *apiAddr
	}
	client := localapi.NewClient(settings.APIAddr, &http.Client{Timeout: 5 * time.Second})
	log.Info("Tray starting", "version", version.String(), "api", client.BaseURL(),
		"config", settings.ConfigPath, "logs", settings.LogsDir, "pid", os.Getpid())

	app := tray.New(tray.Options{
		Client:     client,
		BaseURL:    client.BaseURL(),
		ConfigPath: settings.ConfigPath,
		LogsDir:    settings.LogsDir,
		Open:       tray.DesktopOpener{},
		Quit:       systrayui.Quit,
		Log:        log,
		Language:   settings.Language,
		Interval:   *poll,
	})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := systrayui.Run(ctx, app); err != nil {
		log.Error("Tray failed", "err", err)
		return 1
	}
	log.Info("Tray stopped")
	return 0
}

// defaultLogPath is where the tray logs when nobody sees its standard
// error: on Windows (a GUI program has none) %LOCALAPPDATA%\PWBI\tray.log.
// Elsewhere the desktop session captures standard error.
func defaultLogPath() string {
	if runtime.GOOS != "windows" {
		return ""
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "PWBI", "tray.log")
}

// Rotation of the tray's log file (lumberjack, as the agent's own log):
// the tray logs state changes only, so a megabyte is weeks of history, and
// one older file is kept beside it (tray-<UTC time>.log).
const (
	maxLogSizeMB  = 1
	maxLogBackups = 1
)

// newLogger logs to the file at path, rotated, or to stderr when path is
// "" or the file cannot be opened (said once on stderr). The returned
// function closes the file.
func newLogger(path string, debug bool, stderr io.Writer) (*slog.Logger, func()) {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if debug {
		opts.Level = slog.LevelDebug
	}
	w, closeFn := stderr, func() {}
	if path != "" {
		os.MkdirAll(filepath.Dir(path), 0o700) // lumberjack would make it 0o755
		lj := &lumberjack.Logger{Filename: path, MaxSize: maxLogSizeMB, MaxBackups: maxLogBackups}
		// lumberjack opens the file (and rotates one already over the
		// size) at the first write: do it now, so that a file that cannot
		// be opened is said and standard error used instead.
		if _, err := lj.Write(nil); err == nil {
			w, closeFn = lj, func() { lj.Close() }
		} else {
			fmt.Fprintf(stderr, "pwbi-tray: log file: %v\n", err)
		}
	}
	return slog.New(slog.NewTextHandler(w, opts)), closeFn
}
