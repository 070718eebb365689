package config

import (
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// keyPath is the path of a TOML key, one canonical segment per element: a
// key name (quoted like TOML when it is not a bare key) or an array index
// written "[n]" (0-based). The decoder and the locator build the same
// segments, so their String forms can be compared.
type keyPath []string

// String renders the path as a dotted key, e.g. `checkout.tablets[1].name`.
func (p keyPath) String() string {
	var b strings.Builder
	for i, seg := range p {
		if i > 0 && !strings.HasPrefix(seg, "[") {
			b.WriteByte('.')
		}
		b.WriteString(seg)
	}
	return b.String()
}

// key returns a new path with the named key appended.
func (p keyPath) key(name string) keyPath {
	return append(p[:len(p):len(p)], quoteKey(name))
}

// index returns a new path with the array index appended.
func (p keyPath) index(i int) keyPath {
	return append(p[:len(p):len(p)], "["+strconv.Itoa(i)+"]")
}

// quoteKey writes a key name the way TOML needs it: bare when it only holds
// A-Za-z0-9_-, otherwise as a basic string.
func quoteKey(name string) string {
	if name == "" {
		return `""`
	}
	for i := 0; i < len(name); i++ {
		if !isBare(name[i]) {
			return strconv.Quote(name)
		}
	}
	return name
}

func isBare(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// locator knows the line on which each key of a TOML document is defined.
// BurntSushi/toml's MetaData has no positions, so the locator scans the text
// itself. It understands table headers, arrays of tables (the n-th
// [[x]] block is x[n-1]), dotted and quoted keys, comments, all four string
// forms (including multi-line ones), multi-line arrays and inline tables.
// It is tolerant: on text it does not understand it skips to the next line,
// and it never fails. It is meant for documents BurntSushi/toml accepted.
type locator struct {
	lines    map[string]int // canonical key -> first line (1-based) defining it
	newlines []int          // byte offsets of every '\n'
}

// locate scans src and returns its locator.
func locate(src string) *locator {
	l := &locator{lines: make(map[string]int)}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			l.newlines = append(l.newlines, i)
		}
	}
	s := &scanner{src: src, loc: l, arrays: make(map[string]int)}
	s.document()
	return l
}

// line returns the line of key, or of its nearest ancestor that appears in
// the document (a key that is absent, or defined in a way the locator cannot
// see, is reported at its table); 0 when nothing is found.
func (l *locator) line(key keyPath) int {
	for n := len(key); n > 0; n-- {
		if ln, ok := l.lines[key[:n].String()]; ok {
			return ln
		}
	}
	return 0
}

func (l *locator) record(key keyPath, offset int) {
	k := key.String()
	if _, ok := l.lines[k]; ok {
		return
	}
	// Line = 1 + number of newlines before offset.
	l.lines[k] = 1 + sort.SearchInts(l.newlines, offset)
}

type scanner struct {
	src    string
	i      int
	loc    *locator
	table  keyPath        // current table, set by the last header
	arrays map[string]int // array-of-tables path -> index of its last element
}

func (s *scanner) eof() bool { return s.i >= len(s.src) }

func (s *scanner) peek(n int) byte {
	if s.i+n < len(s.src) {
		return s.src[s.i+n]
	}
	return 0
}

func (s *scanner) document() {
	for !s.eof() {
		s.skipSpace()
		if s.eof() {
			return
		}
		switch s.src[s.i] {
		case '\n', '\r':
			s.i++
		case '#':
			s.skipLine()
		case '[':
			if !s.header() {
				s.skipLine()
			}
		default:
			if !s.keyValue(s.table) {
				s.skipLine()
			}
		}
	}
}

// skipSpace skips blanks (not newlines).
func (s *scanner) skipSpace() {
	for !s.eof() && (s.src[s.i] == ' ' || s.src[s.i] == '\t') {
		s.i++
	}
}

// skipBlank skips blanks, newlines and comments (inside arrays and inline
// tables).
func (s *scanner) skipBlank() {
	for !s.eof() {
		switch s.src[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		case '#':
			s.skipLine()
		default:
			return
		}
	}
}

// skipLine moves to the next '\n' (not past it).
func (s *scanner) skipLine() {
	if j := strings.IndexByte(s.src[s.i:], '\n'); j >= 0 {
		s.i += j
	} else {
		s.i = len(s.src)
	}
}

// header reads "[a.b]" or "[[a.b]]" and makes it the current table.
func (s *scanner) header() bool {
	start := s.i
	array := s.peek(1) == '['
	if array {
		s.i += 2
	} else {
		s.i++
	}
	parts, ok := s.key()
	if !ok {
		return false
	}
	s.skipSpace()
	if s.eof() || s.src[s.i] != ']' {
		return false
	}
	s.i++
	if array {
		if s.eof() || s.src[s.i] != ']' {
			return false
		}
		s.i++
	}
	var p keyPath
	for j, name := range parts {
		p = p.key(name)
		s.loc.record(p, start)
		last := j == len(parts)-1
		if !last || array {
			if idx, ok := s.arrays[p.String()]; ok || (last && array) {
				if last {
					if ok {
						idx++
					} else {
						idx = 0
					}
					s.arrays[p.String()] = idx
				}
				p = p.index(idx)
				s.loc.record(p, start)
			}
		}
	}
	s.table = p
	s.skipSpace()
	return true
}

// keyValue reads "key = value" and records the key (and any dotted parent)
// under prefix.
func (s *scanner) keyValue(prefix keyPath) bool {
	start := s.i
	parts, ok := s.key()
	if !ok {
		return false
	}
	s.skipSpace()
	if s.eof() || s.src[s.i] != '=' {
		return false
	}
	s.i++
	p := prefix
	for _, name := range parts {
		p = p.key(name)
		s.loc.record(p, start)
	}
	s.value(p)
	return true
}

// key reads a possibly dotted key; each part unquoted.
func (s *scanner) key() ([]string, bool) {
	var parts []string
	for {
		s.skipSpace()
		if s.eof() {
			return nil, false
		}
		var part string
		switch s.src[s.i] {
		case '"':
			raw, ok := s.basicString()
			if !ok {
				return nil, false
			}
			part = unescape(raw)
		case '\'':
			raw, ok := s.literalString()
			if !ok {
				return nil, false
			}
			part = raw
		default:
			j := s.i
			for j < len(s.src) && isKeyChar(s.src[j]) {
				j++
			}
			if j == s.i {
				return nil, false
			}
			part = s.src[s.i:j]
			s.i = j
		}
		parts = append(parts, part)
		s.skipSpace()
		if s.eof() || s.src[s.i] != '.' {
			return parts, true
		}
		s.i++
	}
}

// isKeyChar accepts bare-key characters plus any non-ASCII byte (TOML 1.1
// allows Unicode bare keys).
func isKeyChar(c byte) bool {
	return isBare(c) || c >= utf8.RuneSelf
}

// basicString reads a single-line "..." string and returns its raw body.
func (s *scanner) basicString() (string, bool) {
	s.i++ // opening quote
	start := s.i
	for !s.eof() {
		switch s.src[s.i] {
		case '\\':
			if s.peek(1) == '\n' || s.peek(1) == 0 {
				return "", false
			}
			s.i += 2
		case '"':
			raw := s.src[start:s.i]
			s.i++
			return raw, true
		case '\n':
			return "", false
		default:
			s.i++
		}
	}
	return "", false
}

// literalString reads a single-line '...' string.
func (s *scanner) literalString() (string, bool) {
	s.i++
	j := strings.IndexAny(s.src[s.i:], "'\n")
	if j < 0 || s.src[s.i+j] == '\n' {
		return "", false
	}
	raw := s.src[s.i : s.i+j]
	s.i += j + 1
	return raw, true
}

// multiline skips a multi-line string (three double or three single
// quotes); s.i is at the first quote.
func (s *scanner) multiline(q byte) {
	s.i += 3
	for !s.eof() {
		c := s.src[s.i]
		if c == '\\' && q == '"' {
			s.i += 2
			continue
		}
		if c == q && s.peek(1) == q && s.peek(2) == q {
			s.i += 3
			// Up to two more quotes belong to the content: """a"""""
			for k := 0; k < 2 && !s.eof() && s.src[s.i] == q; k++ {
				s.i++
			}
			return
		}
		s.i++
	}
	if s.i > len(s.src) {
		s.i = len(s.src)
	}
}

// value skips one value, recording keys of inline tables and the elements of
// arrays under p.
func (s *scanner) value(p keyPath) {
	s.skipSpace()
	if s.eof() {
		return
	}
	switch c := s.src[s.i]; c {
	case '"', '\'':
		if s.peek(1) == c && s.peek(2) == c {
			s.multiline(c)
			return
		}
		if c == '"' {
			s.basicString()
		} else {
			s.literalString()
		}
	case '[':
		s.i++
		for n := 0; ; {
			s.skipBlank()
			if s.eof() {
				return
			}
			switch s.src[s.i] {
			case ']':
				s.i++
				return
			case ',':
				s.i++
				continue
			}
			start := s.i
			elem := p.index(n)
			s.loc.record(elem, start)
			s.value(elem)
			n++
			if s.i == start { // not understood: make progress
				s.i++
			}
		}
	case '{':
		s.i++
		for {
			s.skipBlank()
			if s.eof() {
				return
			}
			switch s.src[s.i] {
			case '}':
				s.i++
				return
			case ',':
				s.i++
				continue
			}
			start := s.i
			if !s.keyValue(p) && s.i == start {
				s.i++
			}
		}
	default:
		// Scalar: number, boolean, date-time (may hold a space).
		for !s.eof() {
			switch s.src[s.i] {
			case ',', ']', '}', '\n', '\r', '#':
				return
			}
			s.i++
		}
	}
}

// unescape decodes the escapes of a basic-string key; on a bad escape it
// returns the raw text.
func unescape(raw string) string {
	if !strings.Contains(raw, `\`) {
		return raw
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' || i+1 >= len(raw) {
			b.WriteByte(c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			b.WriteByte('\b')
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'f':
			b.WriteByte('\f')
		case 'r':
			b.WriteByte('\r')
		case 'e':
			b.WriteByte(0x1b)
		case '"':
			b.WriteByte('"')
		case '\\':
			b.WriteByte('\\')
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[raw[i]]
			if i+1+n > len(raw) {
				return raw
			}
			r, err := strconv.ParseUint(raw[i+1:i+1+n], 16, 32)
			if err != nil {
				return raw
			}
			b.WriteRune(rune(r))
			i += n
		default:
			return raw
		}
	}
	return b.String()
}
