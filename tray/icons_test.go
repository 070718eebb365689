package tray

import (
	"bytes"
	"flag"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/pwbi/edge-agent/tray/icondraw"
)

var update = flag.Bool("update", false, "rewrite tray/icons from tray/icondraw")

// TestIconFiles checks that the embedded icon files are what icondraw
// draws, so that a change to the drawing cannot be forgotten.
func TestIconFiles(t *testing.T) {
	for _, icon := range Icons {
		for ext, want := range map[string][]byte{
			".png": icondraw.PNG(string(icon)),
			".ico": icondraw.ICO(string(icon)),
		} {
			path := filepath.Join("icons", string(icon)+ext)
			if *update {
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := iconFiles.ReadFile("icons/" + string(icon) + ext)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s is stale: run go generate ./tray", path)
			}
		}
	}
}

func TestIconData(t *testing.T) {
	for _, icon := range Icons {
		p := iconFile(icon, "linux")
		img, err := png.Decode(bytes.NewReader(p))
		if err != nil {
			t.Fatalf("%s png: %v", icon, err)
		}
		if img.Bounds().Dx() != icondraw.PNGSize {
			t.Errorf("%s png size %v", icon, img.Bounds())
		}
		// The centre-left of the disc has the state's colour.
		c := icondraw.Colors[string(icon)]
		r, g, b, _ := img.At(icondraw.PNGSize/5, icondraw.PNGSize/2).RGBA()
		if uint8(r>>8) != c.R || uint8(g>>8) != c.G || uint8(b>>8) != c.B {
			t.Errorf("%s png: pixel (%d,%d,%d), want %v", icon, r>>8, g>>8, b>>8, c)
		}

		ico := iconFile(icon, "windows")
		if len(ico) < 6 || ico[2] != 1 || int(ico[4]) != len(icondraw.ICOSizes) {
			t.Errorf("%s ico header % x", icon, ico[:6])
		}
	}
	if !bytes.Equal(iconFile("nonsense", "linux"), iconFile(IconError, "linux")) {
		t.Error("unknown icon does not fall back to the error icon")
	}
}
