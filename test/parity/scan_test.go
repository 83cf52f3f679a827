package parity

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/redistest"
)

// scanAll iterates SCAN (args after the cursor) from 0 to 0 and returns how
// often each key was returned. The number of calls is bounded.
func scanAll(c *redistest.Conn, maxCalls int, args ...string) (map[string]int, int, error) {
	seen := map[string]int{}
	cursor := "0"
	for calls := 1; calls <= maxCalls; calls++ {
		got, err := c.DoString(append([]string{"SCAN", cursor}, args...)...)
		if err != nil {
			return nil, calls, err
		}
		r := redistest.MustParse(got)
		if r.IsError() || len(r.Elems) != 2 {
			return nil, calls, fmt.Errorf("SCAN replied %s", redistest.Escape(got))
		}
		for _, k := range r.Elems[1].Elems {
			seen[string(k.Str)]++
		}
		if cursor = string(r.Elems[0].Str); cursor == "0" {
			return seen, calls, nil
		}
	}
	return nil, maxCalls, fmt.Errorf("SCAN did not end within %d calls", maxCalls)
}

func hscanAll(c *redistest.Conn, key []byte, maxCalls int, args ...string) (map[string]string, []byte, error) {
	seen := map[string]string{}
	cursor := []byte("0")
	for calls := 1; calls <= maxCalls; calls++ {
		cmd := [][]byte{[]byte("HSCAN"), key, cursor}
		for _, a := range args {
			cmd = append(cmd, []byte(a))
		}
		got, err := c.Do(cmd...)
		if err != nil {
			return nil, nil, err
		}
		r := redistest.MustParse(got)
		if r.IsError() {
			return nil, got, nil
		}
		if len(r.Elems) != 2 || len(r.Elems[1].Elems)%2 != 0 {
			return nil, nil, fmt.Errorf("HSCAN replied %s", redistest.Escape(got))
		}
		for j := 0; j < len(r.Elems[1].Elems); j += 2 {
			f, v := string(r.Elems[1].Elems[j].Str), string(r.Elems[1].Elems[j+1].Str)
			if old, ok := seen[f]; ok && old != v {
				return nil, nil, fmt.Errorf("HSCAN field %q returned as %q and %q", f, old, v)
			}
			seen[f] = v
		}
		if cursor = r.Elems[0].Str; string(cursor) == "0" {
			return seen, nil, nil
		}
	}
	return nil, nil, fmt.Errorf("HSCAN did not end within %d calls", maxCalls)
}

// testFullScans checks complete SCAN and HSCAN iterations on both servers
// (the reference too, which checks the expectations themselves): every
// matching key of the type asked, each at least once, and nothing else.
func testFullScans(t *testing.T, p *pair) {
	deadline := time.Now().Add(60 * time.Second)
	cases := []struct {
		match string
		count string
		typ   string
	}{
		{"", "", ""},
		{"", "100", ""},
		{"*", "1000", ""},
		{"ctr:*", "50", ""},
		{"feat:*", "1000", "hash"},
		{"", "500", "string"},
		{"", "500", "HASH"},
		{"", "500", "list"},
		{"nomatch*", "300", ""},
		{"*{user:1*", "700", ""},
		{"[^a-z]*", "1000", ""},
		{"big:*", "10", ""},
	}
	for _, side := range []struct{ name, addr string }{{"redis", p.ref}, {"target", p.tgt}} {
		c, err := redistest.Dial(side.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, tc := range cases {
			if time.Now().After(deadline) {
				t.Fatalf("full scans did not finish within their budget")
			}
			var args []string
			if tc.match != "" {
				args = append(args, "MATCH", tc.match)
			}
			if tc.count != "" {
				args = append(args, "COUNT", tc.count)
			}
			if tc.typ != "" {
				args = append(args, "TYPE", tc.typ)
			}
			seen, calls, err := scanAll(c, 2*len(p.m.all)+100, args...)
			if err != nil {
				t.Errorf("%s: SCAN %q: %v", side.name, args, err)
				continue
			}
			pattern := tc.match
			if pattern == "" {
				pattern = "*"
			}
			want := map[string]bool{}
			for k := range p.chk.refKeys([]byte(pattern)) {
				if tc.typ == "" || strings.EqualFold(tc.typ, p.m.items[k].typ.String()) {
					want[k] = true
				}
			}
			var missing, extra []string
			for k := range want {
				if seen[k] == 0 {
					missing = append(missing, k)
				}
			}
			dups := 0
			for k, n := range seen {
				if !want[k] {
					extra = append(extra, k)
				}
				dups += n - 1
			}
			if len(missing) > 0 || len(extra) > 0 {
				t.Errorf("%s: SCAN %q: %d keys, want %d: missing %d (e.g. %q), unexpected %d (e.g. %q)",
					side.name, args, len(seen), len(want), len(missing), first(missing), len(extra), first(extra))
			}
			t.Logf("%s: SCAN %q: %d keys in %d calls, %d repeats", side.name, args, len(seen), calls, dups)
		}

		// HSCAN: big hashes (hashtable in redis: several calls), some small
		// ones, a string and a missing key.
		keys := slices.Clone(p.m.big[:min(30, len(p.m.big))])
		keys = append(keys, p.m.hashes[:min(30, len(p.m.hashes))]...)
		keys = append(keys, p.m.strs[0], []byte("missing:hscan"))
		for _, key := range keys {
			for _, args := range [][]string{{"COUNT", "10"}, {"MATCH", "f*", "COUNT", "3"}, {}} {
				got, errReply, err := hscanAll(c, key, 10000, args...)
				if err != nil {
					t.Errorf("%s: HSCAN %q %q: %v", side.name, key, args, err)
					continue
				}
				pattern := "*"
				if len(args) > 2 {
					pattern = args[1]
				}
				want := p.chk.refHScan(key, []byte(pattern))
				if errReply != nil {
					if it := p.m.items[string(key)]; it == nil || it.typ == 2 {
						t.Errorf("%s: HSCAN %q: %s", side.name, key, redistest.Escape(errReply))
					}
					continue
				}
				if !maps.Equal(got, want) {
					t.Errorf("%s: HSCAN %q %q: %d fields, want %d", side.name, key, args, len(got), len(want))
				}
			}
		}
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	slices.Sort(s)
	return s[0]
}
