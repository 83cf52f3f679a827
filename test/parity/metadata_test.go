package parity

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/batchkv/batchkv/internal/redistest"
)

// testCommandMetadata checks the command metadata replies of the target as a
// whole, which the per-reply rules (checkCommandAll, checkCommandCount,
// checkCommandSet, ...) cannot: batchkv lists the commands it knows, a
// subset of redis's 240, so the replies must agree with each other.
//
//   - COMMAND COUNT is the number of entries of plain COMMAND;
//   - COMMAND LIST names exactly COMMAND's entries and their nested
//     subcommands (parent|sub), as redis 7.0 does;
//   - every entry equals redis's entry of that name (nested subcommands
//     compared as a set: redis orders them by a per-process hash seed);
//   - COMMAND INFO and COMMAND DOCS of every listed name (subcommands
//     included) equal redis's;
//   - every command listed is known: it does not answer "unknown command".
//
// Both protocols are checked.
func testCommandMetadata(t *testing.T, p *pair) {
	for _, proto := range []string{"2", "3"} {
		t.Run("RESP"+proto, func(t *testing.T) {
			ref, tgt := dialPair(t, p, proto)
			do := func(c *redistest.Conn, args ...string) *redistest.Reply {
				t.Helper()
				raw, err := c.DoString(args...)
				if err != nil {
					t.Fatalf("%q: %v", args, err)
				}
				return redistest.MustParse(raw)
			}
			all := do(tgt, "COMMAND")
			refAll := do(ref, "COMMAND")
			refEntries := map[string]string{}
			for _, e := range refAll.Elems {
				refEntries[string(e.Elems[0].Str)] = commandEntry(e)
			}
			var want []string // COMMAND's names and their subcommands
			for _, e := range all.Elems {
				name := string(e.Elems[0].Str)
				if got := commandEntry(e); got != refEntries[name] {
					t.Errorf("COMMAND entry %q differs from redis's:\n got %s\nwant %s", name, got, refEntries[name])
				}
				want = append(want, name)
				if len(e.Elems) == 10 {
					for _, s := range e.Elems[9].Elems {
						want = append(want, string(s.Elems[0].Str))
					}
				}
			}
			if n := do(tgt, "COMMAND", "COUNT"); n.Int != int64(len(all.Elems)) {
				t.Errorf("COMMAND COUNT %d, COMMAND has %d entries", n.Int, len(all.Elems))
			}
			var list []string
			for _, e := range do(tgt, "COMMAND", "LIST").Elems {
				list = append(list, string(e.Str))
			}
			slices.Sort(list)
			slices.Sort(want)
			if !slices.Equal(list, want) {
				t.Errorf("COMMAND LIST is not COMMAND's names and subcommands:\n got %q\nwant %q", list, want)
			}
			for _, name := range list {
				gi, ri := do(tgt, "COMMAND", "INFO", name), do(ref, "COMMAND", "INFO", name)
				if len(gi.Elems) != 1 || len(ri.Elems) != 1 || commandEntry(gi.Elems[0]) != commandEntry(ri.Elems[0]) {
					t.Errorf("COMMAND INFO %s differs from redis's:\n got %s\nwant %s", name, gi.Canonical(false), ri.Canonical(false))
				}
				gd, rd := do(tgt, "COMMAND", "DOCS", name), do(ref, "COMMAND", "DOCS", name)
				if gd.Canonical(true) != rd.Canonical(true) {
					t.Errorf("COMMAND DOCS %s differs from redis's", name)
				}
				if strings.Contains(name, "|") || p.target != "batchkv" || proto != "2" {
					continue
				}
				// Known: anything but "unknown command" (usually an arity
				// error: no arguments are sent). A fresh connection each, as
				// MULTI, QUIT or RESET change it; never sent to a redis
				// target (SHUTDOWN, SYNC, MONITOR).
				c, err := redistest.Dial(p.tgt)
				if err != nil {
					t.Fatal(err)
				}
				if r := do(c, name); r.IsError() && strings.HasPrefix(string(r.Str), "ERR unknown command") {
					t.Errorf("COMMAND lists %s, which answers %q", name, r.Str)
				}
				c.Close()
			}
			if t.Failed() {
				return
			}
			t.Logf("%d commands, %d names listed, each with redis's COMMAND INFO and DOCS", len(all.Elems), len(list))
		})
	}
}

// dialPair connects to both servers in protocol proto ("2" or "3").
func dialPair(t *testing.T, p *pair, proto string) (ref, tgt *redistest.Conn) {
	t.Helper()
	for _, a := range []struct {
		addr string
		c    **redistest.Conn
	}{{p.ref, &ref}, {p.tgt, &tgt}} {
		c, err := redistest.Dial(a.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.DoString("HELLO", proto); err != nil {
			t.Fatal(fmt.Errorf("HELLO %s: %w", proto, err))
		}
		*a.c = c
	}
	return ref, tgt
}
