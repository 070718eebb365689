package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"
)

// ErrNoTablet is returned by RemoveTablet for a name no tablet has.
var ErrNoTablet = errors.New("no tablet has that name")

// SameTabletName reports whether two tablet names are the same for the
// configuration (which refuses duplicates): trimmed, case-insensitive.
func SameTabletName(a, b string) bool {
	return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
}

// tabletsOf reads only the tablets of a config file.
func tabletsOf(data []byte) ([]Tablet, error) {
	var doc struct {
		Checkout struct {
			Tablets []Tablet `toml:"tablets"`
		} `toml:"checkout"`
	}
	if _, err := toml.Decode(string(data), &doc); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return doc.Checkout.Tablets, nil
}

// RemoveTablet returns the config file content data without the
// [[checkout.tablets]] block of the tablet named name (see SameTabletName),
// for `pwbi-agent tablet remove`; everything else, comments included, is
// kept byte for byte. It refuses, rather than guess, when the tablets are
// not written as [[checkout.tablets]] blocks, and checks that the result
// holds exactly the other tablets. The caller validates the result with
// Parse before writing it.
func RemoveTablet(data []byte, name string) ([]byte, error) {
	tablets, err := tabletsOf(data)
	if err != nil {
		return nil, err
	}
	idx := -1
	for i, t := range tablets {
		if SameTabletName(t.Name, name) {
			idx = i
			break
		}
	}
	if idx < 0 {
		return nil, ErrNoTablet
	}
	src := string(data)
	lines := strings.SplitAfter(src, "\n") // keeps "\r\n" and "\n"
	loc := locate(src)
	block := kp("checkout", "tablets").index(idx).String()
	start := loc.lines[block] // 1-based line of the block's header
	if start == 0 || !strings.HasPrefix(strings.TrimSpace(lines[start-1]), "[[") {
		return nil, errors.New("config: checkout.tablets is not written as [[checkout.tablets]] blocks; remove the tablet by editing the file")
	}
	// The block ends where the next key outside it is defined (the next
	// table header), or at the end of the file.
	end := len(lines) + 1
	for k, ln := range loc.lines {
		if ln > start && ln < end && k != block && !strings.HasPrefix(k, block+".") {
			end = ln
		}
	}
	for ln := start + 1; ln < end; ln++ {
		if strings.HasPrefix(strings.TrimSpace(lines[ln-1]), "[") {
			end = ln // a header that defines no new key, e.g. [checkout]
			break
		}
	}
	// Comments and blank lines at its end belong to what follows.
	for end-1 > start && isBlankOrComment(lines[end-2]) {
		end--
	}
	// The blank line `tablet add` writes before a block goes with it.
	from := start
	if from > 1 && strings.TrimSpace(lines[from-2]) == "" {
		from--
	}
	out := []byte(strings.Join(lines[:from-1], "") + strings.Join(lines[end-1:], ""))

	// The result must mean exactly the old file minus that tablet.
	var before, after map[string]any
	if _, err := toml.Decode(src, &before); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	_, err = toml.Decode(string(out), &after)
	if err == nil {
		co, _ := before["checkout"].(map[string]any)
		list, _ := co["tablets"].([]map[string]any)
		if len(list) == len(tablets) {
			list = append(list[:idx:idx], list[idx+1:]...)
			if len(list) == 0 {
				delete(co, "tablets")
			} else {
				co["tablets"] = list
			}
		}
	}
	if err != nil || !reflect.DeepEqual(normalize(before), normalize(after)) {
		return nil, errors.New("config: cannot remove the tablet's block safely; remove it by editing the file")
	}
	return out, nil
}

// normalize makes decoded TOML comparable: an empty [checkout] left after
// its last tablet went is the same as none.
func normalize(m map[string]any) map[string]any {
	if co, ok := m["checkout"].(map[string]any); ok && len(co) == 0 {
		delete(m, "checkout")
	}
	return m
}

func isBlankOrComment(line string) bool {
	t := strings.TrimSpace(line)
	return t == "" || strings.HasPrefix(t, "#")
}
