package i18n

import (
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// catalogue is one locales/<area>.<lang>.toml as written: id → form →
// text ("description" included).
type catalogue map[string]map[string]string

func readCatalogues(t *testing.T) map[string]map[string]catalogue {
	t.Helper()
	out := map[string]map[string]catalogue{} // area → lang → catalogue
	entries, err := fs.ReadDir(localesFS, "locales")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		area, lang, ok := splitName(e.Name())
		if !ok {
			t.Errorf("locales/%s: not <area>.<lang>.toml with lang en or id", e.Name())
			continue
		}
		if !slices.Contains(Areas, area) {
			t.Errorf("locales/%s: unknown area %q (want one of %v)", e.Name(), area, Areas)
		}
		b, err := fs.ReadFile(localesFS, "locales/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		var c catalogue
		if err := toml.Unmarshal(b, &c); err != nil {
			t.Fatalf("locales/%s: %v", e.Name(), err)
		}
		if out[area] == nil {
			out[area] = map[string]catalogue{}
		}
		out[area][lang] = c
	}
	return out
}

var areaPrefix = map[string]string{"common": "Common", "dashboard": "Dash", "health": "Health", "tray": "Tray", "cli": "Cli"}

var fieldRE = regexp.MustCompile(`\{\{-?\s*\.(\w+)`)

// fields are the template fields a message uses, over all its forms.
func fields(m map[string]string) []string {
	set := map[string]bool{}
	for form, text := range m {
		if form == "description" {
			continue
		}
		for _, f := range fieldRE.FindAllStringSubmatch(text, -1) {
			set[f[1]] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// idExtraFields lets an Indonesian sentence name what the English one
// leaves to its detail (the sink, at the front of a sentence).
var idExtraFields = map[string][]string{
	"HealthSinkProblem":        {"Sink"},
	"HealthSinkOfflineProblem": {"Sink"},
}

// TestCataloguesComplete: every message exists in both languages, with the
// plural forms each language needs (English one and other, Indonesian
// other: it does not inflect) and the same template fields, and ids are
// UpperCamel with their area's prefix.
func TestCataloguesComplete(t *testing.T) {
	all := readCatalogues(t)
	if len(all) == 0 {
		t.Fatal("no catalogues")
	}
	idRE := regexp.MustCompile(`^[A-Z][A-Za-z0-9]+$`)
	for area, langs := range all {
		en, id := langs[English], langs[Indonesian]
		if en == nil || id == nil {
			t.Errorf("area %s: want both en and id catalogues, have %v", area, slices.Sorted(maps.Keys(langs)))
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(en)) {
			if !idRE.MatchString(k) || !strings.HasPrefix(k, areaPrefix[area]) {
				t.Errorf("%s: id %q is not UpperCamel with the prefix %q", area, k, areaPrefix[area])
			}
			im, ok := id[k]
			if !ok {
				t.Errorf("%s: %s has no Indonesian", area, k)
				continue
			}
			em := en[k]
			if em["other"] == "" || im["other"] == "" {
				t.Errorf("%s: %s lacks the form other (en %q, id %q)", area, k, em["other"], im["other"])
			}
			for form := range em {
				if !slices.Contains([]string{"description", "one", "other"}, form) {
					t.Errorf("%s: %s (en) has the form %q: English has one and other", area, k, form)
				}
			}
			for form := range im {
				if !slices.Contains([]string{"description", "other"}, form) {
					t.Errorf("%s: %s (id) has the form %q: Indonesian has only other", area, k, form)
				}
			}
			ef, idf := fields(em), fields(im)
			for _, f := range ef {
				if !slices.Contains(idf, f) {
					t.Errorf("%s: %s (id) leaves out {{.%s}}", area, k, f)
				}
			}
			for _, f := range idf {
				if !slices.Contains(ef, f) && !slices.Contains(idExtraFields[k], f) {
					t.Errorf("%s: %s (id) uses {{.%s}}, which English does not", area, k, f)
				}
			}
		}
		for k := range id {
			if _, ok := en[k]; !ok {
				t.Errorf("%s: %s is only in Indonesian", area, k)
			}
		}
	}
}

// sameInBothLanguages are the messages whose Indonesian is rightly the
// English: names and loan words Moka's Indonesian UI uses as they are.
var sameInBothLanguages = map[string]bool{
	"CommonSinkNatsTitle":   true, // a product name
	"CommonSinkJurnal":      true,
	"CommonSinkJurnalTitle": true,
	"DashColOutlet":         true, // "Outlet", as in Moka
	"DashOutletUnnamed":     true, // "Outlet 12"
	"DashColStatus":         true, // "Status", as in Moka
}

// TestIndonesianIsTranslated: no Indonesian message is the English one
// left as it was, apart from the names listed in sameInBothLanguages.
func TestIndonesianIsTranslated(t *testing.T) {
	for area, langs := range readCatalogues(t) {
		en, id := langs[English], langs[Indonesian]
		for k, em := range en {
			im, ok := id[k]
			if !ok || sameInBothLanguages[k] {
				continue
			}
			if strings.TrimSpace(em["other"]) == strings.TrimSpace(im["other"]) {
				t.Errorf("%s: %s is not translated: %q", area, k, im["other"])
			}
		}
	}
}

func TestKeysAndLookups(t *testing.T) {
	for _, area := range []string{"common", "dashboard", "health"} {
		ks := Keys(area)
		if len(ks) == 0 {
			t.Fatalf("Keys(%q) is empty", area)
		}
		for _, k := range ks {
			if !Has(k) {
				t.Errorf("Has(%q) = false", k)
			}
			for _, l := range Languages {
				if got := New(l).T(k); got == k {
					t.Errorf("%s: %s renders as its id", l, k)
				}
			}
		}
	}
	if Keys("nope") != nil || Has("NoSuchMessage") {
		t.Error("an unknown area or id exists")
	}
	if got := New("id").T("NoSuchMessage"); got != "NoSuchMessage" {
		t.Errorf("a missing id renders as %q, want the id", got)
	}
}

func TestPrinter(t *testing.T) {
	en, id := New("en"), New("id")
	if New("fr").Lang() != English || New("").Lang() != English || id.Lang() != Indonesian {
		t.Error("New: want id for id and en for anything else")
	}
	for _, c := range []struct {
		p    *Printer
		got  string
		want string
	}{
		{en, en.T("CommonStateOK"), "All good"},
		{id, id.T("CommonStateOK"), "Semua beres"},
		{en, en.N("CommonDays", 1), "1 day"},
		{en, en.N("CommonDays", 2), "2 days"},
		{id, id.N("CommonDays", 1), "1 hari"},
		{id, id.N("CommonDays", 5), "5 hari"},
		{en, en.T("DashColSentTo", map[string]any{"Sink": "PWBI cloud"}), "Delivered to PWBI cloud"},
		{id, id.T("DashColSentTo", map[string]any{"Sink": "Cloud PWBI"}), "Terkirim ke Cloud PWBI"},
		{en, en.Msg("HealthOutletFailing", map[string]any{"Count": 3, "Outlet": "Kemang (o1)", "Error": "x"}), "outlet Kemang (o1) has failed 3 polls in a row: x"},
		{id, id.Msg("HealthOutletFailing", map[string]any{"Count": float64(3), "Outlet": "Kemang (o1)", "Error": "x"}), "Outlet Kemang (o1) gagal disinkronkan 3 kali berturut-turut: x"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.p.Lang(), c.got, c.want)
		}
	}
	// N does not change the caller's data.
	data := map[string]any{"Hours": 2}
	en.N("CommonDaysHours", 3, data)
	if _, ok := data["Count"]; ok {
		t.Error("N wrote into the caller's map")
	}
}

func TestMoney(t *testing.T) {
	en, id := New("en"), New("id")
	for _, c := range []struct{ in, id, en string }{
		{"1250000", "Rp 1.250.000", "Rp 1,250,000"},
		{"1250000.00", "Rp 1.250.000", "Rp 1,250,000"},
		{"1500.5", "Rp 1.500,50", "Rp 1,500.50"},
		{"13636.36", "Rp 13.636,36", "Rp 13,636.36"},
		{"0.004", "Rp 0", "Rp 0"},
		{"0.005", "Rp 0,01", "Rp 0.01"},
		{"0", "Rp 0", "Rp 0"},
		{"999", "Rp 999", "Rp 999"},
		{"1000", "Rp 1.000", "Rp 1,000"},
		{"-7500", "-Rp 7.500", "-Rp 7,500"},
		{"123456789012345678901234567890", "Rp 123.456.789.012.345.678.901.234.567.890", "Rp 123,456,789,012,345,678,901,234,567,890"},
		{" 42 ", "Rp 42", "Rp 42"},
		{"abc", "abc", "abc"},
		{"", "", ""},
	} {
		if got := id.Money(c.in); got != c.id {
			t.Errorf("id Money(%q) = %q, want %q", c.in, got, c.id)
		}
		if got := en.Money(c.in); got != c.en {
			t.Errorf("en Money(%q) = %q, want %q", c.in, got, c.en)
		}
	}
}

func TestNumbersAndSizes(t *testing.T) {
	en, id := New("en"), New("id")
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1.000", 1234567: "1.234.567", -1234: "-1.234"} {
		if got := id.Count(n); got != want {
			t.Errorf("id Count(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]string{512: "512 B", 1536: "1,5 KB", 1 << 20: "1,0 MB", 1<<20 - 1: "1.024,0 KB", 1<<63 - 1: "8.388.608,0 TB"} {
		if got := id.Bytes(n); got != want {
			t.Errorf("id Bytes(%d) = %q, want %q", n, got, want)
		}
	}
	if got := en.Bytes(1536); got != "1.5 KB" {
		t.Errorf("en Bytes = %q", got)
	}
}

func TestDates(t *testing.T) {
	jkt, err := time.LoadLocation("Asia/Jakarta")
	if err != nil {
		t.Skip("no time zone database")
	}
	// 07:05 UTC is 14:05 in Jakarta: shown in the time's own zone.
	at := time.Date(2026, 12, 6, 7, 5, 0, 0, time.UTC).In(jkt)
	en, id := New("en"), New("id")
	for _, c := range []struct{ got, want string }{
		{id.Date(at), "6 Des 2026"},
		{en.Date(at), "6 Dec 2026"},
		{id.DateTime(at), "6 Des 2026 14.05"},
		{en.DateTime(at), "6 Dec 2026 14:05"},
		{id.DayMonth(at), "6 Des"},
		{en.DayMonth(at), "6 Dec"},
		{id.Date(time.Date(2026, 8, 17, 0, 0, 0, 0, jkt)), "17 Agu 2026"},
		{id.Date(time.Date(2026, 5, 1, 0, 0, 0, 0, jkt)), "1 Mei 2026"},
		{id.Date(time.Date(2026, 10, 1, 0, 0, 0, 0, jkt)), "1 Okt 2026"},
		// Midnight in Jakarta is still the previous day in UTC.
		{id.Date(time.Date(2026, 12, 6, 17, 30, 0, 0, time.UTC).In(jkt)), "7 Des 2026"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestAmount: rupiah as Money, another currency with its code, nothing
// as zero.
func TestAmount(t *testing.T) {
	en, id := New("en"), New("id")
	for _, c := range []struct{ got, want string }{
		{id.Amount("IDR", "1250000"), "Rp 1.250.000"},
		{en.Amount("", "1250000"), "Rp 1,250,000"},
		{en.Amount("USD", "12.5"), "USD 12.50"},
		{id.Amount("USD", "-12.5"), "-USD 12,50"},
		{id.Amount("IDR", ""), "Rp 0"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestAgo: the relative time the tray and the command line show. The
// English words are those of the former localapi.Ago, which scripts and
// the docs quote.
func TestAgo(t *testing.T) {
	en, id := New("en"), New("id")
	const day = 24 * time.Hour
	for _, c := range []struct {
		p    *Printer
		d    time.Duration
		want string
	}{
		{en, 0, "just now"},
		{en, 59 * time.Second, "just now"},
		{en, time.Minute, "1 min ago"},
		{en, 59 * time.Minute, "59 min ago"},
		{en, time.Hour, "1 h ago"},
		{en, 47 * time.Hour, "47 h ago"},
		{en, 48 * time.Hour, "2 days ago"},
		{en, 30 * day, "30 days ago"},
		{en, -5 * time.Minute, "in 5 min"},
		{en, -30 * time.Second, "in 30 s"},
		{id, 10 * time.Second, "baru saja"},
		{id, 10 * time.Minute, "10 mnt lalu"},
		{id, 3 * time.Hour, "3 jam lalu"},
		{id, 72 * time.Hour, "3 hari lalu"},
		{id, -5 * time.Minute, "5 mnt lagi"},
	} {
		if got := c.p.Ago(c.d); got != c.want {
			t.Errorf("%s Ago(%v) = %q, want %q", c.p.Lang(), c.d, got, c.want)
		}
	}
}

func TestMatch(t *testing.T) {
	for in, want := range map[string]string{
		"":                           "en",
		"id":                         "id",
		"id-ID":                      "id",
		"in":                         "id", // the old code for Indonesian
		"id_ID.UTF-8":                "id",
		"id_ID.utf8@euro":            "id",
		"en_US.UTF-8":                "en",
		"C":                          "en",
		"POSIX":                      "en",
		"C.UTF-8":                    "en",
		"fr-FR":                      "en",
		"ms-MY":                      "id", // Malay readers read Indonesian better than English (CLDR)
		"id-ID,id;q=0.9,en;q=0.8":    "id",
		"en-US,en;q=0.9,id;q=0.8":    "en",
		"fr-FR,fr;q=0.9,id;q=0.5":    "id",
		"fr-FR,fr;q=0.9,de;q=0.5":    "en",
		"*":                          "en",
		"id;q=0, en":                 "en",
		"garbage;;;q=x":              "en",
		"en-GB;q=0.3, id-ID;q=0.9":   "id",
		"zz-ZZ,id-u-ca-islamic;q=.5": "id",
	} {
		if got := Match(in); got != want {
			t.Errorf("Match(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Match("", "id-ID"); got != "id" {
		t.Errorf("Match skips empty preferences: %q", got)
	}
}

func TestResolve(t *testing.T) {
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		t.Setenv(k, "")
	}
	if Resolve("id") != "id" || Resolve("en") != "en" || Resolve(" ID ") != "id" {
		t.Error("an explicit setting does not stand")
	}
	if got := Resolve("auto"); got != "en" {
		t.Errorf("auto without a locale = %q, want en", got)
	}
	t.Setenv("LANG", "id_ID.UTF-8")
	if got := Resolve("auto"); got != "id" {
		t.Errorf("auto with LANG=id_ID = %q", got)
	}
	if got := Resolve("en"); got != "en" {
		t.Errorf("en with LANG=id_ID = %q", got)
	}
	t.Setenv("LC_MESSAGES", "en_US.UTF-8")
	if got := OSLanguage(); got != "en" {
		t.Errorf("LC_MESSAGES before LANG: %q", got)
	}
	t.Setenv("LC_ALL", "id_ID")
	if got := OSLanguage(); got != "id" {
		t.Errorf("LC_ALL first: %q", got)
	}
}

// FuzzMatch: any Accept-Language header or locale gives id or en.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{"id-ID,id;q=0.9", "en", "", "*;q=0", "id_ID.UTF-8@x", ",,;;", "x-" + strings.Repeat("a", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := Match(s); got != "id" && got != "en" {
			t.Fatalf("Match(%q) = %q", s, got)
		}
	})
}

// FuzzMoney: amounts from Moka never panic, and a number keeps its digits.
func FuzzMoney(f *testing.F) {
	for _, s := range []string{"1250000", "-0.5", "1e3", "0.005", "abc", "9999999999999999999999.999"} {
		f.Add(s)
	}
	id := New("id")
	digits := regexp.MustCompile(`^-?[0-9]{1,40}$`)
	f.Fuzz(func(t *testing.T, s string) {
		got := id.Money(s)
		if digits.MatchString(s) {
			want := strings.TrimLeft(strings.TrimPrefix(s, "-"), "0")
			if want == "" {
				want = "0"
			}
			if plain := strings.ReplaceAll(strings.TrimPrefix(strings.TrimPrefix(got, "-"), "Rp "), ".", ""); plain != want {
				t.Fatalf("Money(%q) = %q", s, got)
			}
		}
	})
}

// Printers are shared by the dashboard's requests: rendering at once from
// many goroutines is safe (run with -race).
func TestPrinterConcurrent(t *testing.T) {
	p := New("id")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				if got := p.N("DashChartSales", i*j, map[string]any{"Count": i * j}); !strings.HasSuffix(got, " penjualan") {
					t.Errorf("N = %q", got)
					return
				}
				_ = New("en").Msg("HealthMokaPollBlocked", map[string]any{"Count": j, "Error": "x"})
			}
		}()
	}
	wg.Wait()
}
