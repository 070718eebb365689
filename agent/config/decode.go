package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
)

// decoder turns the generic tree BurntSushi/toml parsed into a Config,
// strictly: it walks the tree against the struct's `toml` tags itself, so
// that every unknown key and every type error is reported (with its line),
// not only the first one.
type decoder struct {
	file  string
	loc   *locator
	probs Problems
	bad   map[string]bool // keys that already have a problem
}

// add records a problem for key at the key's line.
func (d *decoder) add(key keyPath, format string, args ...any) {
	k := key.String()
	d.bad[k] = true
	line := 0
	if d.loc != nil {
		line = d.loc.line(key)
	}
	d.probs = append(d.probs, Problem{File: d.file, Line: line, Key: k, Msg: fmt.Sprintf(format, args...)})
}

// check records a validation problem unless key already has one (a value of
// the wrong type keeps its default, which must not be reported twice).
func (d *decoder) check(key keyPath, format string, args ...any) {
	if d.bad[key.String()] {
		return
	}
	d.add(key, format, args...)
}

var (
	secretType   = reflect.TypeFor[Secret]()
	durationType = reflect.TypeFor[Duration]()
)

// maxSecretFile bounds what a *_file may hold: tighter than MaxFileSize,
// as a secret is a single line.
const maxSecretFile = 64 << 10

func parse(path string, data []byte) (c *Config, probs Problems) {
	d := &decoder{file: path, bad: make(map[string]bool)}
	defer func() {
		// Parse promises never to panic; the value is not shown as it may
		// carry file content.
		if r := recover(); r != nil {
			c = nil
			probs = append(d.probs, Problem{File: path, Msg: "internal error while reading the file (please report this)"})
		}
	}()

	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		d.probs = append(d.probs, Problem{File: path, Line: 1, Msg: "the file is saved as UTF-16 (\"Unicode\"): save it as UTF-8"})
		return nil, d.probs
	}
	src := strings.TrimPrefix(string(data), "\ufeff") // Notepad's UTF-8 BOM

	var raw map[string]any
	if _, err := toml.Decode(src, &raw); err != nil {
		d.probs = append(d.probs, syntaxProblem(path, src, err))
		return nil, d.probs
	}
	d.loc = locate(src)

	cfg := Default()
	d.decodeStruct(nil, raw, reflect.ValueOf(&cfg).Elem())
	if _, ok := raw["version"]; !ok {
		d.add(keyPath{"version"}, "version = 1 is required (put it at the top of the file)")
	}

	d.finish(&cfg, path, data)
	d.validate(&cfg)
	if len(d.probs) > 0 {
		return nil, d.probs
	}
	return &cfg, nil
}

// secretKeyRE matches key names whose values may be secrets.
var secretKeyRE = regexp.MustCompile(`(?i)(key|secret|token|pass)`)

// lineKeyRE finds the key of a "key = value" line.
var lineKeyRE = regexp.MustCompile(`^\s*([^=#\[]+?)\s*=`)

// syntaxProblem converts a BurntSushi/toml error. Its message may quote text
// from the file, so when the failing line assigns something that looks like a
// secret the message is replaced.
func syntaxProblem(path, src string, err error) Problem {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return Problem{File: path, Msg: "cannot parse the file as TOML"}
	}
	line := pe.Position.Line
	key := pe.LastKey
	if line > 0 {
		lines := strings.Split(src, "\n")
		if line <= len(lines) {
			if m := lineKeyRE.FindStringSubmatch(lines[line-1]); m != nil {
				key = m[1]
			}
		}
	}
	last := key
	if i := strings.LastIndexByte(last, '.'); i >= 0 {
		last = last[i+1:]
	}
	if secretKeyRE.MatchString(last) {
		return Problem{File: path, Line: line, Key: strings.TrimSpace(key),
			Msg: "syntax error in a value that may be a secret (not shown): write it on one line in double quotes, e.g. token = \"...\""}
	}
	return Problem{File: path, Line: line, Msg: "syntax error: " + pe.Message}
}

// structFields is the toml view of a struct type.
type structFields struct {
	index map[string]int // toml key -> field index
	names []string       // toml keys in declaration order
}

var fieldCache sync.Map // reflect.Type -> *structFields

// tomlFields maps the toml tag of each field of struct type t to its index.
func tomlFields(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	f := &structFields{index: make(map[string]int)}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		f.index[name] = i
		f.names = append(f.names, name)
	}
	fieldCache.Store(t, f)
	return f
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (d *decoder) decodeStruct(p keyPath, m map[string]any, rv reflect.Value) {
	fields := tomlFields(rv.Type())
	for _, k := range sortedKeys(m) {
		kp := p.key(k)
		i, ok := fields.index[k]
		if !ok {
			d.add(kp, "unknown key%s", suggest(p, k, fields.names))
			continue
		}
		d.decodeValue(kp, m[k], rv.Field(i))
	}
}

func (d *decoder) decodeValue(p keyPath, v any, rv reflect.Value) {
	switch rv.Type() {
	case durationType:
		s, ok := v.(string)
		if !ok {
			d.wrongType(p, `a duration string such as "30s" or "5m"`, v)
			return
		}
		var dur Duration
		if err := dur.UnmarshalText([]byte(s)); err != nil {
			d.add(p, "%v", err)
			return
		}
		rv.Set(reflect.ValueOf(dur))
		return
	case secretType:
		s, ok := v.(string)
		if !ok {
			d.wrongType(p, "a string in double quotes", v)
			return
		}
		rv.Set(reflect.ValueOf(NewSecret(s)))
		return
	}

	switch rv.Kind() {
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			d.wrongType(p, "a string in double quotes", v)
			return
		}
		rv.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			d.wrongType(p, "true or false", v)
			return
		}
		rv.SetBool(b)
	case reflect.Int:
		n, ok := v.(int64)
		if !ok {
			d.wrongType(p, "an integer", v)
			return
		}
		if int64(int(n)) != n {
			d.add(p, "%d is too large", n)
			return
		}
		rv.SetInt(n)
	case reflect.Slice:
		d.decodeSlice(p, v, rv)
	case reflect.Map:
		d.decodeStringMap(p, v, rv)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			d.wrongType(p, "a table", v)
			return
		}
		d.decodeStruct(p, m, rv)
	default:
		d.add(p, "cannot be decoded (unsupported type %s)", rv.Type())
	}
}

// decodeStringMap decodes a table of string values (a map[string]string
// such as jurnal.deposit_accounts): its keys are free, its values strings.
// The table replaces the default map as a whole; an empty one decodes to
// nil.
func (d *decoder) decodeStringMap(p keyPath, v any, rv reflect.Value) {
	m, ok := v.(map[string]any)
	if !ok || rv.Type().Key().Kind() != reflect.String || rv.Type().Elem().Kind() != reflect.String {
		d.wrongType(p, "a table of strings", v)
		return
	}
	if len(m) == 0 {
		rv.SetZero() // like an empty array: as if absent
		return
	}
	out := reflect.MakeMapWithSize(rv.Type(), len(m))
	for _, k := range sortedKeys(m) {
		s, ok := m[k].(string)
		if !ok {
			d.wrongType(p.key(k), "a string in double quotes", m[k])
			continue
		}
		out.SetMapIndex(reflect.ValueOf(k), reflect.ValueOf(s))
	}
	rv.Set(out)
}

// decodeSlice decodes an array of strings or an array of tables. Empty
// arrays decode to nil, like an absent key.
func (d *decoder) decodeSlice(p keyPath, v any, rv reflect.Value) {
	elemType := rv.Type().Elem()
	var elems []any
	switch a := v.(type) {
	case []any:
		elems = a
	case []map[string]any: // [[x]] blocks
		for _, m := range a {
			elems = append(elems, m)
		}
	default:
		if elemType.Kind() == reflect.Struct {
			d.wrongType(p, fmt.Sprintf("an array of tables: one [[%s]] block per entry", p), v)
		} else {
			d.wrongType(p, `an array, e.g. ["a", "b"]`, v)
		}
		return
	}
	if len(elems) == 0 {
		rv.SetZero()
		return
	}
	out := reflect.MakeSlice(rv.Type(), len(elems), len(elems))
	for i, e := range elems {
		d.decodeValue(p.index(i), e, out.Index(i))
	}
	rv.Set(out)
}

func (d *decoder) wrongType(p keyPath, want string, v any) {
	hint := ""
	if s, ok := v.(string); ok {
		s = strings.TrimSpace(s)
		_, intErr := strconv.ParseInt(s, 10, 64)
		if (strings.HasPrefix(want, "an integer") && intErr == nil) ||
			(want == "true or false" && (s == "true" || s == "false")) {
			hint = " (remove the quotes)"
		}
	}
	if strings.HasPrefix(want, "a duration") {
		if _, ok := v.(int64); ok {
			hint = ` (write a unit, e.g. "30s")`
		}
	}
	d.add(p, "must be %s, not %s%s", want, tomlType(v), hint)
}

// tomlType names the TOML type of a decoded value, for messages.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date/time"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return "an unsupported value"
}

// suggest proposes a known key for an unknown one in table p: a near miss in
// the same table, or the table where a key of that name belongs.
func suggest(p keyPath, key string, names []string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if strings.EqualFold(n, key) {
			return fmt.Sprintf(" (did you mean %q? keys are case-sensitive)", n)
		}
		if len(key) > 2*len(n)+2 { // also bounds the cost on absurd keys
			continue
		}
		if dist := levenshtein(key, n); dist < bestDist && dist <= len(n)/3+1 {
			best, bestDist = n, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	for _, t := range keyTables()[key] {
		if t != p.String() {
			if t == "" {
				return " (it belongs at the top of the file, before any [table])"
			}
			return fmt.Sprintf(" (it belongs in [%s])", t)
		}
	}
	return ""
}

// keyTables maps every key name of Config to the tables that have it.
var keyTables = sync.OnceValue(func() map[string][]string {
	out := make(map[string][]string)
	var walk func(t reflect.Type, p keyPath)
	walk = func(t reflect.Type, p keyPath) {
		fields := tomlFields(t)
		for _, name := range fields.names {
			out[name] = append(out[name], p.String())
			ft := t.Field(fields.index[name]).Type
			if ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != secretType && ft != durationType {
				walk(ft, p.key(name))
			}
		}
	}
	walk(reflect.TypeFor[Config](), nil)
	for _, tables := range out {
		slices.Sort(tables)
	}
	return out
})

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// finish fills the defaults that depend on the file's location, resolves
// relative paths and reads the *_file secrets.
func (d *decoder) finish(c *Config, path string, data []byte) {
	dir, _ := os.Getwd()
	if path != "" {
		if abs, err := filepath.Abs(path); err == nil {
			c.Path = abs
			dir = filepath.Dir(abs)
		} else {
			c.Path = path
		}
	}
	c.SHA256 = Hash(data)

	if c.Agent.ID == "" {
		c.Agent.ID = defaultID()
	}
	if c.Agent.DataDir == "" {
		c.Agent.DataDir = osDefaultDataDir()
	} else {
		c.Agent.DataDir = resolve(dir, c.Agent.DataDir)
	}

	for _, p := range []*string{&c.NATS.CredsFile, &c.NATS.NKeySeedFile, &c.NATS.TLSCAFile, &c.NATS.TLSCertFile, &c.NATS.TLSKeyFile} {
		if *p != "" {
			*p = resolve(dir, *p)
		}
	}

	for _, s := range []struct {
		table, key string
		secret     *Secret
		file       *string
	}{
		{"moka", "api_key", &c.Moka.APIKey, &c.Moka.APIKeyFile},
		{"moka", "client_secret", &c.Moka.ClientSecret, &c.Moka.ClientSecretFile},
		{"upstream", "token", &c.Upstream.Token, &c.Upstream.TokenFile},
		{"nats", "password", &c.NATS.Password, &c.NATS.PasswordFile},
		{"jurnal", "client_secret", &c.Jurnal.ClientSecret, &c.Jurnal.ClientSecretFile},
		{"checkout", "secret_key", &c.Checkout.SecretKey, &c.Checkout.SecretKeyFile},
		{"checkout", "registration_secret_key", &c.Checkout.RegistrationSecretKey, &c.Checkout.RegistrationSecretKeyFile},
	} {
		if *s.file == "" {
			continue
		}
		fileKey := keyPath{s.table, s.key + "_file"}
		if !s.secret.IsZero() {
			d.add(fileKey, "set either %s.%s or %s.%s_file, not both", s.table, s.key, s.table, s.key)
			continue
		}
		*s.file = resolve(dir, *s.file)
		v, err := readSecret(*s.file)
		if err != nil {
			d.add(fileKey, "%v", err)
			continue
		}
		*s.secret = NewSecret(v)
	}
}

// resolve makes p absolute against dir.
func resolve(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

// readSecret reads a secret file: a UTF-8 BOM and surrounding white space
// (the trailing newline editors add) are removed. Errors never hold the
// content.
func readSecret(path string) (string, error) {
	// ReadFileSafe refuses FIFOs and devices (opening or reading them could
	// block forever or never end) and files over the limit.
	b, _, err := ReadFileSafe(path, "the secret file", maxSecretFile)
	if errors.Is(err, ErrNotRegular) || errors.Is(err, ErrTooLarge) {
		return "", err
	}
	if err != nil {
		return "", fmt.Errorf("cannot read the secret file: %w", err)
	}
	s := strings.TrimSpace(strings.TrimPrefix(string(b), "\ufeff"))
	if s == "" {
		return "", fmt.Errorf("the secret file %s is empty", path)
	}
	return s, nil
}
