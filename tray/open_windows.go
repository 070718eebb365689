//go:build windows

package tray

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

// DesktopOpener opens URLs, files and folders through the shell
// (ShellExecute), as Explorer would.
type DesktopOpener struct{}

var _ Opener = DesktopOpener{}

// OpenURL opens url in the default browser.
func (DesktopOpener) OpenURL(url string) error { return shellExecute("open", url, "") }

// OpenFolder opens path in Explorer.
func (DesktopOpener) OpenFolder(path string) error { return shellExecute("open", path, "") }

// OpenFile opens the config file in Notepad: .toml has no default
// application on most PCs. The file under %ProgramData% is writable by
// administrators only, so when the user cannot write it Notepad is started
// elevated (a UAC prompt); if that is refused it opens read-only.
func (DesktopOpener) OpenFile(path string) error {
	args := `"` + path + `"`
	if !writable(path) {
		if err := shellExecute("runas", "notepad.exe", args); err == nil {
			return nil
		}
	}
	return shellExecute("open", "notepad.exe", args)
}

func writable(path string) bool {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return !errors.Is(err, os.ErrPermission)
	}
	f.Close()
	return true
}

func shellExecute(verb, file, args string) error {
	v, err := windows.UTF16PtrFromString(verb)
	if err != nil {
		return err
	}
	f, err := windows.UTF16PtrFromString(file)
	if err != nil {
		return err
	}
	var a *uint16
	if args != "" {
		if a, err = windows.UTF16PtrFromString(args); err != nil {
			return err
		}
	}
	if err := windows.ShellExecute(0, v, f, a, nil, windows.SW_SHOWNORMAL); err != nil {
		return fmt.Errorf("open %s: %w", file, err)
	}
	return nil
}
