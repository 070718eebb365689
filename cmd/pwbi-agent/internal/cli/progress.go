package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/pwbi/edge-agent/agent/localapi"
)

// Formats of this file's lines (the words are the catalogue's).
const (
	msgProgressLine  = "%s: %d/%d\n" // plain progress line: description, current, total
	msgStatusFailed  = "pwbi-agent: %s\n"
	msgProgressError = "pwbi-agent: %v\n"
)

// progress is what a progressFunc reads from a status snapshot.
type progress struct {
	// Done: the operation is over (successfully unless Err is set).
	Done bool
	// Cur of Total done so far (Total > 0), described by Desc ("importing
	// (1234 records)").
	Cur, Total int
	Desc       string
	// Err is why the operation failed.
	Err error
	// Summary is the line printed on stdout when the operation is done:
	// what it did ("done" when empty).
	Summary string
}

// progressFunc reads a status snapshot.
type progressFunc func(localapi.Status) progress

// isTerminal reports whether w is a terminal (a character device), where a
// progress bar redrawn with \r makes sense.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// follow polls the agent's status until f says the operation is done. On
// a terminal it draws a progress bar on stderr; otherwise (piped, in a
// log) it writes a plain line whenever the description or the count
// changes. The bar ends full, and the summary follows on stdout.
func (e *env) follow(ctx context.Context, c *localapi.Client, f progressFunc) int {
	return e.followEvery(ctx, c, f, 500*time.Millisecond)
}

func (e *env) followEvery(ctx context.Context, c *localapi.Client, f progressFunc, every time.Duration) int {
	var bar *progressbar.ProgressBar
	if isTerminal(e.stderr) {
		bar = progressbar.NewOptions(1,
			progressbar.OptionSetWriter(e.stderr),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionClearOnFinish(),
		)
	}
	lastLine := ""
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := c.Status(sctx)
		cancel()
		if err != nil {
			e.endBar(bar)
			fmt.Fprintf(e.stderr, msgStatusFailed, e.errText(err))
			return exitError
		}
		p := f(st)
		total := max(p.Total, 1)
		cur := min(max(p.Cur, 0), total)
		if p.Done && p.Err == nil {
			cur = total
		}
		if bar != nil {
			bar.ChangeMax(total)
			bar.Describe(p.Desc)
			_ = bar.Set(cur)
		} else if line := fmt.Sprintf(msgProgressLine, p.Desc, cur, total); p.Desc != "" && line != lastLine {
			fmt.Fprint(e.stderr, line)
			lastLine = line
		}
		if p.Err != nil {
			e.endBar(bar)
			fmt.Fprintf(e.stderr, msgProgressError, p.Err)
			return exitError
		}
		if p.Done {
			if bar != nil {
				_ = bar.Finish()
			}
			summary := p.Summary
			if summary == "" {
				summary = e.t("CliDone")
			}
			fmt.Fprintln(e.stdout, summary)
			return exitOK
		}
		select {
		case <-ctx.Done():
			e.endBar(bar)
			fmt.Fprintln(e.stderr, "pwbi-agent: "+e.t("CliInterrupted"))
			return exitError
		case <-tick.C:
		}
	}
}

// endBar ends the bar's line so that a message can follow.
func (e *env) endBar(bar *progressbar.ProgressBar) {
	if bar != nil {
		fmt.Fprintln(e.stderr)
	}
}
