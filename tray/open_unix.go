//go:build !windows

package tray

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
)

// DesktopOpener opens URLs, files and folders with the desktop's default
// application through xdg-open (freedesktop xdg-utils, present on every
// desktop Linux; the .deb recommends it).
type DesktopOpener struct {
	// Command is the opener program; empty means "xdg-open".
	Command string
}

var _ Opener = DesktopOpener{}

// OpenURL opens url in the default browser.
func (o DesktopOpener) OpenURL(url string) error { return o.run(url) }

// OpenFile opens path in the default editor. The .deb's config file is
// readable by root and the service only (it holds secrets): rather than an
// editor's error, the person gets the command that works.
func (o DesktopOpener) OpenFile(path string) error {
	if err := readable(path, false); err != nil {
		return fmt.Errorf("%w: use sudoedit %s", err, path)
	}
	return o.run(path)
}

// OpenFolder opens path in the file manager. The .deb's data directory
// belongs to the service account; its log also goes to the journal.
func (o DesktopOpener) OpenFolder(path string) error {
	if err := readable(path, true); err != nil {
		return fmt.Errorf("%w: try journalctl -u pwbi-agent", err)
	}
	return o.run(path)
}

// readable reports why the current user cannot read path, or nil.
func readable(path string, dir bool) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return errors.New("not readable by you")
		}
		if errors.Is(err, fs.ErrNotExist) {
			return errors.New("not found")
		}
		return err
	}
	defer f.Close()
	if dir {
		if _, err := f.Readdirnames(1); err != nil && !errors.Is(err, io.EOF) {
			return errors.New("not readable by you")
		}
	}
	return nil
}

func (o DesktopOpener) run(target string) error {
	name := o.Command
	if name == "" {
		name = "xdg-open"
	}
	cmd := exec.Command(name, target)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	// xdg-open returns once the application is launched; reap it.
	go cmd.Wait()
	return nil
}
