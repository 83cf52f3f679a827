package server

import (
	"bytes"
	"strings"
	"testing"
)

// Every command in the table is served, answers READONLY, or is a container
// whose subcommands are; COMMAND's metadata entries are Redis's 10-element
// layout in both protocols.
func TestCommandTable(t *testing.T) {
	for name, cmd := range commands {
		if cmd.run == nil && cmd.flags&flagWrite == 0 && cmd.subs == nil {
			t.Errorf("%s: no handler", name)
		}
		m := cmd.meta
		if !strings.HasPrefix(m.Info2, "*10\r\n") || !strings.HasPrefix(m.Info3, "*10\r\n") {
			t.Errorf("%s: COMMAND INFO entry is not 10 elements: %q", name, m.Info2[:min(20, len(m.Info2))])
		}
		wantName := "$" + itoa(int64(len(name))) + "\r\n" + name + "\r\n"
		if !strings.HasPrefix(m.Info2[5:], wantName) || !strings.HasPrefix(m.Docs2, wantName) || !strings.HasPrefix(m.Docs3, wantName) {
			t.Errorf("%s: metadata names another command", name)
		}
		for sub, sc := range cmd.subs {
			if sc.run == nil && sc.flags&flagWrite == 0 {
				t.Logf("%s %s: known, not served (answers unknown subcommand)", name, sub)
			}
		}
	}
	for _, w := range []string{"set", "del", "hset", "incr", "expire", "flushdb", "flushall", "append", "lpush", "sadd", "zadd", "xadd", "getdel", "getex"} {
		if c := commands[w]; c == nil || c.flags&flagWrite == 0 {
			t.Errorf("%s: not a known write command", w)
		}
	}
	// COMMAND, COMMAND COUNT and COMMAND LIST agree.
	ts := startServer(t, Config{}, testData)
	c := dial(t, ts.addr)
	n := c.do("COMMAND COUNT")
	list := c.do("COMMAND LIST")
	all := c.do("COMMAND")
	count := strings.TrimSuffix(strings.TrimPrefix(n, ":"), "\r\n")
	if !strings.HasPrefix(list, "*"+count+"\r\n") || !strings.HasPrefix(all, "*"+count+"\r\n") || count != itoa(int64(len(commands))) {
		t.Fatalf("COMMAND COUNT %s, LIST %q, COMMAND %q, table %d", count, list[:10], all[:10], len(commands))
	}
	if got := bytes.Count([]byte(all), []byte("*10\r\n$")); got < len(commands) {
		t.Fatalf("COMMAND has %d entries of 10 elements, want %d", got, len(commands))
	}
}
