package cli

import (
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/internal/i18n"
)

// The command line speaks Bahasa Indonesia or English (issue 15): the
// agent.language of the config file the command uses when this user can
// read it, else "auto", the OS locale (LC_ALL, LC_MESSAGES, LANG; the
// user's locale on Windows). The texts are the cli catalogue of
// internal/i18n (locales/cli.*.toml). Machine output (--json, ids, config
// keys, command and flag names) stays as it is.

// commandLanguage is the language for a command line: agent.language of
// the file given by --config (else $PWBI_AGENT_CONFIG, else the OS
// default), resolved.
func commandLanguage(args []string) string {
	setting := i18n.Auto
	if s := fileLanguage(configPath(configArg(args))); s != "" {
		setting = s
	}
	return i18n.Resolve(setting)
}

// configArg is the value of --config among args, as the flag package
// would read it ("--config X", "-config=X", …), or "".
func configArg(args []string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		for _, name := range []string{"--config", "-config"} {
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, name+"="); ok {
				return v
			}
		}
	}
	return ""
}

// fileLanguage reads agent.language from the config file at path
// leniently, without validating the rest: "" when the file cannot be read
// by this user (it holds secrets) or is not TOML (config check says why).
func fileLanguage(path string) string {
	data, _, err := config.ReadFileSafe(path, "config file", config.MaxFileSize)
	if err != nil {
		return ""
	}
	var f struct {
		Agent struct {
			Language string `toml:"language"`
		} `toml:"agent"`
	}
	if _, err := toml.Decode(string(data), &f); err != nil {
		return ""
	}
	return f.Agent.Language
}

// stateWord is the agent's state for a person: English keeps the state's
// own word ("ok", "offline"), which scripts and the docs quote.
func stateWord(p *i18n.Printer, state string) string {
	id, ok := map[string]string{
		localapi.StateOK: "CliStateOK", localapi.StateSyncing: "CliStateSyncing", localapi.StateOffline: "CliStateOffline",
		localapi.StateError: "CliStateError", localapi.StatePaused: "CliStatePaused",
	}[state]
	if !ok {
		return state
	}
	return p.T(id)
}

// problemTexts are the status's problems in p's language: each rendered
// from its code and parameters when the catalogue knows the code, else as
// the agent wrote it (ProblemDetail.In; its Text is the agent's sentence).
func problemTexts(p *i18n.Printer, st localapi.Status) []string {
	if len(st.ProblemDetails) != len(st.Problems) {
		return st.Problems // an agent without problem_details
	}
	out := make([]string, len(st.ProblemDetails))
	for i, d := range st.ProblemDetails {
		out[i] = d.In(p)
	}
	return out
}

// printDefaults is flag.PrintDefaults in p's language: the flags' usage
// texts are already translated; this words "(default …)".
func printDefaults(fs *flag.FlagSet, p *i18n.Printer) {
	fs.VisitAll(func(f *flag.Flag) {
		var b strings.Builder
		fmt.Fprintf(&b, "  -%s", f.Name)
		name, usage := flag.UnquoteUsage(f)
		if name != "" {
			b.WriteString(" " + name)
		}
		if b.Len() <= 4 {
			b.WriteString("\t")
		} else {
			b.WriteString("\n    \t")
		}
		b.WriteString(strings.ReplaceAll(usage, "\n", "\n    \t"))
		switch f.DefValue {
		case "", "false", "0", "0s", "[]":
		default:
			v := f.DefValue
			if fmt.Sprintf("%T", f.Value) == "*flag.stringValue" {
				v = fmt.Sprintf("%q", v)
			}
			b.WriteString(" " + p.T("CliFlagDefault", map[string]any{"Value": v}))
		}
		fmt.Fprintln(fs.Output(), b.String())
	})
}

// printer is e's language; English when none was set (tests build an env
// by hand).
func (e *env) printer() *i18n.Printer {
	if e.p == nil {
		return i18n.New(i18n.English)
	}
	return e.p
}

// t renders the catalogue message id in e's language.
func (e *env) t(id string, data ...map[string]any) string { return e.printer().T(id, data...) }

// n renders the plural message id for count; .Count shows as e.num does.
func (e *env) n(id string, count int64, data ...map[string]any) string {
	d := map[string]any{}
	for _, m := range data {
		for k, v := range m {
			d[k] = v
		}
	}
	d["Count"] = e.num(count)
	return e.printer().N(id, int(min(max(count, -1_000_000), 1_000_000)), d)
}

// num is a count for a person: "12.500" in Indonesian; English keeps the
// plain digits that scripts and the docs quote ("12500").
func (e *env) num(n int64) string {
	if e.printer().Lang() == i18n.English {
		return strconv.FormatInt(n, 10)
	}
	return e.printer().Count(n)
}

// size is a byte size: "3,0 MB" in Indonesian; English keeps humanBytes
// ("3.0 MiB").
func (e *env) size(n int64) string {
	if e.printer().Lang() == i18n.English {
		return humanBytes(n)
	}
	return e.printer().Bytes(n)
}

// notRunningRE reads the address out of localapi.ErrNotRunning's error
// ("agent not running at 127.0.0.1:8687").
var notRunningRE = regexp.MustCompile(regexp.QuoteMeta(localapi.ErrNotRunning.Error()) + ` at (\S+)`)

// errText is err for a person in e's language: English is err's own
// text; in Indonesian the errors the command line itself knows are
// translated (the agent not running), others (from the agent, the OS, the
// config file) stay as they were written.
func (e *env) errText(err error) string {
	if te, ok := err.(*textError); ok {
		return te.text // already in e's language
	}
	if e.printer().Lang() == i18n.English {
		return err.Error()
	}
	if errors.Is(err, errConfigChanged) {
		return e.t("CliConfigChanged")
	}
	if errors.Is(err, localapi.ErrNotRunning) {
		addr := ""
		if m := notRunningRE.FindStringSubmatch(err.Error()); m != nil {
			addr = m[1]
		}
		return e.t("CliAgentNotRunning", map[string]any{"Addr": addr})
	}
	return err.Error()
}

// textError is an error with a translated text that still matches its
// cause with errors.Is (localapi.ErrNotRunning: the start hint).
type textError struct {
	text  string
	cause error
}

func (e *textError) Error() string { return e.text }
func (e *textError) Unwrap() error { return e.cause }

// wrapText returns an error reading text and wrapping cause.
func wrapText(cause error, text string) error { return &textError{text: text, cause: cause} }
