package wire

import "strconv"

// This file is a small, strict, single-pass JSON scanner for the hot path
// (page envelopes, transactions and payments). encoding/json validates a document in
// one pass and decodes it in another, and the RawMessage fields the mapper
// needs each cost a copy; this scanner validates while it walks and hands
// out sub-slices of the input. It accepts exactly RFC 8259 JSON (like
// encoding/json, it does not reject invalid UTF-8 inside strings, which the
// canonical encoder later renders as U+FFFD, as encoding/json would).
// FuzzScanner holds it to json.Valid.

// maxDepth bounds nesting, so hostile input cannot recurse deeply.
const maxDepth = 256

// syntaxError is a JSON syntax error at a byte offset.
type syntaxError struct {
	msg string
	off int
}

func (e *syntaxError) Error() string {
	return "invalid JSON at byte " + strconv.Itoa(e.off) + ": " + e.msg
}

// Scanner is the strict single-pass JSON scanner (RFC 8259, nesting
// bounded by maxDepth), handing out sub-slices of its input. FuzzScanner
// holds it to encoding/json's json.Valid. Use NewScanner; a Scanner is not
// safe for concurrent use.
type Scanner struct {
	b     []byte
	i     int
	depth int
}

// NewScanner returns a scanner over b.
func NewScanner(b []byte) *Scanner { return &Scanner{b: b} }

// Offset returns the position of the next unread byte: with Peek (which
// skips white space) it gives where the next value starts, and after Value,
// Object or Array where it ended.
func (s *Scanner) Offset() int { return s.i }

func (s *Scanner) fail(msg string) error { return &syntaxError{msg: msg, off: s.i} }

func (s *Scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// Peek returns the next non-space byte, or 0 at the end.
func (s *Scanner) Peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// End checks that only white space remains.
func (s *Scanner) End() error {
	s.ws()
	if s.i != len(s.b) {
		return s.fail("data after the top-level value")
	}
	return nil
}

// Value consumes one value and returns its bytes.
func (s *Scanner) Value() ([]byte, error) {
	s.ws()
	start := s.i
	if err := s.skip(); err != nil {
		return nil, err
	}
	return s.b[start:s.i], nil
}

func (s *Scanner) skip() error {
	if s.i >= len(s.b) {
		return s.fail("unexpected end")
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.str()
	case c == '{':
		return s.Object(func([]byte) error { _, err := s.Value(); return err })
	case c == '[':
		return s.Array(func(int) error { _, err := s.Value(); return err })
	case c == '-' || isDigit(c):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return s.fail("unexpected character " + strconv.QuoteRune(rune(s.b[s.i])))
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func (s *Scanner) literal(w string) error {
	if len(s.b)-s.i < len(w) || string(s.b[s.i:s.i+len(w)]) != w {
		return s.fail("bad literal")
	}
	s.i += len(w)
	return nil
}

// plainStringByte marks the bytes that need no attention inside a string:
// everything but '"', '\\' and control characters.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str consumes a string starting at '"'.
func (s *Scanner) str() error {
	s.i++ // opening quote
	for s.i < len(s.b) {
		c := s.b[s.i]
		if plainStringByte[c] {
			s.i++
			continue
		}
		switch {
		case c == '"':
			s.i++
			return nil
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return s.fail("unexpected end in string")
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if len(s.b)-s.i < 6 || !isHex(s.b[s.i+2]) || !isHex(s.b[s.i+3]) || !isHex(s.b[s.i+4]) || !isHex(s.b[s.i+5]) {
					return s.fail("bad \\u escape")
				}
				s.i += 6
			default:
				return s.fail("bad escape")
			}
		case c < 0x20:
			return s.fail("control character in string")
		default:
			s.i++
		}
	}
	return s.fail("unexpected end in string")
}

// number consumes a JSON number (RFC 8259 grammar).
func (s *Scanner) number() error {
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && isDigit(s.b[s.i]):
		for s.i < len(s.b) && isDigit(s.b[s.i]) {
			s.i++
		}
	default:
		return s.fail("bad number")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.i >= len(s.b) || !isDigit(s.b[s.i]) {
			return s.fail("bad number")
		}
		for s.i < len(s.b) && isDigit(s.b[s.i]) {
			s.i++
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.i >= len(s.b) || !isDigit(s.b[s.i]) {
			return s.fail("bad number")
		}
		for s.i < len(s.b) && isDigit(s.b[s.i]) {
			s.i++
		}
	}
	return nil
}

// Object consumes an object, calling member for each key with the scanner
// positioned at the value; member must consume exactly that value. Keys
// with escapes are decoded.
func (s *Scanner) Object(member func(key []byte) error) error {
	if s.Peek() != '{' {
		return s.fail("want an object")
	}
	s.depth++
	if s.depth > maxDepth {
		return s.fail("nested too deeply")
	}
	defer func() { s.depth-- }()
	s.i++
	if s.Peek() == '}' {
		s.i++
		return nil
	}
	for {
		if s.Peek() != '"' {
			return s.fail("want a key")
		}
		start := s.i
		if err := s.str(); err != nil {
			return err
		}
		key := s.b[start+1 : s.i-1]
		if hasBackslash(key) {
			k, err := unquote(s.b[start:s.i])
			if err != nil {
				return s.fail("bad key")
			}
			key = []byte(k)
		}
		if s.Peek() != ':' {
			return s.fail("want ':'")
		}
		s.i++
		s.ws()
		if err := member(key); err != nil {
			return err
		}
		switch s.Peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.fail("want ',' or '}'")
		}
	}
}

// Array consumes an array, calling elem for each element (with its index)
// with the scanner positioned at it; elem must consume exactly that value.
func (s *Scanner) Array(elem func(i int) error) error {
	if s.Peek() != '[' {
		return s.fail("want an array")
	}
	s.depth++
	if s.depth > maxDepth {
		return s.fail("nested too deeply")
	}
	defer func() { s.depth-- }()
	s.i++
	if s.Peek() == ']' {
		s.i++
		return nil
	}
	for n := 0; ; n++ {
		s.ws()
		if err := elem(n); err != nil {
			return err
		}
		switch s.Peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.fail("want ',' or ']'")
		}
	}
}

// EachObject consumes an array of objects (null: none), calling fn for
// each element (with its index) with the scanner positioned at it; fn must
// consume exactly that object. A value that is not an array, or an element
// that is not an object, is skipped and reported through problem with its
// path (field, or field[i]) and why: a record with a malformed nested list
// is still scanned to its end, and its mapper decides.
func (s *Scanner) EachObject(field string, problem func(field, reason string), fn func(i int) error) error {
	switch s.Peek() {
	case '[':
	case 'n':
		_, err := s.Value()
		return err
	default:
		problem(field, "want an array")
		_, err := s.Value()
		return err
	}
	return s.Array(func(i int) error {
		if s.Peek() != '{' {
			problem(field+"["+strconv.Itoa(i)+"]", "want an object")
			_, err := s.Value()
			return err
		}
		return fn(i)
	})
}

func hasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}
