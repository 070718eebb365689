//go:build !windows && !cgo

package systrayui

import (
	"context"
	"errors"

	"github.com/pwbi/edge-agent/tray"
)

// ErrNoCgo is returned by Run in a build without cgo: systray's Linux
// backend is C (GTK and libayatana-appindicator3).
var ErrNoCgo = errors.New("pwbi-tray was built without cgo; the Linux tray needs cgo and libayatana-appindicator3 (build with CGO_ENABLED=1)")

// Run reports ErrNoCgo.
func Run(ctx context.Context, app *tray.App) error { return ErrNoCgo }

// Quit does nothing.
func Quit() {}
