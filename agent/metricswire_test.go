package agent

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pwbi/edge-agent/agent/deliver"
	"github.com/pwbi/edge-agent/agent/metrics"
)

// The delivery loop's results reach the upstream metrics as before the
// metrics package stopped importing the loop: attempts canceled by a stop
// are not counted, only an accepted batch counts its records as delivered,
// dead letters are counted whatever the outcome, online follows the result.
func TestObserveDelivery(t *testing.T) {
	m := metrics.New()
	observe := observeDelivery(m, "upstream")
	observe(deliver.Result{BatchID: "b-1", Records: 50, StatusCode: 200, Latency: 200 * time.Millisecond, Outcome: deliver.OutcomeAccepted, Online: true})
	observe(deliver.Result{BatchID: "b-2", Records: 1, DeadLettered: 1, StatusCode: 422, Outcome: deliver.OutcomeDeadLettered, Online: true, Err: errors.New("bad record")})
	observe(deliver.Result{BatchID: "b-3", Records: 9, Outcome: deliver.OutcomeCanceled})
	observe(deliver.Result{BatchID: "b-4", Records: 8, StatusCode: 401, Outcome: deliver.OutcomeRetry})
	// An acceptance that also proved two held records poison counts both.
	observe(deliver.Result{BatchID: "b-5", Records: 5, DeadLettered: 2, StatusCode: 200, Outcome: deliver.OutcomeAccepted, Online: true})

	for outcome, want := range map[string]float64{
		metrics.OutcomeAccepted: 2, metrics.OutcomeDeadLettered: 1, metrics.OutcomeRetry: 1, "canceled": 0,
	} {
		if got := testutil.ToFloat64(m.UpstreamBatches.WithLabelValues("upstream", outcome)); got != want {
			t.Errorf("batches{outcome=%q} = %v, want %v", outcome, got, want)
		}
	}
	if got := testutil.ToFloat64(m.UpstreamRecords.WithLabelValues("upstream", metrics.OutcomeDelivered)); got != 55 {
		t.Errorf("delivered = %v, want 55", got)
	}
	if got := testutil.ToFloat64(m.UpstreamRecords.WithLabelValues("upstream", metrics.OutcomeDeadLettered)); got != 3 {
		t.Errorf("dead-lettered = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.UpstreamOnline.WithLabelValues("upstream")); got != 1 {
		t.Errorf("online = %v, want 1", got)
	}
	observe(deliver.Result{Records: 5, Outcome: deliver.OutcomeRetry})
	if got := testutil.ToFloat64(m.UpstreamOnline.WithLabelValues("upstream")); got != 0 {
		t.Errorf("online after a failed attempt = %v, want 0", got)
	}
}

// Every outcome the loop reports (but canceled, never counted) is a label
// value the metrics document.
func TestDeliveryOutcomesAreMetricLabels(t *testing.T) {
	known := []string{metrics.OutcomeAccepted, metrics.OutcomeRetry, metrics.OutcomeSplit,
		metrics.OutcomeDeadLettered, metrics.OutcomeHeld}
	for _, o := range []deliver.Outcome{deliver.OutcomeAccepted, deliver.OutcomeRetry, deliver.OutcomeSplit,
		deliver.OutcomeDeadLettered, deliver.OutcomeHeld} {
		if !slices.Contains(known, o.String()) {
			t.Errorf("outcome %q is not a metrics label value", o)
		}
	}
}
