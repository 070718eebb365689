package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pwbi/edge-agent/agent/localapi"
)

func cmdQueue(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(e.stdout, "Usage: pwbi-agent queue stats|dead|retry [--sink NAME] [flags]")
			return exitOK
		}
		fmt.Fprintln(e.stderr, "Usage: pwbi-agent queue stats|dead|retry [--sink NAME] [flags]")
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
	fs, cfgFlag := e.flags("queue stats", "Show the buffer: records waiting, set aside, oldest waiting; and each sink's share.")
	sink := fs.String("sink", "", "show one sink only (upstream, nats, jurnal, …)")
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
	sinks := statusSinks(st)
	if *sink != "" {
		i := slices.IndexFunc(sinks, func(s localapi.SinkStatus) bool { return s.Name == *sink })
		if i < 0 {
			return e.fail(fmt.Errorf("unknown sink %q (known: %s)", *sink, sinkNames(sinks)))
		}
		w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		writeSink(w, sinks[i])
		w.Flush()
		return exitOK
	}
	q := st.Queue
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "pending\t%d records (%s), kept until every enabled sink has them\n", q.Pending, humanBytes(q.PendingBytes))
	fmt.Fprintf(w, "oldest pending\t%s\n", when(q.OldestPendingAt))
	fmt.Fprintf(w, "dead letters\t%d\n", q.DeadLetter)
	full := "no"
	if q.Full {
		full = "yes: Moka polling is paused until the sinks take records"
	}
	fmt.Fprintf(w, "buffer full\t%s\n", full)
	fmt.Fprintf(w, "database size\t%s\n", humanBytes(st.Store.FileSize))
	w.Flush()
	fmt.Fprintln(e.stdout)
	w = tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SINK\tSTATE\tPENDING\tOLDEST PENDING\tDEAD LETTERS\tDELIVERED SINCE START")
	for _, s := range sinks {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%d\t%d\n", s.Name, sinkState(s), s.Pending, when(s.OldestPendingAt), s.DeadLetters, s.Delivered)
	}
	w.Flush()
	return exitOK
}

// statusSinks returns the status's sinks; an agent from before sinks
// reports its upstream alone.
func statusSinks(st localapi.Status) []localapi.SinkStatus {
	if len(st.Sinks) > 0 {
		return st.Sinks
	}
	u := st.Upstream
	return []localapi.SinkStatus{{Name: "upstream", Title: "PWBI cloud", Enabled: u.Configured, Configured: u.Configured,
		Online: u.Online, Problem: u.Problem, LastSuccessAt: u.LastSuccessAt, LastError: u.LastError, Delivered: u.Delivered,
		Pending: st.Queue.Pending, PendingBytes: st.Queue.PendingBytes, OldestPendingAt: st.Queue.OldestPendingAt,
		DeadLetters: st.Queue.DeadLetter}}
}

func sinkNames(sinks []localapi.SinkStatus) string {
	names := make([]string, len(sinks))
	for i, s := range sinks {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}

// sinkState is a sink's condition in a few words.
func sinkState(s localapi.SinkStatus) string {
	switch {
	case !s.Enabled:
		return "not enabled"
	case !s.Configured:
		return "not configured (kept in the buffer)"
	case s.Online:
		return "online"
	case s.Health == localapi.SinkHealthError:
		return "error"
	case s.LastError == "" && s.LastSuccessAt == nil:
		return "nothing sent yet"
	}
	return "offline"
}

// writeSink prints one sink's details.
func writeSink(w io.Writer, s localapi.SinkStatus) {
	title := s.Title
	if title == "" {
		title = s.Name
	}
	fmt.Fprintf(w, "sink\t%s (%s)\n", s.Name, title)
	fmt.Fprintf(w, "state\t%s\n", sinkState(s))
	fmt.Fprintf(w, "pending\t%d records (%s)\n", s.Pending, humanBytes(s.PendingBytes))
	fmt.Fprintf(w, "oldest pending\t%s\n", when(s.OldestPendingAt))
	fmt.Fprintf(w, "dead letters\t%d\n", s.DeadLetters)
	fmt.Fprintf(w, "last success\t%s\n", when(s.LastSuccessAt))
	if s.NextRetryAt != nil {
		fmt.Fprintf(w, "next retry\t%s\n", when(s.NextRetryAt))
	}
	fmt.Fprintf(w, "delivered since start\t%d\n", s.Delivered)
	if s.Problem != "" {
		fmt.Fprintf(w, "problem\t%s\n", oneLine(s.Problem, 200))
	} else if s.LastError != "" {
		fmt.Fprintf(w, "last error\t%s\n", oneLine(s.LastError, 200))
	}
}

// when renders a time as local time and how long ago (or from now), or
// "—".
func when(t *time.Time) string {
	if t == nil {
		return "—"
	}
	d := time.Since(*t)
	rel := localapi.Ago(d)
	if d < 0 {
		rel = "in " + strings.TrimSuffix(localapi.Ago(-d), " ago")
	}
	return t.Local().Format(time.DateTime) + " (" + rel + ")"
}

func cmdQueueDead(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("queue dead", "List records set aside: rejected by a sink, or Moka data that could not be read.")
	limit := fs.Int("limit", 100, "show at most this many")
	data := fs.Bool("data", false, "also print each record's data (JSON)")
	sink := fs.String("sink", "", "only the records this sink rejected (upstream, nats, jurnal, …)")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	c, err := e.client(*cfgFlag)
	if err != nil {
		return e.fail(err)
	}
	dls, err := c.DeadLetters(ctx, localapi.DeadLetterQuery{Limit: *limit, WithData: *data, Sink: *sink})
	if err != nil {
		return e.fail(err)
	}
	if len(dls) == 0 {
		if *sink != "" {
			fmt.Fprintf(e.stdout, "no dead letters of sink %s\n", *sink)
		} else {
			fmt.Fprintln(e.stdout, "no dead letters")
		}
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
	fmt.Fprintln(e.stdout, "\nThe STAGE of a rejected record is the sink that rejected it; it can be sent to that sink again with:")
	fmt.Fprintln(e.stdout, "  pwbi-agent queue retry ID… (or --all, or --sink NAME --all)")
	fmt.Fprintln(e.stdout, "'map' records are Moka data the agent could not read; they are fetched again once Moka's data is fixed.")
	return exitOK
}

func cmdQueueRetry(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("queue retry", "Send dead letters again, each to the sink that rejected it: pwbi-agent queue retry [--sink NAME] ID… | --all")
	all := fs.Bool("all", false, "requeue every dead letter that can be requeued")
	sink := fs.String("sink", "", "only the dead letters of this sink (upstream, nats, jurnal, …)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
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
	res, err := c.Requeue(ctx, localapi.RequeueRequest{IDs: ids, All: *all, Sink: *sink})
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
