package edgeagent_test

import (
	"os"
	"regexp"
	"testing"
)

// TestReadmeStaysValid (issue 15): a new user follows the README as it is
// written, in a clone of this repository, on any day. So it links nothing
// outside the repository, its import examples do not name a fixed date
// (which falls out of the 180-day window), and the programs it tells you to
// run are named as they are built (bin/...).
func TestReadmeStaysValid(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, rule := range []struct {
		bad *regexp.Regexp
		why string
	}{
		{regexp.MustCompile(`\.\./`), "a path outside the repository (a clone has nothing there)"},
		{regexp.MustCompile(`--since[ =]+\d{4}-\d\d-\d\d`), "an import example with a fixed date: it stops working 180 days later (use 30d)"},
		{regexp.MustCompile("(^|[\\s`])pwbi-devstack --help"), "pwbi-devstack is built as bin/pwbi-devstack"},
	} {
		for _, loc := range rule.bad.FindAllIndex(b, -1) {
			line := 1
			for _, c := range b[:loc[0]] {
				if c == '\n' {
					line++
				}
			}
			t.Errorf("README.md:%d: %q: %s", line, b[loc[0]:loc[1]], rule.why)
		}
	}
}
