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
			fmt.Fprintln(e.stdout, e.t("CliQueueUsage"))
			return exitOK
		}
		fmt.Fprintln(e.stderr, e.t("CliQueueUsage"))
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
	fmt.Fprintf(e.stderr, "pwbi-agent: %s\n", e.t("CliQueueUnknown", map[string]any{"Command": strconv.Quote(args[0])}))
	return exitUsage
}

func cmdQueueStats(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("queue stats", e.t("CliHelpQueueStats"))
	sink := fs.String("sink", "", e.t("CliFlagQueueStatsSink"))
	if code := e.parse(fs, args); code >= 0 {
		return code
	}
	c := e.client(*cfgFlag)
	st, err := c.Status(ctx)
	if err != nil {
		return e.fail(err)
	}
	sinks := statusSinks(st)
	if *sink != "" {
		i := slices.IndexFunc(sinks, func(s localapi.SinkStatus) bool { return s.Name == *sink })
		if i < 0 {
			return e.fail(errors.New(e.t("CliUnknownSink", map[string]any{"Sink": strconv.Quote(*sink), "Known": sinkNames(sinks)})))
		}
		w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		e.writeSink(w, sinks[i])
		w.Flush()
		return exitOK
	}
	q := st.Queue
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, e.t("CliQueuePending", map[string]any{"Count": e.num(q.Pending), "Size": e.size(q.PendingBytes)}))
	fmt.Fprintln(w, e.t("CliQueueOldest", map[string]any{"When": e.when(q.OldestPendingAt)}))
	fmt.Fprintln(w, e.t("CliQueueDead", map[string]any{"Count": e.num(q.DeadLetter)}))
	full := e.t("CliQueueFullNo")
	if q.Full {
		full = e.t("CliQueueFullYes")
	}
	fmt.Fprintln(w, e.t("CliQueueFull", map[string]any{"Full": full}))
	fmt.Fprintln(w, e.t("CliQueueDBSize", map[string]any{"Size": e.size(st.Store.FileSize)}))
	w.Flush()
	fmt.Fprintln(e.stdout)
	w = tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, e.t("CliQueueSinkHeader"))
	for _, s := range sinks {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, e.sinkState(s), e.num(s.Pending), e.when(s.OldestPendingAt),
			e.num(s.DeadLetters), e.num(int64(min(s.Delivered, 1<<62))))
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
func (e *env) sinkState(s localapi.SinkStatus) string {
	switch {
	case !s.Enabled:
		return e.t("CliSinkNotEnabled")
	case !s.Configured:
		return e.t("CliSinkNotConfigured")
	case s.Online:
		return e.t("CliSinkOnline")
	case s.Health == localapi.SinkHealthError:
		return e.t("CliSinkError")
	case s.LastError == "" && s.LastSuccessAt == nil:
		return e.t("CliSinkNothingSent")
	}
	return e.t("CliSinkOffline")
}

// writeSink prints one sink's details.
func (e *env) writeSink(w io.Writer, s localapi.SinkStatus) {
	title := s.Title
	if title == "" {
		title = s.Name
	}
	fmt.Fprintln(w, e.t("CliSinkName", map[string]any{"Name": s.Name, "Title": title}))
	fmt.Fprintln(w, e.t("CliSinkState", map[string]any{"State": e.sinkState(s)}))
	fmt.Fprintln(w, e.t("CliSinkPending", map[string]any{"Count": e.num(s.Pending), "Size": e.size(s.PendingBytes)}))
	fmt.Fprintln(w, e.t("CliQueueOldest", map[string]any{"When": e.when(s.OldestPendingAt)}))
	fmt.Fprintln(w, e.t("CliQueueDead", map[string]any{"Count": e.num(s.DeadLetters)}))
	fmt.Fprintln(w, e.t("CliSinkLastSuccess", map[string]any{"When": e.when(s.LastSuccessAt)}))
	if s.NextRetryAt != nil {
		fmt.Fprintln(w, e.t("CliSinkNextRetry", map[string]any{"When": e.when(s.NextRetryAt)}))
	}
	fmt.Fprintln(w, e.t("CliSinkDelivered", map[string]any{"Count": e.num(int64(min(s.Delivered, 1<<62)))}))
	if s.Problem != "" {
		fmt.Fprintln(w, e.t("CliSinkProblem", map[string]any{"Text": oneLine(s.ProblemIn(e.printer()), 200)}))
	} else if s.LastError != "" {
		fmt.Fprintln(w, e.t("CliSinkLastError", map[string]any{"Text": oneLine(s.LastError, 200)}))
	}
}

// when renders a time as local time and how long ago (or from now), or
// "—".
func (e *env) when(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return t.Local().Format(time.DateTime) + " (" + e.printer().Ago(time.Since(*t)) + ")"
}

func cmdQueueDead(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("queue dead", e.t("CliHelpQueueDead"))
	limit := fs.Int("limit", 100, e.t("CliFlagQueueDeadLimit"))
	data := fs.Bool("data", false, e.t("CliFlagQueueDeadData"))
	sink := fs.String("sink", "", e.t("CliFlagQueueDeadSink"))
	if code := e.parse(fs, args); code >= 0 {
		return code
	}
	c := e.client(*cfgFlag)
	dls, err := c.DeadLetters(ctx, localapi.DeadLetterQuery{Limit: *limit, WithData: *data, Sink: *sink})
	if err != nil {
		return e.fail(err)
	}
	if len(dls) == 0 {
		if *sink != "" {
			fmt.Fprintln(e.stdout, e.t("CliNoDeadLettersOfSink", map[string]any{"Sink": *sink}))
		} else {
			fmt.Fprintln(e.stdout, e.t("CliNoDeadLetters"))
		}
		return exitOK
	}
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, e.t("CliQueueDeadHeader"))
	for _, d := range dls {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", d.ID, d.Stage, d.At.Local().Format(time.DateTime), orDash(d.Key), oneLine(d.Reason, 120))
		if *data && len(d.Data) > 0 {
			fmt.Fprintf(w, "\t\t\t%s\t\n", d.Data)
		}
	}
	w.Flush()
	fmt.Fprintln(e.stdout, e.t("CliQueueDeadHint"))
	return exitOK
}

func cmdQueueRetry(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("queue retry", e.t("CliHelpQueueRetry"))
	all := fs.Bool("all", false, e.t("CliFlagQueueRetryAll"))
	sink := fs.String("sink", "", e.t("CliFlagQueueRetrySink"))
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
			fmt.Fprintf(e.stderr, "pwbi-agent: %s\n", e.t("CliNotADeadLetterID", map[string]any{"Arg": strconv.Quote(a)}))
			return exitUsage
		}
		ids = append(ids, id)
	}
	if *all == (len(ids) > 0) {
		fmt.Fprintln(e.stderr, "pwbi-agent: "+e.t("CliRetryWhich"))
		return exitUsage
	}
	c := e.client(*cfgFlag)
	res, err := c.Requeue(ctx, localapi.RequeueRequest{IDs: ids, All: *all, Sink: *sink})
	if err != nil {
		return e.fail(err)
	}
	fmt.Fprintln(e.stdout, e.n("CliRequeued", int64(res.Requeued)))
	for _, s := range res.NotRequeued {
		fmt.Fprintln(e.stdout, e.t("CliNotRequeued", map[string]any{"Why": s}))
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
