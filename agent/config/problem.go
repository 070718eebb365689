package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a config file. Its message never holds a
// secret value.
type Problem struct {
	File string // path of the config file as given to Load/Parse
	Line int    // 1-based; 0 when the problem has no single line (e.g. a missing key)
	Key  string // dotted key, e.g. "moka.poll_interval" or "checkout.tablets[1].name"; may be empty
	Msg  string
}

// Error renders "file:line: key: msg", leaving out the parts that are empty
// (the line when it is 0).
func (p Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		if p.File != "" {
			b.WriteByte(':')
		} else {
			b.WriteString("line ")
		}
		b.WriteString(strconv.Itoa(p.Line))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in one config file, ordered by line. It is
// the error Load and Parse return for an invalid file.
type Problems []Problem

// Error lists every problem, one per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find a single Problem.
func (ps Problems) Unwrap() []error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errs
}

// sort orders problems by line (problems without a line first), keeping the
// order in which they were found for equal lines.
func (ps Problems) sort() {
	slices.SortStableFunc(ps, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
}
