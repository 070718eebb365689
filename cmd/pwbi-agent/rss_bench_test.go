package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/internal/testutil"
)

// rssKB reads a process's resident set size from /proc (Linux).
func rssKB(pid int) (int, error) { return procStatusKB(pid, "VmRSS:") }

// anonKB reads the anonymous part of the resident set: the process's own
// memory (heap, stacks), without file pages such as bbolt's memory map,
// which are the kernel's page cache and reclaimable.
func anonKB(pid int) (int, error) { return procStatusKB(pid, "RssAnon:") }

func procStatusKB(pid int, field string) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			return strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
		}
	}
	return 0, fmt.Errorf("no %s for pid %d", field, pid)
}

// BenchmarkIdleRSS starts the real agent (no Moka, an upstream with nothing
// to send), lets it settle, and reports its resident memory.
// Run without -race: the race detector multiplies memory.
func BenchmarkIdleRSS(b *testing.B) {
	if raceEnabled {
		b.Skip("memory figures are meaningless under -race")
	}
	for b.Loop() {
		e := newEnv(b)
		p := e.start(b)
		testutil.WaitFor(b, "status", 60*time.Second, func() bool { _, err := e.status(b); return err == nil })
		time.Sleep(3 * time.Second) // idle: let start-up garbage be collected
		kb, err := rssKB(p.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		anon, err := anonKB(p.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(kb)/1024, "RSS-MB")
		b.ReportMetric(float64(anon)/1024, "anon-MB")
		p.cmd.Process.Kill()
		<-p.done
	}
}

// BenchmarkDrainBacklogRSS starts the agent with 100,000 records buffered and
// reports the peak resident memory while it drains them to the fake upstream,
// and the drain rate of the whole process.
func BenchmarkDrainBacklogRSS(b *testing.B) {
	if raceEnabled {
		b.Skip("memory figures are meaningless under -race")
	}
	const n = 100_000
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b)
		e.seed(b, n)
		b.StartTimer()
		start := time.Now()
		p := e.start(b)
		peak, peakAnon := 0, 0
		for e.up.Accepted() < n {
			if kb, err := rssKB(p.cmd.Process.Pid); err == nil && kb > peak {
				peak = kb
			}
			if kb, err := anonKB(p.cmd.Process.Pid); err == nil && kb > peakAnon {
				peakAnon = kb
			}
			if time.Since(start) > 5*time.Minute {
				b.Fatal("backlog not drained in 5 minutes")
			}
			time.Sleep(20 * time.Millisecond) // sampling interval
		}
		b.ReportMetric(float64(peak)/1024, "peak-RSS-MB")
		b.ReportMetric(float64(peakAnon)/1024, "peak-anon-MB")
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "records/s")
		p.cmd.Process.Kill()
		<-p.done
	}
}
