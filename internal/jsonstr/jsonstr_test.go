package jsonstr

import (
	"encoding/json"
	"testing"
)

func TestAppendMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `"q"\`, "\x00\x01\x1f\n\r\t\b\f", "é中文🙂", "\xff\xfe", "a\u2028b\u2029", "<&>", "Nasi Goreng Spésial"} {
		check(t, s)
	}
}

func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "moka/biz/outlet/id", `"\`, "\x00\xff", "\u2028", "<b>&"} {
		f.Add(s)
	}
	f.Fuzz(check)
}

// check: the bytes are exactly encoding/json's (the canonical record data
// is hashed, so "equivalent" is not enough).
func check(t *testing.T, s string) {
	got := Append([]byte("x"), s)
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if string(got[1:]) != string(want) || got[0] != 'x' {
		t.Fatalf("Append(%q) = %s, encoding/json gives %s", s, got[1:], want)
	}
}
