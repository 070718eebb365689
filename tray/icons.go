package tray

import (
	"embed"
	"runtime"
	"sync"
)

// The icon files are drawn by icondraw; regenerate them with
// `go test ./tray -run TestIconFiles -update` after changing the drawing.
//
//go:generate go test -run TestIconFiles -update .

//go:embed icons/*.png icons/*.ico
var iconFiles embed.FS

// Icons lists every icon, in a stable order.
var Icons = []Icon{IconOK, IconSyncing, IconOffline, IconError, IconPaused, IconDown}

// iconCache keeps every icon's bytes alive for the life of the program:
// systray's Linux backend hands the pointer to GTK, which reads it later
// on its own thread (g_bytes_new_static + g_idle_add), so the slice must
// never be garbage collected. embed.FS.ReadFile returns a fresh copy each
// time, hence the cache.
var (
	iconMu    sync.Mutex
	iconCache = map[string][]byte{}
)

// IconData returns the file systray wants for icon on this OS: ICO on
// Windows, PNG elsewhere. The same slice is returned on every call and
// stays valid forever; callers must not modify it.
func IconData(icon Icon) []byte {
	return iconFile(icon, runtime.GOOS)
}

func iconFile(icon Icon, goos string) []byte {
	ext := ".png"
	if goos == "windows" {
		ext = ".ico"
	}
	iconMu.Lock()
	defer iconMu.Unlock()
	name := "icons/" + string(icon) + ext
	if b, ok := iconCache[name]; ok {
		return b
	}
	b, err := iconFiles.ReadFile(name)
	if err != nil {
		if icon == IconError {
			panic("tray: icon files missing: " + err.Error())
		}
		b = nil
	}
	if b == nil {
		iconMu.Unlock()
		b = iconFile(IconError, goos)
		iconMu.Lock()
	}
	iconCache[name] = b
	return b
}
