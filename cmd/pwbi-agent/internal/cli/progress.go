package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/pwbi/edge-agent/agent/localapi"
)

// progressFunc reads a status snapshot: whether the operation is done, the
// progress so far, a short description, and its error if it failed.
type progressFunc func(localapi.Status) (done bool, cur, total int, desc string, err error)

// follow polls the agent's status and draws a progress bar until f says the
// operation is done.
func (e *env) follow(ctx context.Context, c *localapi.Client, f progressFunc) int {
	bar := progressbar.NewOptions(1,
		progressbar.OptionSetWriter(e.stderr),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
	)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := c.Status(sctx)
		cancel()
		if err != nil {
			fmt.Fprintf(e.stderr, "\npwbi-agent: %v\n", err)
			return exitError
		}
		done, cur, total, desc, ferr := f(st)
		if total > 0 {
			bar.ChangeMax(total)
		}
		bar.Describe(desc)
		_ = bar.Set(cur)
		if ferr != nil {
			fmt.Fprintf(e.stderr, "\npwbi-agent: %v\n", ferr)
			return exitError
		}
		if done {
			_ = bar.Finish()
			fmt.Fprintln(e.stdout, "done")
			return exitOK
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(e.stderr, "\npwbi-agent: interrupted; the agent goes on in the background")
			return exitError
		case <-tick.C:
		}
	}
}
