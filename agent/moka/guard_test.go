package moka_test

import (
	"github.com/pwbi/edge-agent/agent/moka"
	"github.com/pwbi/edge-agent/agent/moka/apikey"
	"github.com/pwbi/edge-agent/agent/moka/oauth"
)

// The dialects never import this package (it consumes them), so their
// interface guards live here: a connector whose method set drifted from
// the loop's interfaces fails to compile the tests. The oauth connector
// must also stay an Updater, or the updates pass would silently stop.
var (
	_ moka.Connector = (*apikey.Connector)(nil)
	_ moka.Connector = (*oauth.Connector)(nil)
	_ moka.Updater   = (*oauth.Connector)(nil)
)
