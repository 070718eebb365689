//go:build linux

package main

import (
	"context"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

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
	tmp, artifacts := desktopTest(t)
	locales := filepath.Join("..", "..", "internal", "i18n", "locales")
	english := append(testutil.EnglishFragments(t, filepath.Join(locales, "tray.en.toml")),
		testutil.EnglishFragments(t, filepath.Join(locales, "common.en.toml"))...)

	agentBin, trayBin := buildBinaries(t, tmp)
	up := upstreamfake.NewServer(t, upstreamfake.Options{Token: "tok-tray-lang"})
	apiAddr := testutil.FreeAddr(t)
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
	testutil.WaitFor(t, "the agent's local API", slow, func() bool {
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
		tp.waitLog(t, `msg="Tray state" icon=ok`, slow)
		icon := waitDocked(t, display)
		menuOpen := func() bool {
			_, ok := findWindowFunc(t, display, func(line string, r rect) bool {
				return strings.Contains(line, `("pwbi-tray" "Pwbi-tray")`) && r.h >= 150 &&
					viewable(t, display, strings.Fields(line)[0])
			})
			return ok
		}
		xdotool(t, display, "mousemove", strconv.Itoa(icon.x+icon.w/2), strconv.Itoa(icon.y+icon.h/2), "click", "1")
		testutil.WaitFor(t, "the menu window", slow, menuOpen)
		// Mapped is not yet drawn: wait for the menu's light background.
		menuArea := image.Rect(icon.x-150, icon.y+icon.h, icon.x+icon.w, icon.y+icon.h+200)
		shot := screenshotWhen(t, display, filepath.Join(artifacts, "menu-"+lc.lang+".png"), func(img image.Image) bool {
			return lightShare(img, menuArea) >= 0.5
		})
		if light := lightShare(shot, menuArea); light < 0.5 {
			t.Errorf("%s: the menu area below the icon is %.0f%% light; the menu did not open?", lc.lang, 100*light)
		}
		xdotool(t, display, "key", "Escape")

		menus[lc.lang] = lastMenu(t, tp.out.String(), lc.lang)
		tp.stop(t)
		testutil.WaitFor(t, "the icon to go", slow, func() bool {
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
