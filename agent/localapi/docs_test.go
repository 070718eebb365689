package localapi

import (
	"encoding"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// docs/localapi.md is what technicians and the chain's cloud engineers
// script against: these tests keep it complete. A field added to the
// status or the summary, or a problem code added to agent/health, fails
// here until the document describes it.

const localAPIDoc = "../../docs/localapi.md"

// Headings of docs/localapi.md that hold the field tables and the codes.
const (
	docStatusSection   = "## GET /v1/status"
	docSummarySection  = "## GET /v1/summary"
	docProblemsSection = "## Problem codes"
)

// docSection returns the part of the document under heading (a whole
// line), up to the next heading of the same level.
func docSection(t *testing.T, doc, heading string) string {
	t.Helper()
	var (
		out strings.Builder
		in  bool
	)
	for line := range strings.Lines(doc) {
		trimmed := strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(trimmed, "## ") {
			if in {
				break
			}
			in = trimmed == heading
		}
		if in {
			out.WriteString(line)
		}
	}
	if out.Len() == 0 {
		t.Fatalf("%s has no line %q", localAPIDoc, heading)
	}
	return out.String()
}

// docRows returns the first cells of the Markdown table rows of text that
// are one name in backquotes: "| `moka.timezone` | string | …" gives
// "moka.timezone". A name mentioned in passing elsewhere does not count.
func docRows(text string) map[string]bool {
	rows := map[string]bool{}
	for line := range strings.Lines(text) {
		cell, ok := strings.CutPrefix(strings.TrimSpace(line), "| `")
		if !ok {
			continue
		}
		if name, _, ok := strings.Cut(cell, "` |"); ok && !strings.Contains(name, "`") {
			rows[name] = true
		}
	}
	return rows
}

// errorCodeWords are the catalogue ids agent/health passes as the
// ErrorCode parameter: words standing in for a missing error.
var errorCodeWords = map[string]bool{"HealthNoReason": true, "HealthNoAnswer": true}

func readLocalAPIDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(localAPIDoc)
	if err != nil {
		t.Fatalf("the local API's document: %v", err)
	}
	return string(b)
}

// docField is one JSON field a reader must find documented.
type docField struct {
	// Path is the field's place in the answer: "moka.outlets[].last_sync_at"
	// ("[]" an element of a list, ".*" a value of an object with free keys).
	Path string
	// Go names the field in the source: "OutletStatus.LastSyncAt".
	Go string
}

// jsonFields returns every field of the JSON encoding of root, following
// nested structs, pointers, slices, arrays and maps. A struct type used in
// several places (the summary's figures: total, totals[],
// outlets[].days[], outlets[].total) is documented once, at the shortest
// of its paths; its other places are documented as the fields that hold
// it. Types that encode themselves (time.Time, json.RawMessage) and
// interfaces are leaves.
func jsonFields(root reflect.Type) []docField {
	// First every place each struct type appears, then the shortest.
	places := map[reflect.Type][]string{}
	var visit func(t reflect.Type, path string, stack []reflect.Type)
	visit = func(t reflect.Type, path string, stack []reflect.Type) {
		t, path, ok := structAt(t, path)
		if !ok || slices.Contains(stack, t) {
			return
		}
		places[t] = append(places[t], path)
		stack = append(stack, t)
		for _, f := range structFields(t) {
			if f.embedded {
				visit(f.typ, path, stack) // its fields sit beside ours
			} else {
				visit(f.typ, joinPath(path, f.name), stack)
			}
		}
	}
	visit(root, "", nil)

	var out []docField
	for t, paths := range places {
		slices.SortFunc(paths, func(a, b string) int {
			if len(a) != len(b) {
				return len(a) - len(b)
			}
			return strings.Compare(a, b)
		})
		for _, f := range structFields(t) {
			if !f.embedded {
				out = append(out, docField{Path: joinPath(paths[0], f.name), Go: t.Name() + "." + f.goName})
			}
		}
	}
	slices.SortFunc(out, func(a, b docField) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// structAt unwraps pointers, lists and maps down to a struct, extending
// path as the JSON nests; ok is false for a leaf.
func structAt(t reflect.Type, path string) (reflect.Type, string, bool) {
	for {
		if encodesItself(t) {
			return nil, "", false
		}
		switch t.Kind() {
		case reflect.Pointer:
			t = t.Elem()
		case reflect.Slice, reflect.Array:
			t, path = t.Elem(), path+"[]"
		case reflect.Map:
			t, path = t.Elem(), path+".*"
		case reflect.Struct:
			return t, path, true
		default:
			return nil, "", false
		}
	}
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

func encodesItself(t reflect.Type) bool {
	for _, u := range []reflect.Type{t, reflect.PointerTo(t)} {
		if u.Implements(jsonMarshaler) || u.Implements(textMarshaler) {
			return true
		}
	}
	return false
}

type structField struct {
	name, goName string
	typ          reflect.Type
	// embedded: an anonymous struct without a JSON name, whose fields
	// encoding/json puts beside the outer struct's.
	embedded bool
}

// structFields are t's fields as encoding/json sees them.
func structFields(t reflect.Type) []structField {
	var out []structField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, structField{goName: f.Name, typ: f.Type, embedded: true})
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, structField{name: name, goName: f.Name, typ: f.Type})
	}
	return out
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// The walk itself: if it lost its way, the document tests below would pass
// on nothing.
func TestJSONFieldsWalk(t *testing.T) {
	has := func(fields []docField, path, goName string) {
		t.Helper()
		if !slices.Contains(fields, docField{Path: path, Go: goName}) {
			t.Errorf("jsonFields lacks %s (%s); it has %d fields", path, goName, len(fields))
		}
	}
	st := jsonFields(reflect.TypeFor[Status]())
	has(st, "state", "Status.State")
	has(st, "moka.outlets[].last_sync_at", "OutletStatus.LastSyncAt")
	has(st, "problem_details[].params", "ProblemDetail.Params")
	has(st, "checkout.tls_spki_sha256", "CheckoutStatus.TLSKeyPin")
	has(st, "store.quarantine.at", "QuarantineStatus.At")
	for _, f := range st {
		if strings.HasPrefix(f.Path, "started_at.") || strings.HasPrefix(f.Path, "problem_details[].params.") {
			t.Errorf("jsonFields went into a leaf: %s", f.Path)
		}
	}
	sum := jsonFields(reflect.TypeFor[Summary]())
	has(sum, "totals", "Summary.Totals")
	has(sum, "totals[].date", "SummaryDay.Date")
	has(sum, "total.sales", "SummaryFigures.Sales")
	has(sum, "outlets[].total", "SummaryOutlet.Total")
	has(sum, "total.delivered[].dead_letters", "SinkCount.DeadLetters")
	for _, f := range sum {
		// The figures are documented once, under "total".
		if strings.HasSuffix(f.Path, ".sales") && f.Path != "total.sales" {
			t.Errorf("the summary's figures are listed twice: %s", f.Path)
		}
	}
}

// TestLocalAPIDocHasEveryField: every JSON field of GET /v1/status and GET
// /v1/summary is in docs/localapi.md, written as its path in backquotes
// (`moka.outlets[].last_sync_at`) in that endpoint's section.
func TestLocalAPIDocHasEveryField(t *testing.T) {
	doc := readLocalAPIDoc(t)
	for _, c := range []struct {
		section string
		root    reflect.Type
	}{
		{docStatusSection, reflect.TypeFor[Status]()},
		{docSummarySection, reflect.TypeFor[Summary]()},
	} {
		rows := docRows(docSection(t, doc, c.section))
		for _, f := range jsonFields(c.root) {
			if !rows[f.Path] {
				t.Errorf("%s, section %q, has no row for the field `%s` (%s): add a table row \"| `%s` | type | meaning |\" "+
					"saying what it means, and when it is empty or null", localAPIDoc, c.section, f.Path, f.Go, f.Path)
			}
		}
	}
}

// healthCodeRE matches the message ids of internal/i18n's health
// catalogue that agent/health writes into problem_details: the problems'
// codes, and the ErrorCode parameter that stands for a missing error.
var healthCodeRE = regexp.MustCompile(`^Health[A-Z][A-Za-z0-9]*$`)

// healthCodes are the codes agent/health can put into problem_details,
// read from the source: the package exports no list, and the rule table
// names each code as a string literal where it raises the problem. A
// sink's problem keeps the sink's own code (sink.Say("HealthUpstream…"),
// the delivery loop's codeBuffer…), so agent/deliver and its sinks are
// read too.
func healthCodes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../health/*.go")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir("../deliver", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".go") {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := sourceStrings(t, files, healthCodeRE)
	codes := make([]string, 0, len(seen))
	for c := range seen {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	// If the codes moved out of string literals, this reading must be
	// changed, not pass on an empty list.
	for _, known := range []string{"HealthConfigError", "HealthDiskFull", "HealthSinkUnreachable", "HealthOutletFailing", "HealthNoAnswer",
		"HealthUpstreamWebPage", "HealthNatsNoStream", "HealthJurnalQuota", "HealthSinkBufferAck"} {
		if !seen[known] {
			t.Fatalf("found no %s in agent/health's and agent/deliver's source (found %d codes): change healthCodes to find them", known, len(codes))
		}
	}
	return codes
}

// sourceStrings returns the string literals of the non-test Go files
// that re matches.
func sourceStrings(t *testing.T, files []string, re *regexp.Regexp) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	seen := map[string]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			if s, err := strconv.Unquote(lit.Value); err == nil && re.MatchString(s) {
				seen[s] = true
			}
			return true
		})
	}
	return seen
}

// TestLocalAPIDocHasCodedParams: the params that hold a catalogue id for
// the reader to render (ErrorCode; DetailCode with DetailParams, a sink's
// sentence inside another problem) are explained in the problem codes
// section, or a client shows Detail in English where the dashboard does
// not.
func TestLocalAPIDocHasCodedParams(t *testing.T) {
	text := docSection(t, readLocalAPIDoc(t), docProblemsSection)
	files, err := filepath.Glob("../health/*.go")
	if err != nil {
		t.Fatal(err)
	}
	params := sourceStrings(t, files, regexp.MustCompile(`^[A-Z][A-Za-z]*(Code|Params)$`))
	for _, known := range []string{"ErrorCode", "DetailCode", "DetailParams"} {
		if !params[known] {
			t.Fatalf("found no param %s in agent/health's source (found %v): change this test to find them", known, params)
		}
	}
	for p := range params {
		if !strings.Contains(text, "`"+p+"`") {
			t.Errorf("%s, section %q, does not explain the param `%s`", localAPIDoc, docProblemsSection, p)
		}
	}
}

// TestLocalAPIDocHasEveryProblemCode: every code of agent/health's rule
// table and every sink's own code is in the problem codes section of docs/localapi.md, in
// backquotes, so that a technician can look up what it means and what to
// do.
func TestLocalAPIDocHasEveryProblemCode(t *testing.T) {
	text := docSection(t, readLocalAPIDoc(t), docProblemsSection)
	rows := docRows(text)
	for _, code := range healthCodes(t) {
		// HealthNoReason and HealthNoAnswer are values of the ErrorCode
		// parameter, not codes of their own: named in the section's text.
		if !rows[code] && !(errorCodeWords[code] && strings.Contains(text, "`"+code+"`")) {
			t.Errorf("%s, section %q, has no row for the problem code `%s` (agent/health): add a table row "+
				"\"| `%s` | severity | params | meaning | what to do |\"", localAPIDoc, docProblemsSection, code, code)
		}
	}
}
