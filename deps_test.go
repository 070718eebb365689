// Package edgeagent_test holds the house rules of the code base as a test:
// what each package must never import, and why. It runs `go list` over the
// whole module, for Linux and Windows, and fails with a sentence naming the
// rule that broke.
package edgeagent_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/pwbi/edge-agent"

// rule forbids packages matching from to depend on packages matching any of
// not. Patterns are import paths, module-relative when they start with "./";
// a trailing "/..." matches the path and everything under it.
type rule struct {
	from []string
	not  []string
	// except lists packages from matches that the rule does not bind.
	except []string
	// direct: only direct imports count (otherwise every dependency, as
	// linked into a binary).
	direct bool
	why    string
}

var rules = []rule{
	{
		from: []string{"./tray/...", "./cmd/pwbi-tray"},
		not: []string{"./store/...", "go.etcd.io/bbolt", "./agent", "./agent/moka/...", "./agent/deliver/...",
			"./agent/checkout/...", "github.com/prometheus/..."},
		why: "the tray is a client of the local API only (it reads the config file just to find it): only the service opens the database, and the tray must not link the agent's parts",
	},
	{
		from: []string{"./store/..."},
		not:  []string{"./agent/...", "./tray/...", "./cmd/..."},
		why:  "the store is the foundation every feature builds on: it must not know any of them",
	},
	{
		from: []string{"./agent/moka/..."},
		not:  []string{"./agent/deliver/...", "./agent/checkout/..."},
		why:  "polling Moka and delivering to sinks are two halves joined only by the buffer; the Mokka gateway is another service",
	},
	{
		from: []string{"./agent/deliver/..."},
		not:  []string{"./agent/moka/...", "./agent/checkout/..."},
		why:  "sinks deliver records from the buffer whatever produced them",
	},
	{
		from: []string{"./agent/checkout/..."},
		not:  []string{"./agent/moka/...", "./agent/deliver/..."},
		why:  "the Mokka checkout gateway and Moka POS are different services; only the composition root joins them",
	},
	{
		from: []string{"./agent/moka/apikey/...", "./agent/moka/oauth/..."},
		not:  []string{"./agent/moka"},
		why:  "a Moka dialect produces pages for the sync loop; it must not depend on the loop that consumes them",
	},
	{
		from: []string{"./agent/config/..."},
		not:  []string{"./store/..."},
		why:  "the config is read before the store opens, and by commands that never open it",
	},
	{
		from: []string{"./agent/metrics/...", "./agent/health/...", "./agent/logging/...", "./agent/version/..."},
		not: []string{"./agent/moka/...", "./agent/deliver/...", "./agent/checkout/...", "./agent/localapi/...",
			"./agent/config/...", "./store/..."},
		why: "metrics, the state rules, logging and the version are leaves: the parts report to them through the composition root",
	},
	{
		from:   []string{"./..."},
		except: []string{"./cmd/..."},
		not:    []string{"./agent"},
		direct: true,
		why:    "the composition root depends on every part; only cmd/ may import it",
	},
	{
		from: []string{"./cmd/pwbi-agent", "./cmd/pwbi-tray"},
		not:  []string{"./.../*fake", "./internal/browsertest", "github.com/chromedp/..."},
		why:  "fakes of the outside world and browser tooling are for tests and the devstack, never in what ships",
	},
	{
		from: []string{"./agent/deliver", "./agent/deliver/sink", "./internal/backoff"},
		not:  []string{"net/http"},
		why:  "the delivery loop is transport-free: HTTP, NATS and Jurnal live in their sinks",
	},
	{
		from:   []string{"./..."},
		except: []string{"./internal/testutil"},
		not:    []string{"./internal/testutil"},
		direct: true,
		why:    "internal/testutil is for _test.go files only",
	},
	{
		from: []string{"./cmd/pwbi-agent", "./agent/..."},
		not:  []string{"github.com/nats-io/nats-server/..."},
		why:  "the NATS server runs in tests and the devstack only; the agent is a NATS client (nats.go), never a server",
	},
	{
		from: []string{"./internal/i18n"},
		not:  []string{"./agent/...", "./store/...", "./tray/...", "./cmd/..."},
		why:  "the translations serve the service, the tray and the CLI alike: they know none of them",
	},
	{
		from: []string{"./cmd/pwbi-agent"},
		not:  []string{"github.com/getlantern/...", "./cmd/pwbi-tray/internal/systrayui"},
		why:  "the service binary builds with CGO_ENABLED=0; systray (cgo on Linux) belongs to the tray alone",
	},
}

type pkg struct {
	ImportPath string
	Doc        string
	Name       string
	Imports    []string
	Deps       []string
}

// goList lists the module's packages as built for goos.
func goList(t *testing.T, goos string) []pkg {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command (running under Wine?)")
	}
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64")
	if goos == "windows" {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list (%s): %v\n%s", goos, err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// match reports whether path matches pattern (see rule).
func match(pattern, path string) bool {
	if rest, ok := strings.CutPrefix(pattern, "./"); ok {
		pattern = module
		if rest != "" && rest != "..." {
			pattern += "/" + rest
		} else if rest == "..." {
			pattern += "/..."
		}
	}
	if i := strings.Index(pattern, "/.../*"); i >= 0 {
		// "prefix/.../*suffix": any package under prefix whose last
		// element ends with suffix.
		prefix, suffix := pattern[:i], pattern[i+len("/.../*"):]
		last := path[strings.LastIndex(path, "/")+1:]
		return strings.HasPrefix(path, prefix+"/") && strings.HasSuffix(last, suffix)
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}

func matchAny(patterns []string, path string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, path) })
}

// violations applies every rule to pkgs and returns one sentence per broken
// rule and package.
func violations(t *testing.T, pkgs []pkg) []string {
	var out []string
	for _, r := range rules {
		subjects := 0
		for _, p := range pkgs {
			if !matchAny(r.from, p.ImportPath) || matchAny(r.except, p.ImportPath) {
				continue
			}
			subjects++
			deps := p.Deps
			if r.direct {
				deps = p.Imports
			}
			for _, d := range deps {
				if matchAny(r.not, d) && d != p.ImportPath {
					out = append(out, p.ImportPath+" depends on "+d+": not allowed, because "+r.why)
				}
			}
		}
		if subjects == 0 {
			t.Errorf("the rule %q matches no package: the layout changed, update the rule", r.why)
		}
	}
	// No package imports its parent (or any ancestor): a parent is the
	// general idea, its children the specifics.
	for _, p := range pkgs {
		for _, d := range p.Imports {
			if strings.HasPrefix(d, module) && strings.HasPrefix(p.ImportPath, d+"/") {
				out = append(out, p.ImportPath+" imports its ancestor "+d+": not allowed, because a parent package is the general idea and its children the specifics; share code through a child (internal/) instead")
			}
		}
	}
	return out
}

// TestHouseRules checks every rule for the service's and the tray's
// platforms.
func TestHouseRules(t *testing.T) {
	for _, goos := range []string{"linux", "windows"} {
		for _, v := range violations(t, goList(t, goos)) {
			t.Errorf("%s: %s", goos, v)
		}
	}
}

// TestPackageDocs: every package opens with a doc comment saying its job
// (the root holds only this test).
func TestPackageDocs(t *testing.T) {
	for _, p := range goList(t, "linux") {
		if p.ImportPath != module && strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no doc comment: say what it is for", p.ImportPath)
		}
	}
}

// TestRulesCatchViolations checks that the checker itself bites: a made-up
// package graph that breaks every rule must give one sentence per rule.
func TestRulesCatchViolations(t *testing.T) {
	m := func(p string) string { return module + "/" + p }
	pkgs := []pkg{
		{ImportPath: m("tray"), Deps: []string{"go.etcd.io/bbolt"}},
		{ImportPath: m("store"), Deps: []string{m("agent/moka")}},
		{ImportPath: m("agent/moka"), Deps: []string{m("agent/deliver")}},
		{ImportPath: m("agent/deliver"), Deps: []string{m("agent/moka")}},
		{ImportPath: m("agent/checkout"), Deps: []string{m("agent/moka/apikey")}},
		{ImportPath: m("agent/moka/apikey"), Deps: []string{m("agent/moka")}, Imports: []string{m("agent/moka")}},
		{ImportPath: m("agent/config"), Deps: []string{m("store")}},
		{ImportPath: m("agent/metrics"), Deps: []string{m("agent/deliver")}},
		{ImportPath: m("agent/localapi"), Imports: []string{m("agent")}},
		{ImportPath: m("cmd/pwbi-agent"), Deps: []string{m("agent/deliver/httpsink/upstreamfake"), "github.com/getlantern/systray",
			"github.com/nats-io/nats-server/v2/server"}},
		{ImportPath: m("cmd/pwbi-tray")},
		{ImportPath: m("agent")},
		{ImportPath: m("agent/deliver/sink"), Deps: []string{"net/http"}},
		{ImportPath: m("internal/backoff"), Imports: []string{m("internal/testutil")}},
		{ImportPath: m("internal/i18n"), Deps: []string{m("agent/localapi")}},
	}
	got := violations(t, pkgs)
	for _, r := range rules {
		if !slices.ContainsFunc(got, func(v string) bool { return strings.HasSuffix(v, "because "+r.why) }) {
			t.Errorf("no violation reported for the rule %q in\n%s", r.why, strings.Join(got, "\n"))
		}
	}
	if !slices.ContainsFunc(got, func(v string) bool { return strings.Contains(v, "imports its ancestor") }) {
		t.Errorf("a package importing its parent was not reported:\n%s", strings.Join(got, "\n"))
	}
	for _, want := range [][2]string{
		{"agent/deliver/httpsink/upstreamfake", "./.../*fake"},
		{"agent/moka/apikey/apikeyfake", "./.../*fake"},
	} {
		if !match(want[1], m(want[0])) {
			t.Errorf("%s does not match %s", want[1], want[0])
		}
	}
	if match("./.../*fake", m("agent/fakery/x")) || match("./agent/moka", m("agent/moka/apikey")) {
		t.Error("patterns match too much")
	}
}
