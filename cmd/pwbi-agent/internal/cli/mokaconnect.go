package cli

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/localapi"
)

// connectPoll is how often `moka connect` asks the agent whether the
// authorization arrived.
const connectPoll = 500 * time.Millisecond

// cmdMokaConnect runs the Moka Open API authorization (SPEC §5.2) through
// the running agent: the agent makes the one-time state and the authorize
// URL; this command prints the URL, opens it in the browser, and waits
// until the agent reports the grant (Moka redirects the browser to the
// agent's /oauth/moka/callback, which exchanges the code).
func cmdMokaConnect(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("moka connect", e.t("CliHelpMokaConnect"))
	noBrowser := fs.Bool("no-browser", false, e.t("CliFlagMokaNoBrowser"))
	timeout := fs.Duration("timeout", 10*time.Minute, e.t("CliFlagMokaTimeout"))
	if code := e.parse(fs, args); code >= 0 {
		return code
	}
	cfg, err := config.Load(configPath(*cfgFlag))
	if err != nil {
		return e.fail(err)
	}
	if !cfg.Moka.Enabled || cfg.Moka.API != config.MokaOAuth {
		return e.fail(errors.New(e.t("CliMokaNotOAuth", map[string]any{"API": strconv.Quote(cfg.Moka.API), "Path": cfg.Path})))
	}
	c := localapi.NewClient(cfg.LocalAPI.Listen, nil)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	before, err := c.Status(sctx)
	cancel()
	if errors.Is(err, localapi.ErrNotRunning) {
		return e.fail(wrapText(err, e.t("CliStartAgentFirst", map[string]any{"Error": e.errText(err)})))
	}
	if err != nil {
		return e.fail(err)
	}
	var prevAuth, prevErr time.Time
	if o := before.Moka.OAuth; o != nil {
		prevAuth, prevErr = deref(o.AuthorizedAt), deref(o.LastErrorAt)
	}
	sctx, cancel = context.WithTimeout(ctx, 10*time.Second)
	a, err := c.MokaAuthorize(sctx)
	cancel()
	if err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "%s\n\n  %s\n\n", e.t("CliMokaOpenThis"), a.AuthorizeURL)
	if !*noBrowser {
		if err := openBrowser(a.AuthorizeURL); err != nil {
			fmt.Fprintln(e.stdout, e.t("CliMokaNoBrowser", map[string]any{"Error": err.Error()}))
		} else {
			fmt.Fprintln(e.stdout, e.t("CliMokaOpening"))
		}
	}
	fmt.Fprintln(e.stdout, e.t("CliMokaWaiting"))

	deadline := time.Now().Add(*timeout)
	if !a.ExpiresAt.IsZero() && a.ExpiresAt.Before(deadline) {
		deadline = a.ExpiresAt
	}
	tick := time.NewTicker(connectPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return e.fail(ctx.Err())
		case <-tick.C:
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := c.Status(sctx)
		cancel()
		if err == nil && st.Moka.OAuth != nil {
			o := st.Moka.OAuth
			if t := deref(o.AuthorizedAt); t.After(prevAuth) && !st.Moka.NeedsAuthorization {
				msg := e.t("CliMokaConnected")
				if o.BusinessID != "" {
					msg = e.t("CliMokaConnectedBusiness", map[string]any{"Business": o.BusinessID})
				}
				fmt.Fprintln(e.stdout, msg)
				return exitOK
			}
			if t := deref(o.LastErrorAt); t.After(prevErr) && o.LastError != "" {
				return e.fail(errors.New(e.t("CliMokaFailed", map[string]any{"Error": o.LastError})))
			}
		}
		if time.Now().After(deadline) {
			return e.fail(errors.New(e.t("CliMokaTimedOut")))
		}
	}
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// openBrowser opens url in the desktop's browser without waiting for it.
func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	case "darwin":
		cmd = exec.Command("open", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }() // reap it; its exit status says nothing useful
	return nil
}
