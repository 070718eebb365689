package config

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

const hashC = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

func TestRemoveTablet(t *testing.T) {
	example, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	three := AddTablet(AddTablet(AddTablet(example, "Front", hashA), `Terrace "2"`, hashB), "Bar", hashC)
	for _, tc := range []struct {
		name   string
		data   string
		remove string
		want   []string // names left
		err    bool
	}{
		{"middle", string(three), "terrace \"2\" ", []string{"Front", "Bar"}, false},
		{"first", string(three), "Front", []string{`Terrace "2"`, "Bar"}, false},
		{"last", string(three), "BAR", []string{"Front", `Terrace "2"`}, false},
		{"unknown", string(three), "Kitchen", nil, true},
		{"only one, then other tables",
			"version = 1\n[[checkout.tablets]]\nname = \"A\"\ntoken_sha256 = \"" + hashA + "\"\n\n# local API\n[local_api]\nlisten = \"127.0.0.1:9\"\n",
			"A", nil, false},
		{"block before [checkout]",
			"version = 1\n[[checkout.tablets]]\nname = \"A\"\ntoken_sha256 = \"" + hashA + "\"\n[[checkout.tablets]]\nname = \"B\"\ntoken_sha256 = \"" + hashB + "\"\n[checkout]\nenabled = true\nstore_id = \"1\"\n",
			"B", []string{"A"}, false},
		{"crlf",
			"version = 1\r\n[[checkout.tablets]]\r\nname = \"A\"\r\ntoken_sha256 = \"" + hashA + "\"\r\n[[checkout.tablets]]\r\nname = \"B\"\r\ntoken_sha256 = \"" + hashB + "\"\r\n",
			"A", []string{"B"}, false},
		{"inline array is refused",
			"version = 1\n[checkout]\ntablets = [ { name = \"A\", token_sha256 = \"" + hashA + "\" } ]\n",
			"A", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := RemoveTablet([]byte(tc.data), tc.remove)
			if tc.err {
				if err == nil {
					t.Fatalf("no error; result:\n%s", out)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse("x.toml", out)
			if err != nil {
				t.Fatalf("result does not parse: %v\n%s", err, out)
			}
			var names []string
			for _, tb := range c.Checkout.Tablets {
				names = append(names, tb.Name)
			}
			if !reflect.DeepEqual(names, tc.want) {
				t.Fatalf("tablets %q, want %q\n%s", names, tc.want, out)
			}
			if strings.Contains(tc.data, "\r\n") && strings.Contains(strings.ReplaceAll(string(out), "\r\n", ""), "\n") {
				t.Error("line endings changed")
			}
			// Everything else stays.
			before, _ := Parse("x.toml", []byte(tc.data))
			before.Checkout.Tablets, c.Checkout.Tablets = nil, nil
			before.SHA256, c.SHA256 = "", ""
			if !reflect.DeepEqual(before, c) {
				t.Errorf("other settings changed:\n%+v\n%+v", before, c)
			}
		})
	}
	// Adding then removing gives the file back, comments and all.
	one := AddTablet(example, "Front", hashA)
	back, err := RemoveTablet(one, "Front")
	if err != nil || string(back) != string(example) {
		t.Fatalf("add+remove changed the file (err %v):\n%s", err, back)
	}
	if _, err := RemoveTablet(example, "Front"); !errors.Is(err, ErrNoTablet) {
		t.Fatalf("err = %v", err)
	}
}
