//go:build windows || cgo

// Package systrayui shows a tray.App in the system tray with
// github.com/getlantern/systray. It is the only package that imports
// systray, and it is deliberately thin: it maps tray.UI calls to systray
// calls and menu clicks back to App.Click. Everything it shows is decided
// by the tray package, which is tested without a display.
//
// On Linux systray needs cgo and libayatana-appindicator3 (see
// docs/installers.md); without cgo this package only reports that.
package systrayui

import (
	"context"
	"sync"

	"github.com/getlantern/systray"

	"github.com/pwbi/edge-agent/tray"
)

// Run shows app in the system tray until app's Quit is clicked or ctx is
// canceled. It must be called from the main goroutine (systray locks the
// OS thread in its init and runs the GUI loop on it) and blocks until the
// tray has gone.
func Run(ctx context.Context, app *tray.App) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	onReady := func() {
		go func() {
			done <- app.Run(ctx, &ui{app: app})
			systray.Quit()
		}()
		go func() {
			<-ctx.Done()
			systray.Quit()
		}()
	}
	systray.Run(onReady, cancel)
	cancel()
	select {
	case err := <-done:
		return err
	default:
		return nil
	}
}

// Quit ends Run; it is what tray.Options.Quit should call.
func Quit() { systray.Quit() }

// ui implements tray.UI with systray.
type ui struct {
	app *tray.App

	mu    sync.Mutex
	items map[tray.ItemID]*item
}

type item struct {
	mi   *systray.MenuItem
	last tray.MenuItem
}

func (u *ui) SetIcon(icon tray.Icon) { systray.SetIcon(tray.IconData(icon)) }

// SetTooltip shows s on hover. On Linux, systray v1.2.2 ignores it
// (AppIndicator has no tooltip); the menu's first line says the same.
func (u *ui) SetTooltip(s string) { systray.SetTooltip(s) }

func (u *ui) SetMenu(menu []tray.MenuItem) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.items == nil {
		u.build(menu)
		return
	}
	for _, m := range menu {
		if m.Separator {
			continue
		}
		it := u.items[m.ID]
		if it == nil {
			continue // the menu's shape is fixed; see tray.View.Menu
		}
		apply(it, m)
	}
}

// build creates the menu in order on the first call.
func (u *ui) build(menu []tray.MenuItem) {
	u.items = make(map[tray.ItemID]*item)
	for _, m := range menu {
		if m.Separator {
			systray.AddSeparator()
			continue
		}
		it := &item{mi: systray.AddMenuItem(m.Label, "")}
		// Force every property to be applied once.
		it.last = tray.MenuItem{ID: m.ID, Label: m.Label, Enabled: !m.Enabled, Visible: !m.Visible}
		apply(it, m)
		u.items[m.ID] = it
		go func(id tray.ItemID, ch <-chan struct{}) {
			for range ch {
				u.app.Click(id)
			}
		}(m.ID, it.mi.ClickedCh)
	}
}

func apply(it *item, m tray.MenuItem) {
	if m.Label != it.last.Label {
		it.mi.SetTitle(m.Label)
	}
	if m.Enabled != it.last.Enabled {
		if m.Enabled {
			it.mi.Enable()
		} else {
			it.mi.Disable()
		}
	}
	if m.Visible != it.last.Visible {
		if m.Visible {
			it.mi.Show()
		} else {
			it.mi.Hide()
		}
	}
	it.last = m
}
