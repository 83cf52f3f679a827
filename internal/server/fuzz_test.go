package server

import (
	"bufio"
	"bytes"
	"net"
	"sort"
	"strings"
	"testing"

	"github.com/batchkv/batchkv/internal/swap"
)

func commandNames() []string {
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// FuzzDispatch runs arbitrary arguments through the command layer, in both
// protocols and inside MULTI: no command may panic (the recovered panic
// would answer "internal error"), and every reply must be well-formed RESP.
func FuzzDispatch(f *testing.F) {
	for _, seed := range []string{
		"get\x00s", "hgetall\x00h", "hrandfield\x00h\x00-3\x00withvalues", "scan\x000\x00match\x00*\x00count\x002\x00type\x00hash",
		"getrange\x00s\x00-1\x00-100", "client\x00kill\x00id\x001", "command\x00docs\x00get", "config\x00get\x00*max*",
		"hello\x003\x00auth\x00default\x00x\x00setname\x00n", "hscan\x00h\x000\x00match\x00[a-", "keys\x00[^a-\\",
		"client\x00list\x00id\x001\x002", "slowlog\x00get\x00-1", "info\x00all", "exec", "multi", "watch\x00a", "client\x00pause\x001", "command\x00getkeys\x00get\x00a",
		"command\x00info\x00config|get\x00CLIENT|LIST\x00a|b|c", "command\x00docs\x00xgroup|create", "command\x00list\x00filterby\x00aclcat\x00read",
		"command\x00list\x00filterby\x00pattern\x00client|[", "client\x00setinfo\x00LIB-NAME\x00a b", "function\x00delete\x00x", "function|delete\x00x",
		"client\x00kill\x00id\x00abc\x0048", "client\x00list\x00type\x00pubsub\x00x", "hello\x002\x00setname\x00n\x00auth\x00nosuch\x00pw\x0040",
	} {
		f.Add([]byte(seed), uint8(0))
		f.Add([]byte(seed), uint8(3))
	}
	cur := &swap.Current{}
	cur.Swap(openVersion(f, writeDataset(f, "v1", testData)))
	f.Cleanup(cur.Close)
	srv, err := New(Config{MaxKeysReply: 5, OutputBufferLimit: 1 << 20, OutputFlushSize: 64 << 10}, cur, nil)
	if err != nil {
		f.Fatal(err)
	}
	fuzzNames := commandNames()
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		var args [][]byte
		for _, a := range bytes.Split(data, []byte{0}) {
			args = append(args, a)
		}
		if mode&4 != 0 && len(args[0]) > 0 {
			// Pick a real command name to reach deeper.
			args[0] = []byte(fuzzNames[int(args[0][0])%len(fuzzNames)])
		}
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		c := srv.newConn(a)
		if mode&1 != 0 {
			c.w.Proto = 3
		}
		c.v = cur.Acquire()
		defer c.releaseVersion()
		n := 1
		if mode&2 != 0 {
			c.dispatch([][]byte{[]byte("MULTI")})
			n++
		}
		c.dispatch(args)
		if c.multi {
			c.dispatch([][]byte{[]byte("EXEC")})
			n++
		}
		if c.killed.Load() {
			return // disconnected for a limit: no reply owed
		}
		out := c.w.Bytes()
		if bytes.Contains(out, []byte("-ERR internal error")) {
			t.Fatalf("%q panicked", args)
		}
		br := bufio.NewReader(bytes.NewReader(out))
		for i := 0; i < n; i++ {
			if _, err := readReply(br); err != nil {
				t.Fatalf("%q: reply %d malformed: %v in %q", args, i, err, out)
			}
		}
		if rest, _ := br.Peek(1); len(rest) != 0 && !strings.EqualFold(string(args[0]), "quit") {
			t.Fatalf("%q: %d replies expected, more in %q", args, n, out)
		}
	})
}
