package wire

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzScanner holds the hand-written scanner to encoding/json: it accepts
// exactly what json.Valid accepts (up to the nesting limit). The apikey
// dialect's FuzzListPage runs its page decoder on the same seeds.
func FuzzScanner(f *testing.F) {
	for _, seed := range []string{
		`{"data":[{"id":"a"},1,"s",null,true,false,[],{}],"next_cursor":"c"}`,
		`{"a":"\u00e9\n\"","b":-0.5e+10,"c":[[[]]],"d":{"e":{}}}`,
		`[1,2`, `{"a" 1}`, `01`, `1.`, `-`, `"\x"`, "\"\x01\"", ` {} `, `{}x`, `{"a":1,}`, `[1,]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewScanner(data)
		_, err := s.Value()
		if err == nil {
			err = s.End()
		}
		if valid := json.Valid(data); valid != (err == nil) {
			var se *syntaxError
			if valid && errors.As(err, &se) && se.msg == "nested too deeply" {
				return
			}
			t.Fatalf("json.Valid = %v, scanner error = %v, input %q", valid, err, data)
		}
	})
}
