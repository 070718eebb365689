package i18n

import (
	"cmp"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/text/language"
)

var matcher = language.NewMatcher([]language.Tag{language.English, language.Indonesian})

// Match returns the best of "id" and "en" for prefs: language tags
// ("id-ID"), POSIX locales ("id_ID.UTF-8") or Accept-Language values
// ("id-ID,id;q=0.9,en;q=0.8"), most preferred first. Nothing usable gives
// "en".
func Match(prefs ...string) string {
	var tags []language.Tag
	for _, p := range prefs {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if strings.ContainsAny(p, ",;") {
			tags = append(tags, acceptLanguage(p)...)
			continue
		}
		if t, ok := posixTag(p); ok {
			tags = append(tags, t)
		}
	}
	if len(tags) == 0 {
		return English
	}
	_, i, conf := matcher.Match(tags...)
	if conf == language.No || i != 1 {
		return English
	}
	return Indonesian
}

// acceptLanguage reads an Accept-Language header, most wanted first. One
// entry the parser refuses (an unknown tag) does not spoil the others.
func acceptLanguage(h string) []language.Tag {
	if ts, _, err := language.ParseAcceptLanguage(h); err == nil {
		return ts
	}
	type entry struct {
		tag language.Tag
		q   float64
	}
	var es []entry
	for _, part := range strings.Split(h, ",") {
		name, params, _ := strings.Cut(part, ";")
		t, err := language.Parse(strings.TrimSpace(name))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if q, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
				continue
			}
		}
		if q > 0 {
			es = append(es, entry{t, q})
		}
	}
	slices.SortStableFunc(es, func(a, b entry) int { return cmp.Compare(b.q, a.q) })
	out := make([]language.Tag, len(es))
	for i, e := range es {
		out[i] = e.tag
	}
	return out
}

// posixTag reads a locale such as "id_ID.UTF-8@euro" or "in-ID". "C" and
// "POSIX" say nothing.
func posixTag(s string) (language.Tag, bool) {
	if i := strings.IndexAny(s, ".@"); i >= 0 {
		s = s[:i]
	}
	if s == "" || s == "C" || s == "POSIX" {
		return language.Und, false
	}
	t, err := language.Parse(strings.ReplaceAll(s, "_", "-"))
	if err != nil {
		return language.Und, false
	}
	return t, true
}

// Resolve turns the agent.language setting into a language: "id" and "en"
// stand; "auto" (or anything else) follows OSLanguage.
func Resolve(setting string) string {
	switch strings.ToLower(strings.TrimSpace(setting)) {
	case Indonesian:
		return Indonesian
	case English:
		return English
	}
	return OSLanguage()
}

// OSLanguage is the language of the user's locale: "id" or "en".
func OSLanguage() string {
	return Match(osLocales()...)
}

// unixLocales is the POSIX order: LC_ALL wins, then LC_MESSAGES, then
// LANG; the first that is set decides.
func unixLocales() []string {
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if v := os.Getenv(k); v != "" {
			return []string{v}
		}
	}
	return nil
}
