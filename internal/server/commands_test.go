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
	// COMMAND, COMMAND COUNT and COMMAND LIST agree: COUNT is the number of
	// top-level entries, LIST names them and their subcommands (parent|sub).
	ts := startServer(t, Config{}, testData)
	c := dial(t, ts.addr)
	n := c.do("COMMAND COUNT")
	all := c.do("COMMAND")
	count := strings.TrimSuffix(strings.TrimPrefix(n, ":"), "\r\n")
	if !strings.HasPrefix(all, "*"+count+"\r\n") || count != itoa(int64(len(commands))) {
		t.Fatalf("COMMAND COUNT %s, COMMAND %q, table %d", count, all[:10], len(commands))
	}
	if got := bytes.Count([]byte(all), []byte("*10\r\n$")); got < len(commands) {
		t.Fatalf("COMMAND has %d entries of 10 elements, want %d", got, len(commands))
	}
	var want []string
	for _, m := range sortedMeta {
		want = append(want, m.Name)
		for _, s := range m.Subcommands {
			want = append(want, s.Name)
		}
	}
	wantList := "*" + itoa(int64(len(want))) + "\r\n"
	for _, w := range want {
		wantList += "$" + itoa(int64(len(w))) + "\r\n" + w + "\r\n"
	}
	if got := c.do("COMMAND LIST"); got != wantList {
		t.Fatalf("COMMAND LIST = %q, want %q", got, wantList)
	}
	for _, tc := range []struct{ cmd, want string }{
		{"COMMAND LIST FILTERBY PATTERN CONFIG|G*", "*1\r\n$10\r\nconfig|get\r\n"},
		{"COMMAND LIST FILTERBY ACLCAT NOSUCH", "*0\r\n"},
		{"COMMAND LIST FILTERBY MODULE x", "*0\r\n"},
		{"COMMAND INFO config|set", "*1\r\n" + metaByName["config|set"].Info2},
		{"COMMAND INFO CLIENT|LIST client|setinfo a|b|c", "*3\r\n" + metaByName["client|list"].Info2 + "$-1\r\n$-1\r\n"},
		{"COMMAND DOCS config|get nosuch", "*2\r\n" + metaByName["config|get"].Docs2},
		{"function|delete x", "-ERR unknown command 'function|delete', with args beginning with: 'x' \r\n"},
		{"FUNCTION DELETE x", "-READONLY You can't write against a read only replica.\r\n"},
	} {
		if got := c.do(tc.cmd); got != tc.want {
			t.Errorf("%s = %q, want %q", tc.cmd, got, tc.want)
		}
	}
}

// Each subcommand's metadata is its own entry, and its parent's entry nests it.
func TestSubcommandMeta(t *testing.T) {
	for _, m := range redisCommands {
		if strings.Contains(m.Name, "|") {
			t.Errorf("%s: a subcommand listed as a top-level command", m.Name)
		}
		for _, s := range m.Subcommands {
			if !strings.HasPrefix(s.Name, m.Name+"|") || !strings.HasPrefix(s.Info2, "*10\r\n") {
				t.Errorf("%s: bad subcommand metadata %q", m.Name, s.Name)
			}
			if !strings.Contains(m.Info2, s.Info2) || !strings.Contains(m.Info3, s.Info3) {
				t.Errorf("%s: entry does not nest %s's", m.Name, s.Name)
			}
		}
	}
}
