package agent

import (
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
