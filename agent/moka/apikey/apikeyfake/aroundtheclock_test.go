package apikeyfake_test

import (
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/moka/apikey/apikeyfake"
)

// Issue 15: `make demo` showed no live sales at night because the fake's
// tills sold only 07:00–22:00. With AroundTheClock (what pwbi-devstack
// uses) they sell at every hour; without it the opening hours stay, and
// the rest of the data (outlets, counts) is the same.
func TestAroundTheClock(t *testing.T) {
	hours := func(opts apikeyfake.Options) (map[int]int, int) {
		s := apikeyfake.New(opts)
		got := map[int]int{}
		truth := s.Truth()
		for _, tx := range truth {
			got[tx.CreatedAt.In(s.Location()).Hour()]++
		}
		return got, len(truth)
	}
	now := func() time.Time { return time.Date(2026, 12, 7, 16, 59, 59, 0, time.UTC) } // 23:59:59 WIB
	base := apikeyfake.Options{Seed: 5, Outlets: 2, Days: 3, TxPerDay: 300, Now: now}
	open, n := hours(base)
	for h := range 24 {
		if (h < 7 || h >= 22) && open[h] > 0 {
			t.Errorf("opening hours: %d sales at %02d h", open[h], h)
		}
	}
	base.AroundTheClock = true
	all, m := hours(base)
	for h := range 24 {
		if all[h] == 0 {
			t.Errorf("around the clock: no sale at %02d h", h)
		}
	}
	if n != m {
		t.Errorf("%d sales in opening hours, %d around the clock", n, m)
	}
}
