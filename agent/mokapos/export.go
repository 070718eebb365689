package mokapos

import "github.com/pwbi/edge-agent/agent/unified"

// This file exports the pieces of the apikey mapper that the oauth dialect
// (agent/mokaoauth) reuses instead of copying: the single-pass JSON scanner
// and the field readers. They behave exactly as the
// unexported originals the apikey mapper uses.

// JSONScanner is the package's strict single-pass JSON scanner (RFC 8259,
// nesting bounded), handing out sub-slices of its input. FuzzScanner holds
// it to encoding/json's json.Valid. The zero value is not usable; use
// NewJSONScanner.
type JSONScanner struct{ s scanner }

// NewJSONScanner returns a scanner over b.
func NewJSONScanner(b []byte) *JSONScanner { return &JSONScanner{s: scanner{b: b}} }

// Peek returns the next non-space byte without consuming it; 0 at the end.
func (j *JSONScanner) Peek() byte { return j.s.peek() }

// Value consumes one JSON value and returns its bytes (a sub-slice).
func (j *JSONScanner) Value() ([]byte, error) { return j.s.value() }

// Object consumes an object, calling fn with each key (escapes decoded)
// while positioned at the member's value, which fn must consume.
func (j *JSONScanner) Object(fn func(key []byte) error) error { return j.s.object(fn) }

// Array consumes an array, calling fn for each element index; fn must
// consume the element.
func (j *JSONScanner) Array(fn func(i int) error) error { return j.s.array(fn) }

// Offset returns the position of the next unread byte: with Peek (which
// skips white space) it gives where the next value starts, and after Value,
// Object or Array where it ended.
func (j *JSONScanner) Offset() int { return j.s.i }

// End checks that only white space remains.
func (j *JSONScanner) End() error { return j.s.end() }

// IsNull reports whether a raw field is absent (nil) or JSON null.
func IsNull(raw []byte) bool { return isNull(raw) }

// TextField reads an optional text field: a JSON string, or null/absent.
func TextField(raw []byte) (string, error) { return textField(raw) }

// IDField reads an optional identifier: a JSON string (trimmed) or a JSON
// number kept as its literal text, or null/absent ("").
func IDField(raw []byte) (string, error) { return idField(raw) }

// DecimalField reads an optional decimal: a JSON number or a string holding
// one, in the plain grammar (no exponent), at most 32 characters; never
// through float64. ok is false when the field is absent or null.
func DecimalField(raw []byte) (d unified.Decimal, ok bool, err error) { return number(raw) }

// JSONString decodes a raw JSON string literal.
func JSONString(raw []byte) (string, error) { return jsonString(raw) }
