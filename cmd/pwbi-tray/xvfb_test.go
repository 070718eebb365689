//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/deliver/httpsink/upstreamfake"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/tray/icondraw"
)

// TestTrayUnderXvfb runs the real pwbi-tray against a real pwbi-agent on a
// virtual X display, with trayer as the notification area. libayatana-
// appindicator finds no StatusNotifierWatcher (there is no session bus), so
// it falls back to an XEmbed GtkStatusIcon, which docks into trayer: the
// path of a desktop without AppIndicator support, and one a test can drive
// with xdotool. Screenshots go to the artifacts directory's tray/
// ($PWBI_TEST_ARTIFACTS, else testdata/artifacts/tray/).
//
// Needs Xvfb, trayer, xdotool, xwininfo (x11-utils) and ImageMagick's
// import; `make deps` installs them. Only a missing Xvfb skips the test.
func TestTrayUnderXvfb(t *testing.T) {
	tmp, artifacts := desktopTest(t)

	agentBin, trayBin := buildBinaries(t, tmp)

	// The agent: Moka off, a fake upstream, the local API on a free port.
	up := upstreamfake.NewServer(t, upstreamfake.Options{Token: "tok-tray-test"})
	apiAddr := testutil.FreeAddr(t)
	cfgPath := filepath.Join(tmp, "config.toml")
	writeFile(t, cfgPath, fmt.Sprintf(`version = 1
[agent]
id = "tray-test"
data_dir = "data"
log_level = "debug"
[moka]
enabled = false
[upstream]
url = %q
token = "tok-tray-test"
flush_interval = "200ms"
[local_api]
listen = %q
`, up.URL(), apiAddr))
	agent := startProc(t, "agent", tmp, nil, agentBin, "run", "--config", cfgPath)
	testutil.WaitFor(t, "the agent's local API", slow, func() bool {
		_, err := localapi.NewClient(apiAddr, nil).Status(context.Background())
		return err == nil
	})

	// The desktop: Xvfb picks a free display and tells us which.
	display := startXvfb(t, tmp)
	xenv := []string{"DISPLAY=" + display}
	startProc(t, "trayer", tmp, xenv, "trayer", "--edge", "top", "--align", "right",
		"--widthtype", "pixel", "--width", "200", "--heighttype", "pixel", "--height", "40",
		"--transparent", "false", "--expand", "false")

	// The tray, isolated from this machine's session: its own home and
	// cache (for the single-instance lock), no session bus (so the XEmbed
	// fallback is used even where a desktop is running), and an xdg-open
	// on PATH that records what the tray opens instead of opening it.
	home := filepath.Join(tmp, "home")
	fakeBin := filepath.Join(tmp, "fakebin")
	opened := filepath.Join(tmp, "opened.txt")
	writeFile(t, filepath.Join(fakeBin, "xdg-open"), "#!/bin/sh\necho \"$@\" >> "+opened+"\n")
	os.Chmod(filepath.Join(fakeBin, "xdg-open"), 0o755)
	trayEnv := append(xenv,
		"HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, ".cache"), "TMPDIR="+tmp,
		"DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(tmp, "no-bus"),
		"PATH="+fakeBin+string(os.PathListSeparator)+os.Getenv("PATH"),
		// The texts checked below are English, whatever this machine's
		// locale (TestTrayMenuLanguagesUnderXvfb covers Indonesian).
		"LC_ALL=C.UTF-8",
	)
	trayArgs := []string{"--config", cfgPath, "--log", "", "--poll", "1s"}
	trayProc := startProc(t, "tray", tmp, trayEnv, trayBin, trayArgs...)

	// 1. The icon docks and shows "ok".
	trayProc.waitLog(t, `msg="Tray state" icon=ok`, slow)
	icon := waitDocked(t, display)
	shot := screenshotWhen(t, display, filepath.Join(artifacts, "1-ok.png"), func(img image.Image) bool {
		return dominantIcon(img, icon) == "ok"
	})
	if got := dominantIcon(shot, icon); got != "ok" {
		t.Errorf("icon on screen looks like %q, want ok", got)
	}

	// 2. A click opens the menu.
	click := func() {
		t.Helper()
		xdotool(t, display, "mousemove", strconv.Itoa(icon.x+icon.w/2), strconv.Itoa(icon.y+icon.h/2), "click", "1")
	}
	// The menu is a tall pwbi-tray window that is mapped (a closed menu
	// stays in the tree, unmapped).
	menuOpen := func() bool {
		_, ok := findWindowFunc(t, display, func(line string, r rect) bool {
			return strings.Contains(line, `("pwbi-tray" "Pwbi-tray")`) && r.h >= 150 &&
				viewable(t, display, strings.Fields(line)[0])
		})
		return ok
	}
	click()
	testutil.WaitFor(t, "the menu window", slow, menuOpen)
	// Mapped is not yet drawn: wait for the menu's light background.
	menuArea := image.Rect(icon.x-150, icon.y+icon.h, icon.x+icon.w, icon.y+icon.h+200)
	shot = screenshotWhen(t, display, filepath.Join(artifacts, "2-menu.png"), func(img image.Image) bool {
		return lightShare(img, menuArea) >= 0.5
	})
	if light := lightShare(shot, menuArea); light < 0.5 {
		t.Errorf("the menu area below the icon is %.0f%% light; the menu did not open?", 100*light)
	}

	// 3. "Sync now" (the first enabled entry) reaches the agent.
	xdotool(t, display, "key", "Down")
	time.Sleep(300 * time.Millisecond)
	screenshot(t, display, filepath.Join(artifacts, "3-sync-now-selected.png"))
	xdotool(t, display, "key", "Return")
	agent.waitLog(t, `msg="Sync requested"`, slow)
	trayProc.waitLog(t, `msg="Action done" action="Sync now"`, slow)

	// 4. Pause, then Resume (second entry), through the agent's state.
	pick := func(downs int) {
		t.Helper()
		testutil.WaitFor(t, "the menu to close", slow, func() bool { return !menuOpen() })
		click()
		testutil.WaitFor(t, "the menu window", slow, menuOpen)
		for i := 0; i < downs; i++ {
			xdotool(t, display, "key", "Down")
		}
		time.Sleep(200 * time.Millisecond)
		xdotool(t, display, "key", "Return")
	}
	pick(2)
	agent.waitLog(t, `msg="Syncing paused"`, slow)
	trayProc.waitLog(t, `msg="Tray state" icon=paused`, slow)
	shot = screenshotWhen(t, display, filepath.Join(artifacts, "4-paused.png"), func(img image.Image) bool {
		return dominantIcon(img, icon) == "paused"
	})
	if got := dominantIcon(shot, icon); got != "paused" {
		t.Errorf("icon on screen looks like %q, want paused", got)
	}
	// While paused "Sync now" is greyed, so Resume is the first entry.
	pick(1)
	agent.waitLog(t, `msg="Syncing resumed"`, slow)
	trayProc.waitLogCount(t, `msg="Tray state" icon=ok`, 2, slow)

	// 5. "Open dashboard" (third entry) opens the local API's page.
	pick(3)
	testutil.WaitFor(t, "xdg-open to be called", slow, func() bool {
		b, _ := os.ReadFile(opened)
		return strings.Contains(string(b), "http://"+apiAddr+"/")
	})

	// 6. A second tray for the same user leaves at once.
	second := exec.Command(trayBin, trayArgs...)
	second.Env = append(os.Environ(), trayEnv...)
	out, err := second.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Another pwbi-tray is running") {
		t.Errorf("second tray: %v\n%s", err, out)
	}

	// 7. The agent stops: the icon turns to "agent down".
	agent.stop(t)
	trayProc.waitLog(t, `msg="Tray state" icon=down tooltip="PWBI Agent: not running"`, slow)
	shot = screenshotWhen(t, display, filepath.Join(artifacts, "5-agent-down.png"), func(img image.Image) bool {
		return dominantIcon(img, icon) == "down"
	})
	if got := dominantIcon(shot, icon); got != "down" {
		t.Errorf("icon on screen looks like %q, want down", got)
	}
	testutil.WaitFor(t, "the menu to close", slow, func() bool { return !menuOpen() })
	click()
	testutil.WaitFor(t, "the menu window", slow, menuOpen)
	screenshot(t, display, filepath.Join(artifacts, "6-agent-down-menu.png"))
	xdotool(t, display, "key", "Escape")

	// 8. The agent comes back: the tray recovers by itself.
	agent = startProc(t, "agent2", tmp, nil, agentBin, "run", "--config", cfgPath)
	trayProc.waitLogCount(t, `msg="Tray state" icon=ok`, 3, slow)
	// Logged just before that state (tray.App.Run): no wait needed.
	trayProc.waitLog(t, `msg="Agent reachable again"`, time.Second)
	screenshotWhen(t, display, filepath.Join(artifacts, "7-agent-back.png"), func(img image.Image) bool {
		return dominantIcon(img, icon) == "ok"
	})

	// 9. Quit (the last entry) ends the tray and removes the icon.
	testutil.WaitFor(t, "the menu to close", slow, func() bool { return !menuOpen() })
	click()
	testutil.WaitFor(t, "the menu window", slow, menuOpen)
	xdotool(t, display, "key", "Up")
	time.Sleep(200 * time.Millisecond)
	xdotool(t, display, "key", "Return")
	select {
	case err := <-trayProc.done:
		if err != nil {
			t.Errorf("tray exited with %v", err)
		}
	case <-time.After(slow):
		t.Fatal("the tray did not quit")
	}
	testutil.WaitFor(t, "the icon to go", slow, func() bool {
		_, ok := findWindow(t, display, `"systray" "systray"`)
		return !ok
	})
}

// buildBinaries builds pwbi-agent (CGO_ENABLED=0, as shipped) and pwbi-tray
// (this package, with the race detector when the test has it).
func buildBinaries(t *testing.T, dir string) (string, string) {
	t.Helper()
	agentPath := filepath.Join(dir, "pwbi-agent")
	trayPth := filepath.Join(dir, "pwbi-tray")
	cmd := exec.Command("go", "build", "-o", agentPath, "../pwbi-agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build pwbi-agent: %v\n%s", err, out)
	}
	args := []string{"build", "-o", trayPth}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd = exec.Command("go", append(args, ".")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build pwbi-tray (needs cgo and libayatana-appindicator3-dev, see make deps): %v\n%s", err, out)
	}
	return agentPath, trayPth
}

type proc struct {
	name string
	cmd  *exec.Cmd
	out  *testutil.SyncBuffer
	done chan error
}

// startProc starts a program with the given extra environment; it is
// killed at the end of the test, and its output logged if the test failed.
func startProc(t *testing.T, name, dir string, env []string, prog string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &testutil.SyncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(prog, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out.String())
		}
	})
	return p
}

// stop ends the process with SIGTERM, as systemd would.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(slow):
		t.Fatalf("%s did not stop", p.name)
	}
}

func (p *proc) waitLog(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	p.waitLogCount(t, s, 1, timeout)
}

func (p *proc) waitLogCount(t *testing.T, s string, n int, timeout time.Duration) {
	t.Helper()
	testutil.WaitFor(t, fmt.Sprintf("%d× %s in the %s log", n, s, p.name), timeout, func() bool {
		return strings.Count(p.out.String(), s) >= n
	})
}

// startXvfb starts an X server on a display it picks itself (-displayfd)
// and returns the display name.
func startXvfb(t *testing.T, dir string) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := &proc{name: "Xvfb", out: &testutil.SyncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "800x600x24", "-nolisten", "tcp")
	p.cmd.Dir = dir
	p.cmd.ExtraFiles = []*os.File{w}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start Xvfb: %v", err)
	}
	w.Close()
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		if _, err := strconv.Atoi(s); err != nil {
			t.Fatalf("Xvfb gave display %q; output:\n%s", s, p.out.String())
		}
		return ":" + s
	case <-time.After(slow):
		t.Fatalf("Xvfb did not start; output:\n%s", p.out.String())
	}
	return ""
}

// slow is the deadline of each step of the desktop tests. The agent, the
// tray (built with -race when the test is), Xvfb and the tools the tests
// drive share a loaded machine (CI runs every package's tests at once on
// 2 cores), where a step that takes milliseconds here can take seconds. A
// passing test never waits for it.
const slow = time.Minute

type rect struct{ x, y, w, h int }

// windowRE matches an xwininfo -tree line's size and absolute position:
// `... 32x38+0+0  +607+1`.
var windowRE = regexp.MustCompile(`(\d+)x(\d+)[+-]-?\d+[+-]-?\d+\s+\+(-?\d+)\+(-?\d+)\s*$`)

func findWindow(t *testing.T, display, marker string) (rect, bool) {
	return findWindowFunc(t, display, func(line string, _ rect) bool { return strings.Contains(line, marker) })
}

func findWindowFunc(t *testing.T, display string, match func(line string, r rect) bool) (rect, bool) {
	t.Helper()
	return findInTree(windowTree(t, display), match)
}

// windowTree is what `xwininfo -root -tree` lists. xwininfo fails
// (BadWindow: "Can't query window tree") when a window goes while it walks
// the tree, as windows do while the icon docks or a menu opens or closes:
// it is asked again until it lists the whole tree.
func windowTree(t *testing.T, display string) string {
	t.Helper()
	deadline := time.Now().Add(slow)
	for {
		var stderr strings.Builder
		cmd := exec.Command("xwininfo", "-root", "-tree")
		cmd.Env = append(os.Environ(), "DISPLAY="+display)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err == nil {
			return string(out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("xwininfo -root -tree: %v\n%s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// findInTree returns the place of the first window of an xwininfo -tree
// listing that match accepts.
func findInTree(tree string, match func(line string, r rect) bool) (rect, bool) {
	for _, line := range strings.Split(tree, "\n") {
		m := windowRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var r rect
		r.w, _ = strconv.Atoi(m[1])
		r.h, _ = strconv.Atoi(m[2])
		r.x, _ = strconv.Atoi(m[3])
		r.y, _ = strconv.Atoi(m[4])
		if r.x >= 0 && r.y >= 0 && match(line, r) {
			return r, true
		}
	}
	return rect{}, false
}

// waitDocked waits until the tray icon's window has its place in trayer's
// panel, and returns that place. Before trayer embeds it, the window is
// already there on its own (16x16 at 0,0), and its size may change once
// embedded: the place counts when it is inside the panel and the same in
// two listings in a row.
func waitDocked(t *testing.T, display string) rect {
	t.Helper()
	var icon, last rect
	testutil.WaitFor(t, "the systray window docked in trayer's panel (xwininfo -root -tree)", slow, func() bool {
		tree := windowTree(t, display)
		panel, okPanel := findInTree(tree, func(line string, _ rect) bool { return strings.Contains(line, `("panel" "trayer")`) })
		r, okIcon := findInTree(tree, func(line string, _ rect) bool { return strings.Contains(line, `"systray" "systray"`) })
		if !okPanel || !okIcon || r.w <= 1 || r.h <= 1 || !r.in(panel) {
			last = rect{}
			return false
		}
		settled := r == last
		icon, last = r, r
		return settled
	})
	t.Logf("tray icon window at %+v", icon)
	return icon
}

// in reports whether r lies within o.
func (r rect) in(o rect) bool {
	return r.x >= o.x && r.y >= o.y && r.x+r.w <= o.x+o.w && r.y+r.h <= o.y+o.h
}

// viewable reports whether the window id is mapped and visible.
func viewable(t *testing.T, display, id string) bool {
	t.Helper()
	cmd := exec.Command("xwininfo", "-id", id)
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	out, err := cmd.Output()
	return err == nil && strings.Contains(string(out), "Map State: IsViewable")
}

func xdotool(t *testing.T, display string, args ...string) {
	t.Helper()
	cmd := exec.Command("xdotool", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xdotool %v: %v\n%s", args, err, out)
	}
}

// screenshot saves the whole screen to path and returns it.
func screenshot(t *testing.T, display, path string) image.Image {
	t.Helper()
	cmd := exec.Command("import", "-window", "root", path)
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	t.Logf("screenshot %s", path)
	return img
}

// screenshotWhen takes screenshots until ok holds (the icon is redrawn a
// moment after the tray logs its new state; a menu is drawn a moment after
// it is mapped) or slow has passed, and returns the last one.
func screenshotWhen(t *testing.T, display, path string, ok func(image.Image) bool) image.Image {
	t.Helper()
	deadline := time.Now().Add(slow)
	for {
		img := screenshot(t, display, path)
		if ok(img) || time.Now().After(deadline) {
			return img
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// dominantIcon says which state's colour covers most of the icon window,
// or "" when none covers at least a fifth of it.
func dominantIcon(img image.Image, r rect) string {
	counts := map[string]int{}
	total := 0
	for y := r.y; y < r.y+r.h; y++ {
		for x := r.x; x < r.x+r.w; x++ {
			total++
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			for state, want := range icondraw.Colors {
				if near(c, want) {
					counts[state]++
				}
			}
		}
	}
	best, n := "", 0
	for s, c := range counts {
		if c > n {
			best, n = s, c
		}
	}
	if total == 0 || n*5 < total {
		return ""
	}
	return best
}

func near(a, b color.NRGBA) bool {
	d := func(x, y uint8) int {
		if x > y {
			return int(x - y)
		}
		return int(y - x)
	}
	return d(a.R, b.R) < 24 && d(a.G, b.G) < 24 && d(a.B, b.B) < 24
}

// lightShare is the share of pixels in r that are light grey or white.
func lightShare(img image.Image, r image.Rectangle) float64 {
	r = r.Intersect(img.Bounds())
	light, total := 0, 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			total++
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			if c.R > 200 && c.G > 200 && c.B > 200 {
				light++
			}
		}
	}
	if total == 0 {
		return 0
	}
	return float64(light) / float64(total)
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// desktopTest starts a desktop test: it skips under -short or without
// Xvfb, fails when another tool the test drives is missing, and returns a
// temporary directory and the directory for its screenshots (the
// artifacts directory's tray/, made).
func desktopTest(t *testing.T) (tmp, artifacts string) {
	t.Helper()
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
	tmp = t.TempDir()
	artifacts = filepath.Join(artifactsDir(t), "tray")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	return tmp, artifacts
}
