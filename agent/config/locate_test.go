package config

import (
	"strings"
	"testing"
)

// path parses a test key like `a.b[1]."c d"` into a keyPath. Good enough
// for the keys used here (no dots or brackets inside quotes).
func path(s string) keyPath {
	var p keyPath
	for _, part := range strings.Split(s, ".") {
		name, idx, _ := strings.Cut(part, "[")
		if strings.HasPrefix(name, `"`) {
			p = append(p, name)
		} else {
			p = p.key(name)
		}
		if idx != "" {
			for _, n := range strings.Split(strings.TrimSuffix(idx, "]"), "][") {
				p = append(p, "["+n+"]")
			}
		}
	}
	return p
}

func TestKeyPathString(t *testing.T) {
	p := keyPath(nil).key("checkout").key("tablets").index(1).key("name")
	if got := p.String(); got != "checkout.tablets[1].name" {
		t.Errorf("got %q", got)
	}
	if got := keyPath(nil).key("a b").key("").key("c.d").String(); got != `"a b".""."c.d"` {
		t.Errorf("got %q", got)
	}
	// Appending must not alias.
	base := make(keyPath, 1, 10)
	base[0] = "x"
	a, b := base.key("a"), base.key("b")
	if a.String() != "x.a" || b.String() != "x.b" {
		t.Errorf("aliasing: %s %s", a, b)
	}
}

func TestLocate(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want map[string]int // key -> line; 0 = not found at all
	}{
		{"tables and keys", `# comment [not.a.table]
version = 1   # trailing = comment

[agent]
id = "x"
  log_level="info"
[moka]   # comment
api = "apikey"
`, map[string]int{"version": 2, "agent": 4, "agent.id": 5, "agent.log_level": 6, "moka": 7, "moka.api": 8,
			"moka.missing": 7, "nothere": 0}},

		{"arrays of tables, n-th occurrence", `[checkout]
enabled = true
[[checkout.tablets]]
name = "A"

[[checkout.tablets]]  # second
name = "B"
token_sha256 = "b"
[[checkout.tablets]]
name = "C"
[local_api]
listen = "x"
`, map[string]int{"checkout": 1, "checkout.tablets": 3, "checkout.tablets[0]": 3, "checkout.tablets[0].name": 4,
			"checkout.tablets[1]": 6, "checkout.tablets[1].name": 7, "checkout.tablets[1].token_sha256": 8,
			"checkout.tablets[1].other": 6, "checkout.tablets[2].name": 10, "local_api.listen": 12}},

		{"nested arrays of tables and sub-tables", `[[a]]
x = 1
[[a.b]]
y = 1
[[a]]
[a.c]
z = 1
[[a.b]]
y = 2
[[a.b]]
y = 3
`, map[string]int{"a[0].x": 2, "a[0].b[0].y": 4, "a[1]": 5, "a[1].c": 6, "a[1].c.z": 7,
			"a[1].b[0].y": 9, "a[1].b[1].y": 11}},

		{"multi-line strings hide everything", `a = """
[fake]
b = 1
"""
c = '''
[[fake]]
d = 2 '''
e = """ends with quotes"""""
f = """escaped \""" still inside
g = 1
"""
h = 1
`, map[string]int{"a": 1, "fake": 0, "b": 0, "c": 5, "d": 0, "e": 8, "f": 9, "g": 0, "h": 12}},

		{"strings with comment and bracket characters", `a = "x # y [z]"
b = 'it''s'
c = "quote \" # still string"
d = 1
`, map[string]int{"a": 1, "b": 2, "c": 3, "d": 4}},

		{"multi-line arrays", `[moka]
outlets = [
  "a", # comment ]
  [ "nested" ],
  "b,c",
  '''x
[not_a_table]
''',
  "d",
]
after = 1
[not_a_table_either_before]
`, map[string]int{"moka.outlets": 2, "moka.outlets[0]": 3, "moka.outlets[1]": 4, "moka.outlets[1][0]": 4,
			"moka.outlets[2]": 5, "moka.outlets[3]": 6, "moka.outlets[4]": 9, "moka.after": 11,
			"not_a_table": 0, "not_a_table_either_before": 12}},

		{"quoted and dotted keys", `"quoted key" = 1
'lit.eral' = 2
a . b . c = 3
site."google.com" = true
[ "my table" . sub ]
"x\u0041" = 4
[dog."tater.man"]
type = "pug"
`, map[string]int{`"quoted key"`: 1, `"lit.eral"`: 2, "a": 3, "a.b": 3, "a.b.c": 3, "site": 4,
			`"my table".sub`: 5, `"my table".sub.xA`: 6, "dog": 7}},

		{"inline tables", `agent = { id = "x", log_level = "info",
  bogus = { deep = 1 } }
checkout.tablets = [
  { name = "A", token_sha256 = "a" },
  { name = "B",
    extra = 1 },
]
point = {x=1,y=2}
`, map[string]int{"agent": 1, "agent.id": 1, "agent.log_level": 1, "agent.bogus": 2, "agent.bogus.deep": 2,
			"checkout.tablets": 3, "checkout.tablets[0].name": 4, "checkout.tablets[1].name": 5,
			"checkout.tablets[1].extra": 6, "point.y": 8}},

		{"CRLF and BOM-free scalars", "a = 1\r\n[t]\r\nb = 1979-05-27 07:32:00Z\r\nc = 2\r\n",
			map[string]int{"a": 1, "t": 2, "t.b": 3, "t.c": 4}},

		{"first definition wins", "[x]\na = 1\n[x]\na = 2\n", map[string]int{"x": 1, "x.a": 2}},

		{"garbage does not stop the scan", "= = =\n[[[\n\"unterminated\n'also\nkey = 1\n]]]\nz = {\nw = 1\n",
			map[string]int{"key": 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := locate(tt.src)
			for key, want := range tt.want {
				var p keyPath
				if strings.HasPrefix(key, `"quoted key"`) || strings.HasPrefix(key, `"lit.eral"`) {
					p = keyPath{key}
				} else if strings.HasPrefix(key, `"my table"`) {
					p = keyPath(nil).key("my table").key("sub")
					if strings.HasSuffix(key, ".xA") {
						p = p.key("xA")
					}
				} else {
					p = path(key)
				}
				if got := l.line(p); got != want {
					t.Errorf("line(%s) = %d, want %d", p, got, want)
				}
			}
			if t.Failed() {
				t.Logf("locator saw: %v", l.lines)
			}
		})
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`plain`: "plain", `a\tb`: "a\tb", `\u00e9`: "é", `\U0001F600`: "😀", `\x41`: "A",
		`q\"q`: `q"q`, `back\\slash`: `back\slash`, `bad\q`: `bad\q`, `short\u12`: `short\u12`, `end\`: `end\`,
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
