package tray

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// goListDeps lists the dependencies of pkgs as built for goos.
func goListDeps(t *testing.T, goos string, pkgs ...string) []string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command (running under Wine?)")
	}
	cmd := exec.Command("go", append([]string{"list", "-deps"}, pkgs...)...)
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64")
	if goos == "windows" {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list (%s): %v\n%s", goos, err, out)
	}
	return strings.Fields(string(out))
}

// TestDeps keeps the tray a pure local-API client: it must never open the
// database (only the service does) or pull in the agent's internals.
func TestDeps(t *testing.T) {
	for _, goos := range []string{"linux", "windows"} {
		for _, dep := range goListDeps(t, goos, "./...", "../cmd/pwbi-tray") {
			switch {
			case dep == "go.etcd.io/bbolt",
				strings.HasPrefix(dep, "github.com/prometheus/"),
				dep == "github.com/pwbi/edge-agent/store",
				dep == "github.com/pwbi/edge-agent/agent",
				strings.HasPrefix(dep, "github.com/pwbi/edge-agent/agent/upstream"):
				t.Errorf("tray (%s) depends on %s", goos, dep)
			}
		}
	}
}

// TestAgentHasNoTray keeps systray (cgo on Linux) and its glue out of the
// service binary, which must build with CGO_ENABLED=0. (agent/cli uses
// tray.Ago, so package tray itself is allowed.)
func TestAgentHasNoTray(t *testing.T) {
	for _, goos := range []string{"linux", "windows"} {
		for _, dep := range goListDeps(t, goos, "../cmd/pwbi-agent") {
			if strings.HasPrefix(dep, "github.com/getlantern/") || dep == "github.com/pwbi/edge-agent/tray/systrayui" {
				t.Errorf("pwbi-agent (%s) depends on %s", goos, dep)
			}
		}
	}
}
