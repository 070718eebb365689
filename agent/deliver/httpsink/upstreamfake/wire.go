package upstreamfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// decodeWire parses the JSON of a batch in one pass. It accepts exactly the
// documents encoding/json (with DisallowUnknownFields, no trailing data)
// decodes into wireBatch, to the same values, except that it is stricter in
// three ways: field names must match exactly (encoding/json ignores case), a
// field may not repeat, and the top level must be an object (not null). The
// differential fuzz test FuzzDecodeWire holds it to that.
//
// encoding/json scans every byte twice here (once to find the value, once
// to decode it, and again to skip each RawMessage); a single pass keeps the
// fake from dominating the forwarder's drain benchmark.
//
// Data fields alias data.
func decodeWire(data []byte) (wireBatch, error) {
	p := parser{b: data}
	var w wireBatch
	p.ws()
	if p.peek() != '{' {
		return w, p.errf("want a JSON object")
	}
	var seen uint8
	err := p.object(1, func(key string) error {
		var bit uint8
		var err error
		switch key {
		case "agent_id":
			bit, err = 1, p.stringField(&w.AgentID)
		case "batch_id":
			bit, err = 2, p.stringField(&w.BatchID)
		case "sent_at":
			bit, err = 4, p.stringField(&w.SentAt)
		case "records":
			bit, err = 8, p.records(&w.Records)
		default:
			return fmt.Errorf("unknown field %q", key)
		}
		if seen&bit != 0 {
			return fmt.Errorf("duplicate field %q", key)
		}
		seen |= bit
		return err
	})
	if err != nil {
		return w, err
	}
	p.ws()
	if p.i != len(p.b) {
		return w, errors.New("data after the batch object")
	}
	return w, nil
}

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

type parser struct {
	b []byte
	i int
}

func (p *parser) errf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *parser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// object parses an object at nesting depth (1 for the top level), calling
// field for each member with p at the member's value.
func (p *parser) object(depth int, field func(key string) error) error {
	if depth > maxDepth {
		return p.errf("exceeded max depth")
	}
	p.i++ // '{'
	p.ws()
	if p.peek() == '}' {
		p.i++
		return nil
	}
	for {
		if p.peek() != '"' {
			return p.errf("want a field name")
		}
		key, err := p.string()
		if err != nil {
			return err
		}
		p.ws()
		if p.peek() != ':' {
			return p.errf("want ':'")
		}
		p.i++
		p.ws()
		if err := field(key); err != nil {
			return err
		}
		p.ws()
		switch p.peek() {
		case ',':
			p.i++
			p.ws()
		case '}':
			p.i++
			return nil
		default:
			return p.errf("want ',' or '}'")
		}
	}
}

// null consumes a null literal if there is one.
func (p *parser) null() (bool, error) {
	if p.peek() != 'n' {
		return false, nil
	}
	return true, p.literal("null")
}

func (p *parser) literal(lit string) error {
	if len(p.b)-p.i < len(lit) || string(p.b[p.i:p.i+len(lit)]) != lit {
		return p.errf("invalid literal")
	}
	p.i += len(lit)
	return nil
}

// stringField decodes a string or null (which leaves dst alone, as in
// encoding/json).
func (p *parser) stringField(dst *string) error {
	if isNull, err := p.null(); isNull || err != nil {
		return err
	}
	if p.peek() != '"' {
		return p.errf("want a string")
	}
	s, err := p.string()
	if err != nil {
		return err
	}
	*dst = s
	return nil
}

// string decodes a string token.
func (p *parser) string() (string, error) {
	start := p.i
	simple, err := p.skipString()
	if err != nil {
		return "", err
	}
	raw := p.b[start:p.i]
	if simple && utf8.Valid(raw) {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string // escapes or invalid UTF-8: let encoding/json decide
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("offset %d: %v", start, err)
	}
	return s, nil
}

// skipString moves past a string token; simple reports that it had no
// escapes.
func (p *parser) skipString() (simple bool, err error) {
	p.i++ // '"'
	simple = true
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return simple, nil
		case c == '\\':
			simple = false
			if p.i+1 >= len(p.b) {
				return false, p.errf("unterminated string")
			}
			switch p.b[p.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i += 2
			case 'u':
				if p.i+6 > len(p.b) {
					return false, p.errf("unterminated string")
				}
				for _, h := range p.b[p.i+2 : p.i+6] {
					if !isHex(h) {
						return false, p.errf("invalid \\u escape")
					}
				}
				p.i += 6
			default:
				return false, p.errf("invalid escape")
			}
		case c < 0x20:
			return false, p.errf("control character in string")
		default:
			p.i++
		}
	}
	return false, p.errf("unterminated string")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// records decodes the records array (or null).
func (p *parser) records(dst *[]wireRecord) error {
	if isNull, err := p.null(); isNull || err != nil {
		if isNull {
			*dst = nil
		}
		return err
	}
	if p.peek() != '[' {
		return p.errf("records: want an array")
	}
	p.i++
	p.ws()
	out := []wireRecord{}
	if p.peek() == ']' {
		p.i++
		*dst = out
		return nil
	}
	for {
		var r wireRecord
		if isNull, err := p.null(); err != nil {
			return err
		} else if !isNull {
			if p.peek() != '{' {
				return p.errf("records[%d]: want an object", len(out))
			}
			if err := p.record(&r); err != nil {
				return fmt.Errorf("records[%d]: %w", len(out), err)
			}
		}
		out = append(out, r)
		p.ws()
		switch p.peek() {
		case ',':
			p.i++
			p.ws()
		case ']':
			p.i++
			*dst = out
			return nil
		default:
			return p.errf("want ',' or ']'")
		}
	}
}

func (p *parser) record(r *wireRecord) error {
	var seen uint8
	return p.object(3, func(key string) error {
		var bit uint8
		var err error
		switch key {
		case "kind":
			bit, err = 1, p.stringField(&r.Kind)
		case "key":
			bit, err = 2, p.stringField(&r.Key)
		case "seq":
			bit, err = 4, p.uintField(&r.Seq)
		case "version":
			bit, err = 8, p.stringField(&r.Version)
		case "data":
			bit = 16
			start := p.i
			if err = p.skip(3); err == nil {
				r.Data = p.b[start:p.i:p.i]
			}
		default:
			return fmt.Errorf("unknown field %q", key)
		}
		if seen&bit != 0 {
			return fmt.Errorf("duplicate field %q", key)
		}
		seen |= bit
		return err
	})
}

// uintField decodes an unsigned integer or null.
func (p *parser) uintField(dst *uint64) error {
	if isNull, err := p.null(); isNull || err != nil {
		return err
	}
	start := p.i
	if err := p.number(); err != nil {
		return err
	}
	n, err := strconv.ParseUint(string(p.b[start:p.i]), 10, 64)
	if err != nil {
		return fmt.Errorf("offset %d: number %s is not a uint64", start, p.b[start:p.i])
	}
	*dst = n
	return nil
}

// number moves past a number token, checking the JSON grammar.
func (p *parser) number() error {
	digits := func() int {
		n := 0
		for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.peek() == '-' {
		p.i++
	}
	switch c := p.peek(); {
	case c == '0':
		p.i++
	case '1' <= c && c <= '9':
		digits()
	default:
		return p.errf("invalid number")
	}
	if p.peek() == '.' {
		p.i++
		if digits() == 0 {
			return p.errf("invalid number")
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.i++
		if c := p.peek(); c == '+' || c == '-' {
			p.i++
		}
		if digits() == 0 {
			return p.errf("invalid number")
		}
	}
	return nil
}

// skip moves past any JSON value; depth is the number of enclosing
// containers.
func (p *parser) skip(depth int) error {
	switch c := p.peek(); {
	case c == '{':
		if depth+1 > maxDepth {
			return p.errf("exceeded max depth")
		}
		p.i++
		p.ws()
		if p.peek() == '}' {
			p.i++
			return nil
		}
		for {
			if p.peek() != '"' {
				return p.errf("want a field name")
			}
			if _, err := p.skipString(); err != nil {
				return err
			}
			p.ws()
			if p.peek() != ':' {
				return p.errf("want ':'")
			}
			p.i++
			p.ws()
			if err := p.skip(depth + 1); err != nil {
				return err
			}
			p.ws()
			switch p.peek() {
			case ',':
				p.i++
				p.ws()
			case '}':
				p.i++
				return nil
			default:
				return p.errf("want ',' or '}'")
			}
		}
	case c == '[':
		if depth+1 > maxDepth {
			return p.errf("exceeded max depth")
		}
		p.i++
		p.ws()
		if p.peek() == ']' {
			p.i++
			return nil
		}
		for {
			if err := p.skip(depth + 1); err != nil {
				return err
			}
			p.ws()
			switch p.peek() {
			case ',':
				p.i++
				p.ws()
			case ']':
				p.i++
				return nil
			default:
				return p.errf("want ',' or ']'")
			}
		}
	case c == '"':
		_, err := p.skipString()
		return err
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	}
	return p.errf("invalid value")
}
