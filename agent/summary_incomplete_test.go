package agent

import (
	"testing"

	"github.com/pwbi/edge-agent/store"
)

// A day the store reports incomplete (a damaged summary value) stays so in
// /v1/summary, and so does every total that adds it up; sound days and
// totals without it do not.
func TestSummaryFiguresCarryIncomplete(t *testing.T) {
	sound := figuresOf(store.DaySummary{Sales: 1, Amount: "5", RefundAmount: "0", VoidAmount: "0"})
	damaged := figuresOf(store.DaySummary{Sales: 2, Amount: "7", RefundAmount: "0", VoidAmount: "0", Incomplete: true})
	if sound.api(nil).Incomplete || !damaged.api(nil).Incomplete {
		t.Fatalf("day figures: sound %+v, damaged %+v", sound.api(nil), damaged.api(nil))
	}
	var total figures
	total.add(sound)
	if total.api(nil).Incomplete {
		t.Error("a total of sound days is incomplete")
	}
	total.add(damaged)
	if got := total.api(nil); !got.Incomplete || got.Sales != 3 || got.Amount != "12" {
		t.Errorf("total with a damaged day = %+v", got)
	}
}
