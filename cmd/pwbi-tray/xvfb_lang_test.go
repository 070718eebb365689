//go:build linux

package main

import (
	"context"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/pwbi/edge-agent/agent/deliver/httpsink/upstreamfake"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// TestTrayMenuLanguagesUnderXvfb opens the real tray's menu on a virtual X
// display once in English and once in Bahasa Indonesia (issue 15) and
// leaves a screenshot of each, menu-en.png and menu-id.png, under the
// artifacts directory's tray/ ($PWBI_TEST_ARTIFACTS, else
// testdata/artifacts at the module root, as the dashboard's screenshots).
//
// The agent's agent.language is "auto", so each tray follows its own
// desktop locale (LC_ALL). A screenshot cannot be read back as text here,
// so the texts are checked where the tray hands them to the menu: its
// debug log line "Tray menu" lists every visible label, and the Indonesian
// one must hold no text of the English tray and common catalogues (names
// such as Moka and NATS aside).
//
// Needs what TestTrayUnderXvfb needs; only a missing Xvfb skips it.
func TestTrayMenuLanguagesUnderXvfb(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the desktop test")
	}
	if _, err := exec.LookPath("Xvfb"); err != nil {
		t.Skip("no X server can run here: Xvfb is not installed (make deps installs xvfb trayer xdotool imagemagick x11-utils)")
	}
	for _, tool := range []string{"trayer", "xdotool", "xwininfo", "import"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run `make deps` (as root) or apt-get install xvfb trayer xdotool imagemagick x11-utils", tool)
		}
	}
	tmp := t.TempDir()
	artifacts := filepath.Join(artifactsDir(t), "tray")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	locales := filepath.Join("..", "..", "internal", "i18n", "locales")
	english := append(englishFragments(t, filepath.Join(locales, "tray.en.toml")),
		englishFragments(t, filepath.Join(locales, "common.en.toml"))...)

	agentBin, trayBin := buildBinaries(t, tmp)
	up := upstreamfake.NewServer(t, upstreamfake.Options{Token: "tok-tray-lang"})
	apiAddr := freeAddr(t)
	cfgPath := filepath.Join(tmp, "config.toml")
	writeFile(t, cfgPath, fmt.Sprintf(`version = 1
[agent]
id = "tray-lang-test"
data_dir = "data"
[moka]
enabled = false
[upstream]
url = %q
token = "tok-tray-lang"
flush_interval = "200ms"
[local_api]
listen = %q
`, up.URL(), apiAddr))
	startProc(t, "agent", tmp, []string{"LC_ALL=C.UTF-8"}, agentBin, "run", "--config", cfgPath)
	testutil.WaitFor(t, "the agent's local API", 20*time.Second, func() bool {
		_, err := localapi.NewClient(apiAddr, nil).Status(context.Background())
		return err == nil
	})

	display := startXvfb(t, tmp)
	xenv := []string{"DISPLAY=" + display}
	startProc(t, "trayer", tmp, xenv, "trayer", "--edge", "top", "--align", "right",
		"--widthtype", "pixel", "--width", "200", "--heighttype", "pixel", "--height", "40",
		"--transparent", "false", "--expand", "false")

	home := filepath.Join(tmp, "home")
	menus := map[string][]string{}
	for _, lc := range []struct{ lang, locale string }{{"en", "C.UTF-8"}, {"id", "id_ID.UTF-8"}} {
		env := append(slices.Clone(xenv),
			"HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, ".cache"), "TMPDIR="+tmp,
			"DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(tmp, "no-bus"),
			"LC_ALL="+lc.locale, "LANG="+lc.locale,
		)
		tp := startProc(t, "tray-"+lc.lang, tmp, env, trayBin, "--config", cfgPath, "--log", "", "--poll", "1s", "--debug")
		tp.waitLog(t, `msg="Tray state" icon=ok`, 20*time.Second)
		var icon rect
		testutil.WaitFor(t, "the systray window docked", 20*time.Second, func() bool {
			var ok bool
			icon, ok = findWindow(t, display, `"systray" "systray"`)
			return ok && icon.w > 1 && icon.h > 1
		})
		menuOpen := func() bool {
			_, ok := findWindowFunc(t, display, func(line string, r rect) bool {
				return strings.Contains(line, `("pwbi-tray" "Pwbi-tray")`) && r.h >= 150 &&
					viewable(t, display, strings.Fields(line)[0])
			})
			return ok
		}
		xdotool(t, display, "mousemove", strconv.Itoa(icon.x+icon.w/2), strconv.Itoa(icon.y+icon.h/2), "click", "1")
		testutil.WaitFor(t, "the menu window", 10*time.Second, menuOpen)
		shot := screenshot(t, display, filepath.Join(artifacts, "menu-"+lc.lang+".png"))
		if light := lightShare(shot, image.Rect(icon.x-150, icon.y+icon.h, icon.x+icon.w, icon.y+icon.h+200)); light < 0.5 {
			t.Errorf("%s: the menu area below the icon is %.0f%% light; the menu did not open?", lc.lang, 100*light)
		}
		xdotool(t, display, "key", "Escape")

		menus[lc.lang] = lastMenu(t, tp.out.String(), lc.lang)
		tp.stop(t)
		testutil.WaitFor(t, "the icon to go", 10*time.Second, func() bool {
			_, ok := findWindow(t, display, `"systray" "systray"`)
			return !ok
		})
	}

	if en := strings.Join(menus["en"], " | "); !strings.Contains(en, "Sync now") || !strings.Contains(en, "PWBI Agent: all good") {
		t.Errorf("English menu: %s", en)
	}
	id := strings.Join(menus["id"], " | ")
	for _, want := range []string{"PWBI Agent: berjalan normal", "Terakhir disinkronkan:", "Hari ini: Rp 0 · 0 transaksi", "Sinkronkan sekarang", "Buka dasbor", "Keluar"} {
		if !strings.Contains(id, want) {
			t.Errorf("Indonesian menu lacks %q: %s", want, id)
		}
	}
	for _, label := range menus["id"] {
		for _, f := range english {
			if strings.Contains(label, f) {
				t.Errorf("Indonesian menu line %q holds the English %q", label, f)
			}
		}
	}
}

// menuLogRE matches the tray's debug line listing the visible menu labels.
var menuLogRE = regexp.MustCompile(`msg="Tray menu" lang=(\w+) labels=("(?:[^"\\]|\\.)*"|\S+)`)

// lastMenu returns the visible labels of the last menu the tray logged,
// which must be in lang.
func lastMenu(t *testing.T, log, lang string) []string {
	t.Helper()
	m := menuLogRE.FindAllStringSubmatch(log, -1)
	if len(m) == 0 {
		t.Fatalf("the tray logged no menu:\n%s", log)
	}
	last := m[len(m)-1]
	if last[1] != lang {
		t.Errorf("the menu is in %q, want %q", last[1], lang)
	}
	labels := last[2]
	if strings.HasPrefix(labels, `"`) {
		var err error
		if labels, err = strconv.Unquote(labels); err != nil {
			t.Fatalf("menu log %q: %v", last[0], err)
		}
	}
	return strings.Split(labels, " | ")
}

// allowedEnglish are English catalogue fragments an Indonesian text may
// hold: names.
var allowedEnglish = []string{"PWBI Agent", "Cloud", "Moka", "NATS", "Jurnal"}

// englishFragments returns the literal parts (between template actions)
// of an English catalogue's messages that hold a word of three letters or
// more, names aside.
func englishFragments(t *testing.T, path string) []string {
	t.Helper()
	var cat map[string]map[string]string
	if _, err := toml.DecodeFile(path, &cat); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	action := regexp.MustCompile(`\{\{[^}]*\}\}`)
	word := regexp.MustCompile(`[A-Za-z]{3,}`)
	var frags []string
	for _, m := range cat {
		for form, text := range m {
			if form == "description" || form == "hash" {
				continue
			}
			for _, f := range action.Split(text, -1) {
				f = strings.Trim(f, " :·—,.()\"")
				if word.MatchString(f) && !slices.Contains(allowedEnglish, f) && !slices.Contains(frags, f) {
					frags = append(frags, f)
				}
			}
		}
	}
	if len(frags) < 10 {
		t.Fatalf("%s: only %d English fragments", path, len(frags))
	}
	return frags
}

// artifactsDir is where tests leave files for a person to look at, as
// internal/browsertest.ArtifactsDir: $PWBI_TEST_ARTIFACTS, else
// testdata/artifacts at the module root (ignored by git).
func artifactsDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("PWBI_TEST_ARTIFACTS"); d != "" {
		abs, err := filepath.Abs(d)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	return filepath.Join("..", "..", "testdata", "artifacts")
}
