package cli

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
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
	fs, cfgFlag := e.flags("moka connect", "Connect the agent to the Moka Open API (moka.api = \"oauth\"): open Moka's\n"+
		"authorize page in the browser, sign in with the Moka owner's account, and wait until the agent\n"+
		"holds the authorization. The address is printed too, for a PC whose browser cannot be opened\n"+
		"from here; it must be opened on this PC, since Moka sends the browser back to the agent.")
	noBrowser := fs.Bool("no-browser", false, "only print the address; do not open a browser")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the authorization")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	cfg, err := config.Load(configPath(*cfgFlag))
	if err != nil {
		return e.fail(err)
	}
	if !cfg.Moka.Enabled || cfg.Moka.API != config.MokaOAuth {
		return e.fail(fmt.Errorf("moka connect is for the Moka Open API: set moka.enabled = true and moka.api = \"oauth\" (now %q) in %s", cfg.Moka.API, cfg.Path))
	}
	c := localapi.NewClient(cfg.LocalAPI.Listen, nil)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	before, err := c.Status(sctx)
	cancel()
	if errors.Is(err, localapi.ErrNotRunning) {
		return e.fail(fmt.Errorf("%w: start it first (`pwbi-agent start`, or `pwbi-agent run`)", err))
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
	fmt.Fprintf(e.stdout, "Open this address in a browser on this PC and sign in with the Moka owner's account:\n\n  %s\n\n", a.AuthorizeURL)
	if !*noBrowser {
		if err := openBrowser(a.AuthorizeURL); err != nil {
			fmt.Fprintf(e.stdout, "(The browser could not be opened: %v. Open the address yourself.)\n", err)
		} else {
			fmt.Fprintln(e.stdout, "Opening the browser…")
		}
	}
	fmt.Fprintln(e.stdout, "Waiting for Moka to send the browser back to the agent…")

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
				msg := "Moka is connected"
				if o.BusinessID != "" {
					msg += " (business " + o.BusinessID + ")"
				}
				fmt.Fprintln(e.stdout, msg+". The agent is fetching sales now.")
				return exitOK
			}
			if t := deref(o.LastErrorAt); t.After(prevErr) && o.LastError != "" {
				return e.fail(fmt.Errorf("moka authorization failed: %s", o.LastError))
			}
		}
		if time.Now().After(deadline) {
			return e.fail(errors.New("timed out waiting for the authorization; run `pwbi-agent moka connect` again"))
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
