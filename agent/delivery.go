package agent

import (
	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/deliver"
	"github.com/pwbi/edge-agent/agent/deliver/httpsink"
	"github.com/pwbi/edge-agent/agent/version"
)

// deliverConfig is the delivery loop's part of the [upstream] section.
func deliverConfig(cfg *config.Config) deliver.Config {
	return deliver.Config{
		BatchSize:     cfg.Upstream.BatchSize,
		FlushInterval: cfg.Upstream.FlushInterval.Duration,
	}
}

// upstreamSink is the HTTP sink for the [upstream] section; its Endpoint is
// "" (records stay buffered) when upstream.url is not set. A new one is
// built for every configuration, at start and on every reload: the loop
// compares Endpoints to tell a new URL, token or agent id from an unchanged
// one.
func (a *Agent) upstreamSink(cfg *config.Config) *httpsink.Sink {
	return httpsink.New(httpsink.Config{
		URL:     cfg.Upstream.URL,
		Token:   cfg.Upstream.Token.Value(),
		AgentID: cfg.Agent.ID,
		Timeout: cfg.Upstream.Timeout.Duration,
	}, httpsink.Options{
		Client:    a.hc,
		UserAgent: "pwbi-agent/" + version.String(),
	})
}
