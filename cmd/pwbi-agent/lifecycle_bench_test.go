package main

import (
	"testing"
	"time"

	"github.com/pwbi/edge-agent/internal/testutil"
)

// BenchmarkStartStop measures, for the real binary with 200,000 records
// buffered and the upstream down (so nothing drains), how long until the
// local API answers after the process starts, and how long SIGTERM takes to
// a clean exit (which includes the bounded final flush attempt).
func BenchmarkStartStop(b *testing.B) {
	if raceEnabled {
		b.Skip("timings are meaningless under -race")
	}
	e := newEnv(b)
	e.seed(b, 200_000)
	e.up.SetDown(true)
	var startTotal, stopTotal time.Duration
	for b.Loop() {
		t0 := time.Now()
		p := e.start(b)
		for {
			if _, err := e.status(b); err == nil {
				break
			}
			if time.Since(t0) > time.Minute {
				b.Fatal("agent did not answer within a minute")
			}
			time.Sleep(time.Millisecond) // polling a separate process
		}
		startTotal += time.Since(t0)
		t1 := time.Now()
		p.stop(b)
		stopTotal += time.Since(t1)
	}
	b.ReportMetric(float64(startTotal.Milliseconds())/float64(b.N), "start-ms")
	b.ReportMetric(float64(stopTotal.Milliseconds())/float64(b.N), "stop-ms")
}

// BenchmarkSyncNowLatency measures the time from POST /v1/sync to the first
// request the fake Moka receives (PERFORMANCE.md: within 1 s).
func BenchmarkSyncNowLatency(b *testing.B) {
	if raceEnabled {
		b.Skip("timings are meaningless under -race")
	}
	m := startMoka(b, 1, 1, 5)
	e := newEnvWith(b, mokaSection(m, 1))
	e.start(b)
	testutil.WaitFor(b, "first sync", time.Minute, func() bool {
		st, err := e.status(b)
		return err == nil && len(st.Moka.Outlets) == 1 && st.Moka.Outlets[0].LastSyncAt != nil
	})
	var total time.Duration
	for b.Loop() {
		before := len(m.Requests())
		t0 := time.Now()
		if out, err := runCLI(b, "sync", "--config", e.cfgPath); err != nil {
			b.Fatalf("sync: %v %s", err, out)
		}
		for len(m.Requests()) == before {
			if time.Since(t0) > 30*time.Second {
				b.Fatal("no Moka request after sync")
			}
			time.Sleep(time.Millisecond) // polling the fake's request log
		}
		total += time.Since(t0)
		// Let the poll finish before the next round.
		testutil.WaitFor(b, "poll done", time.Minute, func() bool {
			st, err := e.status(b)
			return err == nil && st.State == "ok"
		})
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-to-first-request")
}
