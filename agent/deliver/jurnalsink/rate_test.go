package jurnalsink_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink"
	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink/jurnalfake"
	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

// TestCatchUpUsesRequestsPerMinute (PERFORMANCE.md): while the sink is
// behind, it uses at least 95 % of requests_per_minute and never more, in
// every full minute of Jurnal's clock. The fake clock moves only by the
// waits the sink announces for its rate budget (testutil.ClockDriver), so a
// request takes no time on it however slow the machine is: what is measured
// is the pacing alone, the same on every run. The figure is logged.
func TestCatchUpUsesRequestsPerMinute(t *testing.T) {
	const rpm = 60
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC))
	fake := jurnalfake.NewServer(t, jurnalfake.Options{Clock: clock})
	// The state in memory: what is measured is the use of Jurnal's
	// budget, not the disk.
	st := &memDocs{m: map[string][]byte{}}
	e := &env{t: t, fake: fake, clock: clock}
	e.cfg = jurnalsink.Config{BaseURL: fake.URL(), ClientID: fake.ClientID(), ClientSecret: fake.ClientSecret(),
		RequestsPerMinute: rpm, CustomerName: "Pelanggan Umum", DepositAccounts: map[string]string{"default": "Kas"},
		Location: jakarta, Timeout: time.Hour}
	driver := testutil.NewClockDriver(t, clock)
	e.sink = jurnalsink.New(e.cfg, jurnalsink.Options{Docs: st, Clock: clock, OnWait: driver.OnWait})

	// A backlog of 150 sales: 300 calls beyond the master data, five
	// minutes and more at 60 a minute.
	var batch []store.Record
	for i := range 150 {
		batch = append(batch, e.rec(sale("101", fmt.Sprintf("S%03d", i), "2026-12-05", unified.StatusCompleted)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for len(batch) > 0 {
		n := min(20, len(batch))
		if a := e.sink.Send(ctx, batch[:n]); a.Verdict != sink.Accepted {
			t.Fatalf("Send = %v %v", a.Verdict, a.Err)
		}
		batch = batch[n:]
	}
	mins := fake.PerMinute()
	if len(mins) < 4 {
		t.Fatalf("only %d minutes of requests: %+v", len(mins), mins)
	}
	full := mins[1 : len(mins)-1] // the first and last minutes are partial
	low, high := rpm, 0
	for _, m := range full {
		low, high = min(low, m.Requests), max(high, m.Requests)
	}
	for _, m := range mins {
		if m.Requests > rpm {
			t.Errorf("minute %s: %d requests, above requests_per_minute = %d", m.Minute.Format("15:04"), m.Requests, rpm)
		}
	}
	t.Logf("catch-up at requests_per_minute = %d: %d to %d requests in each of %d full minutes (%.1f%% to %.1f%%)",
		rpm, low, high, len(full), 100*float64(low)/rpm, 100*float64(high)/rpm)
	if float64(low) < 0.95*rpm {
		t.Errorf("a full minute used %d of %d requests, below 95 %%", low, rpm)
	}
}

// memDocs is the sink's state in memory.
type memDocs struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (d *memDocs) GetDoc(coll, key string) ([]byte, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.m[coll+"\x00"+key]
	return slices.Clone(v), ok, nil
}

func (d *memDocs) PutDoc(coll, key string, value []byte, _ []store.Input) (store.AppendResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m[coll+"\x00"+key] = slices.Clone(value)
	return store.AppendResult{}, nil
}

func (d *memDocs) DeleteDoc(coll, key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.m, coll+"\x00"+key)
	return nil
}

func (d *memDocs) Docs(coll string, fn func(key string, value []byte) error) error {
	d.mu.Lock()
	keys := make([]string, 0, len(d.m))
	for k := range d.m {
		keys = append(keys, k)
	}
	d.mu.Unlock()
	slices.Sort(keys)
	for _, k := range keys {
		c, key, _ := strings.Cut(k, "\x00")
		if c != coll {
			continue
		}
		v, _, _ := d.GetDoc(c, key)
		if err := fn(key, v); err != nil {
			return err
		}
	}
	return nil
}
