//go:build linux

package installer

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// distDir is the directory `make dist` filled, from $PWBI_DIST_DIR. Without
// it the package tests skip: a plain `go test ./...` does not build
// packages. With it, a missing package is a failure.
func distDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PWBI_DIST_DIR")
	if dir == "" {
		t.Skip("PWBI_DIST_DIR is not set: run `make dist` and set it to the dist directory (make test does both)")
	}
	return dir
}

// artifact returns the one file in dir matching pattern.
func artifact(t *testing.T, dir, pattern string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 {
		t.Fatalf("want one %s in %s, found %v (run make dist)", pattern, dir, m)
	}
	return m[0]
}

// need fails the test when a tool `make deps` installs is missing.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run `make deps` as root", tool)
		}
	}
}

// run runs a command and returns its standard output; it fails the test
// when the command fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, stderr, err := runErr(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// runErr runs a command and returns its standard output, standard error
// and error.
func runErr(name string, args ...string) (string, string, error) {
	var out, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	return out.String(), stderr.String(), err
}

// repoRoot is the repository's top directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// pkgVersion is scripts/pkgversion.sh's answer for version and kind.
func pkgVersion(t *testing.T, version, kind string) string {
	t.Helper()
	return strings.TrimSpace(run(t, filepath.Join(repoRoot(t), "scripts", "pkgversion.sh"), version, kind))
}

// agentVersion is what the built Linux agent says its version is.
func agentVersion(t *testing.T, dist string) string {
	t.Helper()
	out := run(t, filepath.Join(dist, "linux-amd64", "pwbi-agent"), "version")
	f := strings.Fields(out)
	if len(f) == 0 {
		t.Fatalf("pwbi-agent version printed %q", out)
	}
	return f[len(f)-1]
}

// runErrIn is runErr in directory dir.
func runErrIn(dir, name string, args ...string) (string, string, error) {
	var out, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	return out.String(), stderr.String(), err
}

// envCmd is a command with extra environment variables.
func envCmd(name string, args []string, env ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// runAll is run returning standard output and standard error together (for
// logging what maintainer scripts say).
func runAll(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
