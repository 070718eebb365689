// Package icondraw draws the tray icons: a coloured disc per state with a
// white glyph, anti-aliased by supersampling, and encodes them as PNG
// (Linux) and ICO (Windows). It is used by the tray package's icon test,
// which regenerates tray/icons/ with -update; the tray embeds the files, so
// nothing is drawn at run time.
package icondraw

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"math"
)

// States are the icon names, in the order of tray.Icon.
var States = []string{"ok", "syncing", "offline", "error", "paused", "down"}

// Colors are the disc colours per state. They are far apart so that a test
// can tell the icons apart on a screenshot.
var Colors = map[string]color.NRGBA{
	"ok":      {0x2e, 0x7d, 0x32, 0xff}, // green
	"syncing": {0x15, 0x65, 0xc0, 0xff}, // blue
	"offline": {0xef, 0x8c, 0x00, 0xff}, // amber
	"error":   {0xc6, 0x28, 0x28, 0xff}, // red
	"paused":  {0x6a, 0x1b, 0x9a, 0xff}, // purple
	"down":    {0x61, 0x61, 0x61, 0xff}, // grey
}

// PNGSize is the size of the Linux icon; panels scale it down.
const PNGSize = 64

// ICOSizes are the images in the Windows icon: the notification area
// uses 16 px at 100 % scaling up to 32 px at 200 %, and LoadImage with
// LR_DEFAULTSIZE (what systray uses) picks the 32 px one.
var ICOSizes = []int{16, 20, 24, 32, 48}

// shape is a signed distance function in unit coordinates (0..1, y down):
// negative inside.
type shape func(x, y float64) float64

func disc(cx, cy, r float64) shape {
	return func(x, y float64) float64 { return math.Hypot(x-cx, y-cy) - r }
}

// segment is a line from (ax,ay) to (bx,by) with round caps, half-width w.
func segment(ax, ay, bx, by, w float64) shape {
	return func(x, y float64) float64 {
		px, py := x-ax, y-ay
		dx, dy := bx-ax, by-ay
		t := (px*dx + py*dy) / (dx*dx + dy*dy)
		t = math.Max(0, math.Min(1, t))
		return math.Hypot(px-t*dx, py-t*dy) - w
	}
}

// box is an axis-aligned rectangle.
func box(x0, y0, x1, y1 float64) shape {
	return func(x, y float64) float64 {
		dx := math.Max(x0-x, x-x1)
		dy := math.Max(y0-y, y-y1)
		return math.Max(dx, dy)
	}
}

// arc is a ring of radius r and half-width w around (cx,cy) from angle a0
// to a1 (radians, clockwise on screen since y points down).
func arc(cx, cy, r, w, a0, a1 float64) shape {
	return func(x, y float64) float64 {
		a := math.Atan2(y-cy, x-cx)
		for a < a0 {
			a += 2 * math.Pi
		}
		if a <= a1 {
			return math.Abs(math.Hypot(x-cx, y-cy)-r) - w
		}
		// Outside the angular range: distance to the nearer end point.
		e0 := math.Hypot(x-(cx+r*math.Cos(a0)), y-(cy+r*math.Sin(a0))) - w
		e1 := math.Hypot(x-(cx+r*math.Cos(a1)), y-(cy+r*math.Sin(a1))) - w
		return math.Min(e0, e1)
	}
}

// triangle is the filled triangle a, b, c.
func triangle(ax, ay, bx, by, cx, cy float64) shape {
	edge := func(x0, y0, x1, y1 float64) shape {
		// Signed distance to the line, positive on the outside for a
		// counter-clockwise triangle (in screen coordinates).
		nx, ny := y1-y0, -(x1 - x0)
		l := math.Hypot(nx, ny)
		return func(x, y float64) float64 { return ((x-x0)*nx + (y-y0)*ny) / l }
	}
	// Make the winding consistent.
	if (bx-ax)*(cy-ay)-(by-ay)*(cx-ax) > 0 {
		bx, by, cx, cy = cx, cy, bx, by
	}
	e := []shape{edge(ax, ay, bx, by), edge(bx, by, cx, cy), edge(cx, cy, ax, ay)}
	return func(x, y float64) float64 {
		d := -math.MaxFloat64
		for _, f := range e {
			d = math.Max(d, -f(x, y))
		}
		return d
	}
}

func union(s ...shape) shape {
	return func(x, y float64) float64 {
		d := math.MaxFloat64
		for _, f := range s {
			d = math.Min(d, f(x, y))
		}
		return d
	}
}

func subtract(a, b shape) shape {
	return func(x, y float64) float64 { return math.Max(a(x, y), -b(x, y)) }
}

// glyph is the white symbol on the disc of each state.
func glyph(state string) shape {
	const w = 0.055 // stroke half-width
	switch state {
	case "ok": // check mark
		return union(segment(0.28, 0.52, 0.44, 0.68, w), segment(0.44, 0.68, 0.73, 0.35, w))
	case "syncing": // circular arrow
		return union(
			arc(0.5, 0.5, 0.22, w, -math.Pi/2+0.95, 1.5*math.Pi-0.05),
			triangle(0.47, 0.12, 0.47, 0.44, 0.69, 0.28),
		)
	case "offline": // cloud with a slash through it
		cloud := union(disc(0.38, 0.55, 0.13), disc(0.55, 0.47, 0.17), disc(0.68, 0.58, 0.11), box(0.27, 0.55, 0.72, 0.69))
		slash := segment(0.26, 0.26, 0.76, 0.78, 0.07)
		return union(subtract(cloud, slash), segment(0.26, 0.26, 0.76, 0.78, 0.035))
	case "error": // exclamation mark
		return union(segment(0.5, 0.25, 0.5, 0.56, w+0.01), disc(0.5, 0.73, 0.07))
	case "paused": // two bars
		return union(box(0.34, 0.3, 0.44, 0.7), box(0.56, 0.3, 0.66, 0.7))
	default: // down: a cross
		return union(segment(0.33, 0.33, 0.67, 0.67, w), segment(0.67, 0.33, 0.33, 0.67, w))
	}
}

// Render draws the icon of state at size×size pixels.
func Render(state string, size int) *image.NRGBA {
	const ss = 4 // supersampling per axis
	bg := Colors[state]
	body := disc(0.5, 0.5, 0.47)
	rim := disc(0.5, 0.5, 0.47)
	sym := glyph(state)
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	for py := 0; py < size; py++ {
		for px := 0; px < size; px++ {
			var r, g, b, a float64
			for sy := 0; sy < ss; sy++ {
				for sx := 0; sx < ss; sx++ {
					x := (float64(px) + (float64(sx)+0.5)/ss) / float64(size)
					y := (float64(py) + (float64(sy)+0.5)/ss) / float64(size)
					if body(x, y) > 0 {
						continue
					}
					c := bg
					switch {
					case sym(x, y) <= 0:
						c = color.NRGBA{0xff, 0xff, 0xff, 0xff}
					case rim(x, y) > -0.035:
						// A darker rim keeps the disc visible on a panel of
						// the same colour.
						c = color.NRGBA{bg.R / 2, bg.G / 2, bg.B / 2, 0xff}
					}
					r += float64(c.R)
					g += float64(c.G)
					b += float64(c.B)
					a++
				}
			}
			if a == 0 {
				continue
			}
			img.SetNRGBA(px, py, color.NRGBA{
				R: uint8(r/a + 0.5), G: uint8(g/a + 0.5), B: uint8(b/a + 0.5),
				A: uint8(255*a/(ss*ss) + 0.5),
			})
		}
	}
	return img
}

// PNG renders state as a PNG file.
func PNG(state string) []byte {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, Render(state, PNGSize)); err != nil {
		panic(err) // writing to a bytes.Buffer does not fail
	}
	return buf.Bytes()
}

// ICO renders state as a Windows icon file holding one 32-bit BMP image
// per ICOSizes entry (BMP rather than PNG entries: every Windows version
// and Wine load them).
func ICO(state string) []byte {
	var imgs [][]byte
	for _, s := range ICOSizes {
		imgs = append(imgs, dib(Render(state, s)))
	}
	var buf bytes.Buffer
	le := binary.LittleEndian
	w := func(v any) { _ = binary.Write(&buf, le, v) }
	w(uint16(0))         // reserved
	w(uint16(1))         // type: icon
	w(uint16(len(imgs))) // count
	offset := 6 + 16*len(imgs)
	for i, s := range ICOSizes {
		dim := uint8(s)
		if s >= 256 {
			dim = 0
		}
		w(dim)                  // width
		w(dim)                  // height
		w(uint8(0))             // palette colours
		w(uint8(0))             // reserved
		w(uint16(1))            // planes
		w(uint16(32))           // bits per pixel
		w(uint32(len(imgs[i]))) // size
		w(uint32(offset))       // offset
		offset += len(imgs[i])
	}
	for _, b := range imgs {
		buf.Write(b)
	}
	return buf.Bytes()
}

// dib is an icon image: a BITMAPINFOHEADER with double height, the BGRA
// pixels bottom-up, then the 1-bit AND mask (rows padded to 32 bits).
func dib(img *image.NRGBA) []byte {
	size := img.Bounds().Dx()
	var buf bytes.Buffer
	le := binary.LittleEndian
	w := func(v any) { _ = binary.Write(&buf, le, v) }
	maskRow := ((size + 31) / 32) * 4
	w(uint32(40))                         // header size
	w(int32(size))                        // width
	w(int32(2 * size))                    // height: image + mask
	w(uint16(1))                          // planes
	w(uint16(32))                         // bit count
	w(uint32(0))                          // BI_RGB
	w(uint32(size*size*4 + maskRow*size)) // image size
	w(int32(0))                           // x pixels per metre
	w(int32(0))                           // y pixels per metre
	w(uint32(0))                          // colours used
	w(uint32(0))                          // important colours
	for y := size - 1; y >= 0; y-- {
		for x := 0; x < size; x++ {
			c := img.NRGBAAt(x, y)
			buf.Write([]byte{c.B, c.G, c.R, c.A})
		}
	}
	for y := size - 1; y >= 0; y-- {
		row := make([]byte, maskRow)
		for x := 0; x < size; x++ {
			if img.NRGBAAt(x, y).A == 0 {
				row[x/8] |= 0x80 >> (x % 8)
			}
		}
		buf.Write(row)
	}
	return buf.Bytes()
}
