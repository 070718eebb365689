package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kardianos/service"
)

// defaultStopTimeout is StopTimeout's value: SPEC §11 asks that a Windows
// service stop finishes within 20 s. It is also the WaitToKillServiceTimeout
// default kardianos assumes (KB 146092) when its own Stop waits.
const defaultStopTimeout = 20 * time.Second

// StopTimeout bounds how long a stop waits for the agent to return after its
// context is canceled. When it passes, the process goes on to exit anyway:
// the buffer is crash-safe, and a service manager that waits longer kills
// the process without a word in the log. Set it before RunService.
var StopTimeout = defaultStopTimeout

var (
	// ErrStopTimeout is returned by RunService when the agent did not
	// return within StopTimeout of being told to stop.
	ErrStopTimeout = errors.New("agent did not stop in time")
	// ErrExitedUnexpectedly is the failure of an agent function that
	// returned nil without being told to stop.
	ErrExitedUnexpectedly = errors.New("agent stopped by itself")
)

// RunService runs fn under the OS service manager, or in the foreground
// when the program runs interactively, until the service manager stops it
// or, in the foreground, until SIGINT or SIGTERM (Ctrl+C, or closing the
// console on Windows). The caller must exit with a non-zero status when
// RunService returns an error.
//
// fn is the agent: it runs until its context is canceled and then returns
// nil (or context.Canceled). RunService reports "started" to the service
// manager as soon as fn is launched, without waiting for it: fn opens its
// database and replays its backlog while the service already counts as
// running (Windows kills a service that does not report RUNNING within
// 30 s). A stop cancels fn's context and waits at most StopTimeout; if fn
// has not returned by then RunService returns ErrStopTimeout.
//
// If fn returns by itself, the agent has failed (an error returned, or
// ErrExitedUnexpectedly for nil). RunService then returns that error, so
// that the process exits non-zero and systemd's Restart=on-failure applies.
// Under the Windows service manager there is no way to return: Run only
// ends on a stop request, and a service that reports STOPPED is not
// restarted. The process therefore exits at once with status 1 without
// reporting STOPPED, which the SCM counts as a failure, and the recovery
// action (restart after 5 s) starts the agent again.
//
// Lifecycle events (starting, started, stopping, stopped, failed) go to log
// and, when running under a service manager, to the system log as well: the
// Windows Event Log (source pwbi-agent) or syslog. On Windows the working
// directory is switched to the executable's directory first (Windows starts
// services in System32).
func RunService(configPath string, log *slog.Logger, fn func(ctx context.Context) error) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := newProgram(fn, log)
	if service.Interactive() {
		p.info("Service starting", "platform", service.Platform(), "interactive", true)
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sigs)
		return runForeground(p, sigs)
	}

	cfg, err := Config(configPath)
	if err != nil {
		return err
	}
	if runtime.GOOS == "windows" {
		// Windows ignores Config.WorkingDirectory.
		if err := os.Chdir(cfg.WorkingDirectory); err != nil {
			log.Warn("Cannot change to the executable's directory", "dir", cfg.WorkingDirectory, "err", err)
		}
		// The only way out of svc.Run that makes the SCM restart us.
		p.exitOnFailure = true
	}
	// kardianos's Unix Run waits for SIGINT/SIGTERM, then calls Stop; this
	// also ends the wait when the agent fails by itself.
	cfg.Option["RunWait"] = func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sigs)
		select {
		case <-sigs:
		case <-p.failed:
		}
	}
	s, err := service.New(p, cfg)
	if err != nil {
		return fmt.Errorf("service manager: %w", err)
	}
	if osLog, err := s.SystemLogger(nil); err != nil {
		log.Warn("System log unavailable; lifecycle events go to the agent log only", "err", err)
	} else {
		p.osLog = osLog
	}
	p.info("Service starting", "platform", s.Platform(), "config", cfg.Arguments[len(cfg.Arguments)-1])
	if err := s.Run(); err != nil {
		p.error("Service manager failed", err)
		return fmt.Errorf("run service: %w", err)
	}
	return p.result()
}

// runForeground is the service lifecycle without a service manager: start,
// wait for a signal or a failure, stop.
func runForeground(p *program, sigs <-chan os.Signal) error {
	if err := p.Start(nil); err != nil {
		return err
	}
	select {
	case sig := <-sigs:
		p.log.Info("Signal received", "signal", sig.String())
	case <-p.failed:
	}
	if err := p.Stop(nil); err != nil {
		return err
	}
	return p.result()
}

// program is the kardianos service.Interface around the agent function.
// Start and Stop are called once each, in that order, possibly from
// different goroutines (Windows calls them from the SCM's thread).
type program struct {
	fn          func(ctx context.Context) error
	log         *slog.Logger
	osLog       service.Logger // nil: none
	stopTimeout time.Duration

	// exitOnFailure: exit the process with exit(1) when fn fails by itself,
	// instead of closing failed.
	exitOnFailure bool
	exit          func(code int)

	cancel   context.CancelFunc
	done     chan struct{} // closed when fn has returned; err is set then
	err      error
	failed   chan struct{} // closed when fn returned by itself
	stopping atomic.Bool

	mu      sync.Mutex
	stopErr error // ErrStopTimeout, set by Stop
}

var _ service.Interface = (*program)(nil)

func newProgram(fn func(ctx context.Context) error, log *slog.Logger) *program {
	return &program{
		fn:          fn,
		log:         log,
		stopTimeout: StopTimeout,
		exit:        os.Exit,
		done:        make(chan struct{}),
		failed:      make(chan struct{}),
	}
}

// Start launches the agent and returns at once.
func (p *program) Start(service.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go p.run(ctx)
	p.info("Service started")
	return nil
}

func (p *program) run(ctx context.Context) {
	err := p.fn(ctx)
	if err == nil && !p.stopping.Load() {
		err = ErrExitedUnexpectedly
	}
	p.err = err
	close(p.done)
	if p.stopping.Load() {
		return
	}
	p.error("Service failed", err)
	if p.exitOnFailure {
		p.exit(1)
		return // only a test's exit returns
	}
	close(p.failed)
}

// Stop cancels the agent and waits for it at most stopTimeout. It always
// returns nil: on Windows an error would be reported as a failed stop, and
// a late agent is dealt with by exiting the process.
func (p *program) Stop(service.Service) error {
	select {
	case <-p.done:
		// The agent failed by itself; run has logged it.
		return nil
	default:
	}
	p.stopping.Store(true)
	p.info("Service stopping")
	p.cancel()
	timer := time.NewTimer(p.stopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		if p.err != nil && !errors.Is(p.err, context.Canceled) {
			p.error("Service stopped with an error", p.err)
		} else {
			p.info("Service stopped")
		}
	case <-timer.C:
		err := fmt.Errorf("%w: still running %v after the stop request", ErrStopTimeout, p.stopTimeout)
		p.mu.Lock()
		p.stopErr = err
		p.mu.Unlock()
		p.error("Service stop timed out", err)
	}
	return nil
}

// result is RunService's error once the lifecycle has ended.
func (p *program) result() error {
	p.mu.Lock()
	stopErr := p.stopErr
	p.mu.Unlock()
	if stopErr != nil {
		return stopErr
	}
	select {
	case <-p.done:
	default:
		return nil // never started
	}
	if p.err != nil && p.stopping.Load() && errors.Is(p.err, context.Canceled) {
		return nil
	}
	return p.err
}

func (p *program) info(msg string, args ...any) {
	p.log.Info(msg, args...)
	if p.osLog != nil {
		_ = p.osLog.Info(osLine(msg, args))
	}
}

func (p *program) error(msg string, err error) {
	p.log.Error(msg, "err", err)
	if p.osLog != nil {
		_ = p.osLog.Error(osLine(msg, []any{"err", err}))
	}
}

// osLine renders a message and its attributes as one line for the system
// log, which takes plain text: `Service started (platform=windows-service)`.
func osLine(msg string, args []any) string {
	line := Name + ": " + msg
	if len(args) == 0 {
		return line
	}
	line += " ("
	for i := 0; i+1 < len(args); i += 2 {
		if i > 0 {
			line += ", "
		}
		line += fmt.Sprintf("%v=%v", args[i], args[i+1])
	}
	return line + ")"
}
