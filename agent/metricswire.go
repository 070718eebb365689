package agent

import (
	"github.com/pwbi/edge-agent/agent/deliver"
	"github.com/pwbi/edge-agent/agent/metrics"
	"github.com/pwbi/edge-agent/agent/version"
)

// wireMetrics connects the collectors that read state at scrape time.
// Components report events through the hooks passed to them at creation.
func (a *Agent) wireMetrics() {
	a.metrics.SetBuildInfo(version.String())
	a.metrics.SetQueueSource(func() metrics.QueueStats {
		st, err := a.store.Stats()
		if err != nil {
			return metrics.QueueStats{}
		}
		return metrics.QueueStats{
			Pending:         st.Pending,
			PendingBytes:    st.PendingBytes,
			DeadLetters:     st.DeadLetters,
			OldestPendingAt: st.OldestPendingAt,
		}
	})
}

// observeDelivery returns the delivery loop's OnResult hook: it records one
// attempt in m's upstream metrics. The translation lives here, in the
// composition root, so that metrics imports no feature package. Attempts
// canceled because the agent is stopping are not counted; only an accepted
// batch counts its records as delivered.
func observeDelivery(m *metrics.Metrics) func(deliver.Result) {
	return func(r deliver.Result) {
		if r.Outcome == deliver.OutcomeCanceled {
			return
		}
		delivered := 0
		if r.Outcome == deliver.OutcomeAccepted {
			delivered = r.Records
		}
		m.ObserveUpstreamBatch(r.Outcome.String(), delivered, r.DeadLettered, r.Online, r.Latency)
	}
}
