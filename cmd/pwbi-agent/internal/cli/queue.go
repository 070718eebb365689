package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pwbi/edge-agent/agent/localapi"
)

func cmdQueue(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(e.stdout, "Usage: pwbi-agent queue stats|dead|retry [flags]")
			return exitOK
		}
		fmt.Fprintln(e.stderr, "Usage: pwbi-agent queue stats|dead|retry [flags]")
		return exitUsage
	}
	switch args[0] {
	case "stats":
		return cmdQueueStats(ctx, e, args[1:])
	case "dead":
		return cmdQueueDead(ctx, e, args[1:])
	case "retry":
		return cmdQueueRetry(ctx, e, args[1:])
	}
	fmt.Fprintf(e.stderr, "pwbi-agent: unknown queue command %q (stats, dead, retry)\n", args[0])
	return exitUsage
}

func cmdQueueStats(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("queue stats", "Show the buffer: records waiting, set aside, oldest waiting.")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	c, err := e.client(*cfgFlag)
	if err != nil {
		return e.fail(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		return e.fail(err)
	}
	q := st.Queue
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "pending\t%d records (%s)\n", q.Pending, humanBytes(q.PendingBytes))
	oldest := "—"
	if q.OldestPendingAt != nil {
		oldest = q.OldestPendingAt.Local().Format(time.DateTime) + " (" + localapi.Ago(time.Since(*q.OldestPendingAt)) + ")"
	}
	fmt.Fprintf(w, "oldest pending\t%s\n", oldest)
	fmt.Fprintf(w, "dead letters\t%d\n", q.DeadLetter)
	full := "no"
	if q.Full {
		full = "yes: Moka polling is paused until the upstream takes records"
	}
	fmt.Fprintf(w, "buffer full\t%s\n", full)
	up := "not configured (buffer only)"
	switch {
	case st.Upstream.Configured && st.Upstream.Online:
		up = "online"
	case st.Upstream.Configured:
		up = "offline"
		if st.Upstream.LastError != "" {
			up += ": " + st.Upstream.LastError
		}
	}
	fmt.Fprintf(w, "upstream\t%s\n", up)
	fmt.Fprintf(w, "delivered since start\t%d\n", st.Upstream.Delivered)
	fmt.Fprintf(w, "database size\t%s\n", humanBytes(st.Store.FileSize))
	w.Flush()
	return exitOK
}

func cmdQueueDead(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("queue dead", "List records set aside: rejected by the upstream, or Moka data that could not be read.")
	limit := fs.Int("limit", 100, "show at most this many")
	data := fs.Bool("data", false, "also print each record's data (JSON)")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	c, err := e.client(*cfgFlag)
	if err != nil {
		return e.fail(err)
	}
	dls, err := c.DeadLetters(ctx, *limit, *data)
	if err != nil {
		return e.fail(err)
	}
	if len(dls) == 0 {
		fmt.Fprintln(e.stdout, "no dead letters")
		return exitOK
	}
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSTAGE\tWHEN\tKEY\tREASON")
	for _, d := range dls {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", d.ID, d.Stage, d.At.Local().Format(time.DateTime), orDash(d.Key), oneLine(d.Reason, 120))
		if *data && len(d.Data) > 0 {
			fmt.Fprintf(w, "\t\t\t%s\t\n", d.Data)
		}
	}
	w.Flush()
	fmt.Fprintln(e.stdout, "\n'upstream' records can be sent again with: pwbi-agent queue retry ID… (or --all).")
	fmt.Fprintln(e.stdout, "'map' records are Moka data the agent could not read; they are fetched again once Moka's data is fixed.")
	return exitOK
}

func cmdQueueRetry(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("queue retry", "Send dead letters again: pwbi-agent queue retry ID… | --all")
	all := fs.Bool("all", false, "requeue every dead letter that can be requeued")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	var ids []uint64
	for _, a := range fs.Args() {
		id, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			fmt.Fprintf(e.stderr, "pwbi-agent: %q is not a dead-letter id\n", a)
			return exitUsage
		}
		ids = append(ids, id)
	}
	if *all == (len(ids) > 0) {
		fmt.Fprintln(e.stderr, "pwbi-agent: give dead-letter ids or --all (see `pwbi-agent queue dead`)")
		return exitUsage
	}
	c, err := e.client(*cfgFlag)
	if err != nil {
		return e.fail(err)
	}
	res, err := c.Requeue(ctx, localapi.RequeueRequest{IDs: ids, All: *all})
	if err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "requeued %d record(s)\n", res.Requeued)
	for _, s := range res.NotRequeued {
		fmt.Fprintf(e.stdout, "not requeued: %s\n", s)
	}
	if len(res.NotRequeued) > 0 && res.Requeued == 0 {
		return exitError
	}
	return exitOK
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
