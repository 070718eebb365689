package installer

import (
	"os/exec"
	"strings"
	"testing"
)

// installTestEnabled says whether TestDebInstall may install the .deb on
// this machine: only on an explicit PWBI_INSTALL_TEST=1, or in CI
// (CI=true) unless PWBI_INSTALL_TEST=0 says otherwise.
func installTestEnabled(getenv func(string) string) bool {
	switch getenv("PWBI_INSTALL_TEST") {
	case "1":
		return true
	case "0":
		return false
	}
	return getenv("CI") == "true"
}

func TestInstallTestOptIn(t *testing.T) {
	for _, tc := range []struct {
		install, ci string
		want        bool
	}{
		{"", "", false},
		{"", "true", true},
		{"1", "", true},
		{"0", "true", false},
		{"", "false", false},
		{"yes", "", false},
	} {
		env := map[string]string{"PWBI_INSTALL_TEST": tc.install, "CI": tc.ci}
		if got := installTestEnabled(func(k string) string { return env[k] }); got != tc.want {
			t.Errorf("PWBI_INSTALL_TEST=%q CI=%q: %v, want %v", tc.install, tc.ci, got, tc.want)
		}
	}
}

// Issue 15: `make test` as root apt-installed packages and ran dpkg -i on
// the machine without a word. It now says what it will do before its
// first install step, and passes PWBI_INSTALL_TEST=1 only with CI=true or
// an explicit opt-in.
func TestMakeTestSaysFirst(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	dryRun := func(vars ...string) string {
		cmd := exec.Command("make", append([]string{"-n", "-C", "..", "test"}, vars...)...)
		for _, kv := range cmd.Environ() {
			if !strings.HasPrefix(kv, "CI=") && !strings.HasPrefix(kv, "PWBI_INSTALL_TEST=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make -n test %v: %v\n%s", vars, err, out)
		}
		return string(out)
	}
	out := dryRun()
	notice, apt, gotest := strings.Index(out, "make test: "), strings.Index(out, "apt-get"), strings.Index(out, "go test -race")
	if notice < 0 || apt < 0 || gotest < 0 || notice > apt {
		t.Errorf("the notice does not come before the first install step (notice %d, apt-get %d):\n%s", notice, apt, out)
	}
	for _, want := range []string{"dpkg -i", "CI=true or PWBI_INSTALL_TEST=1"} {
		if !strings.Contains(out, want) {
			t.Errorf("make test does not mention %q", want)
		}
	}
	if !strings.Contains(out[max(gotest-200, 0):], "PWBI_INSTALL_TEST=0") {
		t.Errorf("without CI the install test is on:\n%s", out[max(gotest-200, 0):])
	}
	for _, vars := range [][]string{{"CI=true"}, {"PWBI_INSTALL_TEST=1"}} {
		out := dryRun(vars...)
		if i := strings.Index(out, "go test -race"); i < 0 || !strings.Contains(out[max(i-200, 0):], "PWBI_INSTALL_TEST=1") {
			t.Errorf("%v: the install test is off:\n%s", vars, out)
		}
	}
}
