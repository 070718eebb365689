package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// FuzzParse: Parse never panics or hangs, and returns either a config or
// Problems with a message each. The locator is exercised on the raw input
// too, since Parse only runs it on documents BurntSushi/toml accepted.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile(examplePath); err == nil {
		f.Add(data)
	}
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A hang would otherwise only show as a stalled fuzzer: fail loudly
		// with the input instead.
		tm := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("Parse hangs on %q", data)) })
		defer tm.Stop()
		l := locate(string(data))
		for k := range l.lines {
			if l.lines[k] < 1 || l.lines[k] > strings.Count(string(data), "\n")+1 {
				t.Fatalf("line %d of %q out of range", l.lines[k], k)
			}
		}
		c, err := Parse("fuzz.toml", data)
		if err == nil {
			if c == nil {
				t.Fatal("nil config without error")
			}
			return
		}
		if c != nil {
			t.Fatal("config with error")
		}
		var probs Problems
		if !errors.As(err, &probs) || len(probs) == 0 {
			t.Fatalf("error is not Problems: %v", err)
		}
		for _, p := range probs {
			if p.Msg == "" || p.File != "fuzz.toml" {
				t.Fatalf("bad problem %#v", p)
			}
		}
	})
}

var fuzzSeeds = []string{
	"",
	"version = 1\n",
	"version = 1\nfoo = 1\n",
	"version = 1\n[agent]\nid = \"x\"\nnmae = \"y\"\n",
	"version = 1\n[[checkout.tablets]]\nname = \"A\"\ntoken_sha256 = \"" + hashA + "\"\n[[checkout.tablets]]\nname = \"B\"\ncolor = 1\n",
	"version = 1\n[moka]\npol_interval = \"5m\"\ninitial_backfill_days = 181\ntimezone = \"Asia/Jakata\"\n",
	"version = 1\n[upstream]\nbatch_size = \"500\"\ntimeout = 30\n",
	"version = 1\n[local_api]\nlisten = \"0.0.0.0:8687\"\n",
	"version = 1\n[moka]\napi_key = \"k\"\napi_key_file = \"k.txt\"\n",
	"version = 1\n[moka]\nenabled = yes\n",
	"version = 1\nagent = { id = \"x\",\n bogus = 1 }\ncheckout.tablets = [{name=\"a\"}]\n",
	"a = \"\"\"\n[x]\n\"\"\"\nb = '''\n'''\nc = [\n[1],\n]\n",
	"\ufeffversion = 1\r\n[moka]\r\n",
	"[[a]]\n[[a.b]]\n[a.c]\n[[a]]\n",
}

func BenchmarkParseExample(b *testing.B) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(examplePath, data); err != nil {
			b.Fatal(err)
		}
	}
}
