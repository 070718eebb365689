// Package i18n is the agent's two languages, Bahasa Indonesia and English,
// for everything a person reads: the dashboard, the problem texts of the
// status, the tray and the CLI (issue 15).
//
// The messages live in TOML catalogues embedded from locales/, one file per
// area and language (locales/<area>.<lang>.toml; areas common, dashboard,
// health, tray, cli), in the form of github.com/nicksnyder/go-i18n/v2, which
// also gives the plural rules. Message ids are UpperCamel and start with
// their area's prefix (DashSyncNow, HealthDiskFull, TrayQuit, CliImportDone).
//
// A [Printer] renders messages, money and dates in one language. Machine
// fields (states, codes, JSON keys) stay English and never go through it.
//
// The package imports nothing of the agent: the tray, the CLI and the
// service all use it.
package i18n

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
	goi18n "github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

// The languages, as agent.language and ?lang= spell them.
const (
	English    = "en"
	Indonesian = "id"
	// Auto is the agent.language setting that follows the OS locale (tray,
	// CLI) or the browser's Accept-Language (dashboard).
	Auto = "auto"
)

// Languages are the languages the catalogues hold, English first (the
// fallback).
var Languages = []string{English, Indonesian}

// Areas are the catalogues' areas.
var Areas = []string{"common", "dashboard", "health", "tray", "cli"}

//go:embed locales
var localesFS embed.FS

var (
	loadOnce sync.Once
	bundle   *goi18n.Bundle
	// keys are the message ids of each area, sorted, from the English
	// files.
	keys map[string][]string
	// sources are the messages' texts as written (form other), per
	// language and id.
	sources map[string]map[string]string
	// localizers per language; a Localizer is safe for concurrent use
	// once built (it only reads the bundle).
	localizers map[string]*goi18n.Localizer
)

// load parses the embedded catalogues once. A catalogue that does not parse
// is a build defect the package's tests catch, so it panics.
func load() {
	loadOnce.Do(func() {
		b, k, src, err := parseCatalogues(localesFS, "locales")
		if err != nil {
			panic(fmt.Sprintf("i18n: %v", err))
		}
		bundle, keys, sources = b, k, src
		localizers = map[string]*goi18n.Localizer{}
		for _, l := range Languages {
			localizers[l] = goi18n.NewLocalizer(bundle, l)
		}
	})
}

// parseCatalogues reads every <area>.<lang>.toml under dir of fsys.
func parseCatalogues(fsys fs.FS, dir string) (*goi18n.Bundle, map[string][]string, map[string]map[string]string, error) {
	b := goi18n.NewBundle(language.English)
	b.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading the catalogues: %w", err)
	}
	k := map[string][]string{}
	src := map[string]map[string]string{English: {}, Indonesian: {}}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".toml") {
			continue
		}
		area, lang, ok := splitName(e.Name())
		if !ok {
			return nil, nil, nil, fmt.Errorf("catalogue %s: want <area>.<lang>.toml", e.Name())
		}
		mf, err := b.LoadMessageFileFS(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("catalogue %s: %w", e.Name(), err)
		}
		for _, m := range mf.Messages {
			src[lang][m.ID] = m.Other
		}
		if lang == English {
			for _, m := range mf.Messages {
				k[area] = append(k[area], m.ID)
			}
		}
	}
	for a := range k {
		slices.Sort(k[a])
	}
	return b, k, src, nil
}

func splitName(name string) (area, lang string, ok bool) {
	parts := strings.Split(strings.TrimSuffix(name, ".toml"), ".")
	if len(parts) != 2 || !slices.Contains(Languages, parts[1]) {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// Keys returns the message ids of an area (from its English catalogue),
// sorted; nil for an unknown area.
func Keys(area string) []string {
	load()
	return slices.Clone(keys[area])
}

// Printer renders messages, money and dates in one language. It is safe
// for concurrent use, and cheap to copy and pass around.
type Printer struct {
	lang string
	loc  *goi18n.Localizer
}

// New returns the printer of lang: "id" or "en"; anything else is English.
func New(lang string) *Printer {
	load()
	if lang != Indonesian {
		lang = English
	}
	return &Printer{lang: lang, loc: localizers[lang]}
}

// Lang is the printer's language: "id" or "en".
func (p *Printer) Lang() string { return p.lang }

// T renders the message id with the template data. A missing id renders as
// the id itself (a test forbids missing ids).
func (p *Printer) T(id string, data ...map[string]any) string {
	return p.localize(&goi18n.LocalizeConfig{MessageID: id, TemplateData: merge(data)})
}

// N renders the plural message id for count; the data gets .Count.
func (p *Printer) N(id string, count int, data ...map[string]any) string {
	// A copy: the caller's map is not ours to change.
	d := map[string]any{"Count": count}
	for _, m := range data {
		for k, v := range m {
			d[k] = v
		}
	}
	return p.localize(&goi18n.LocalizeConfig{MessageID: id, TemplateData: d, PluralCount: count})
}

func (p *Printer) localize(c *goi18n.LocalizeConfig) string {
	// A message missing in Indonesian comes back in English with an
	// error: the English text is still the better answer. Only an id
	// missing everywhere gives nothing.
	s, _ := p.loc.Localize(c)
	if s == "" {
		return c.MessageID
	}
	return s
}

// Msg renders id with data the way a stored message (a problem's code and
// parameters) asks: as a plural for data["Count"] when it holds a whole
// number, else as T.
func (p *Printer) Msg(id string, data map[string]any) string {
	switch n := data["Count"].(type) {
	case int:
		return p.N(id, n, data)
	case int64:
		return p.N(id, int(n), data)
	case float64: // a count that went through JSON
		if n == float64(int(n)) {
			return p.N(id, int(n), data)
		}
	}
	return p.T(id, data)
}

func merge(data []map[string]any) map[string]any {
	switch len(data) {
	case 0:
		return nil
	case 1:
		return data[0]
	}
	out := map[string]any{}
	for _, d := range data {
		for k, v := range d {
			out[k] = v
		}
	}
	return out
}

// Source returns the text of message id in lang as the catalogue writes
// it (its form other, template actions and all), for checks such as "no
// English on the Indonesian page".
func Source(lang, id string) (string, bool) {
	load()
	s, ok := sources[lang][id]
	return s, ok
}

// Has reports whether id is a message of the catalogues.
func Has(id string) bool {
	load()
	for _, ks := range keys {
		if _, ok := slices.BinarySearch(ks, id); ok {
			return true
		}
	}
	return false
}
