package tray

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the tray a pure local-API client: it must never open the
// database (only the service does) or pull in the agent's internals.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "go.etcd.io/bbolt",
			strings.HasPrefix(dep, "github.com/prometheus/"),
			dep == "github.com/pwbi/edge-agent/store",
			dep == "github.com/pwbi/edge-agent/agent",
			strings.HasPrefix(dep, "github.com/pwbi/edge-agent/agent/upstream"):
			t.Errorf("tray depends on %s", dep)
		}
	}
}
