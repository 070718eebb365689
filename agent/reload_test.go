package agent

import (
	"slices"
	"testing"

	"github.com/pwbi/edge-agent/agent/config"
)

// TestChangedSectionsEverySection: a reload that changes only one section
// names that section in the log, for every section of the configuration
// (the list used to miss [jurnal]).
func TestChangedSectionsEverySection(t *testing.T) {
	base := func() *config.Config { return &config.Config{} }
	cases := map[string]func(c *config.Config){
		"agent":     func(c *config.Config) { c.Agent.ID = "x" },
		"moka":      func(c *config.Config) { c.Moka.Enabled = true },
		"upstream":  func(c *config.Config) { c.Upstream.URL = "https://example.invalid" },
		"nats":      func(c *config.Config) { c.NATS.Stream = "S" },
		"jurnal":    func(c *config.Config) { c.Jurnal.Mode = "daily_summary" },
		"checkout":  func(c *config.Config) { c.Checkout.Enabled = true },
		"local_api": func(c *config.Config) { c.LocalAPI.Listen = "127.0.0.1:1" },
	}
	for want, change := range cases {
		cfg := base()
		change(cfg)
		if got := changedSections(base(), cfg); !slices.Equal(got, []string{want}) {
			t.Errorf("changing [%s] only: changedSections = %v, want [%s]", want, got, want)
		}
	}
	if got := changedSections(base(), base()); len(got) != 0 {
		t.Errorf("nothing changed: changedSections = %v, want none", got)
	}
}
