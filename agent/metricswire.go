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
		qs := metrics.QueueStats{
			Pending:         st.Pending,
			PendingBytes:    st.PendingBytes,
			DeadLetters:     st.DeadLetters,
			OldestPendingAt: st.OldestPendingAt,
		}
		for _, ss := range st.Sinks {
			if !ss.Enabled {
				continue
			}
			qs.Sinks = append(qs.Sinks, metrics.SinkQueueStats{
				Name:            ss.Name,
				Pending:         ss.Pending,
				PendingBytes:    ss.PendingBytes,
				DeadLetters:     ss.DeadLetters,
				OldestPendingAt: ss.OldestPendingAt,
			})
		}
		return qs
	})
}

// observeDelivery returns the OnResult hook of the named sink's delivery
// loop: it records one attempt in m's delivery metrics, labelled with the
// sink. The translation lives here, in the composition root, so that
// metrics imports no feature package. Attempts canceled because the agent
// is stopping are not counted; only an accepted batch counts its records as
// delivered.
func observeDelivery(m *metrics.Metrics, sink string) func(deliver.Result) {
	return func(r deliver.Result) {
		if r.Outcome == deliver.OutcomeCanceled {
			return
		}
		delivered := 0
		if r.Outcome == deliver.OutcomeAccepted {
			delivered = r.Records
		}
		m.ObserveUpstreamBatch(sink, r.Outcome.String(), delivered, r.DeadLettered, r.Online, r.Latency)
	}
}
