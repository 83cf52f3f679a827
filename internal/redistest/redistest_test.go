package redistest

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/store"
)

func TestMain(m *testing.M) { Main(m) }

// replies are complete replies of every RESP2/RESP3 type with their parsed
// rendering.
var replies = []struct {
	raw, want string
}{
	{"+OK\r\n", `+"OK"`},
	{"-ERR bad\r\n", `-"ERR bad"`},
	{":-42\r\n", "-42"},
	{"$3\r\na\r\n\r\n", `$"a\r\n"`},
	{"$0\r\n\r\n", `$""`},
	{"$-1\r\n", "null"},
	{"*-1\r\n", "null"},
	{"*0\r\n", "*[]"},
	{"_\r\n", "null"},
	{",3.14\r\n", `,"3.14"`},
	{",inf\r\n", `,"inf"`},
	{"#t\r\n", `#"t"`},
	{"!5\r\nERR x\r\n", `!"ERR x"`},
	{"=8\r\ntxt:abcd\r\n", `="txt:abcd"`},
	{"(123456789012345678901234567890\r\n", `("123456789012345678901234567890"`},
	{"*2\r\n$1\r\na\r\n*2\r\n:1\r\n_\r\n", `*[$"a" *[1 null]]`},
	{"%2\r\n+a\r\n:1\r\n+b\r\n~1\r\n#f\r\n", `%[+"a" 1 +"b" ~[#"f"]]`},
	{"~2\r\n:1\r\n:2\r\n", "~[1 2]"},
	{">2\r\n+message\r\n$1\r\nx\r\n", `>[+"message" $"x"]`},
	{"|1\r\n+ttl\r\n:3600\r\n$2\r\nhi\r\n", `|%[+"ttl" 3600]$"hi"`},
	{"*2\r\n|1\r\n+a\r\n:1\r\n:2\r\n:3\r\n", `*[|%[+"a" 1]2 3]`},
	{"$?\r\n;4\r\nHell\r\n;1\r\no\r\n;0\r\n", `$"Hello"`},
	{"*?\r\n:1\r\n$1\r\nz\r\n.\r\n", `*[1 $"z"]`},
	{"$6\r\n\x00\xff\r\n\r\n\r\n", `$"\x00\xff\r\n\r\n"`},
}

func TestReadReplyEveryType(t *testing.T) {
	var all bytes.Buffer
	for _, r := range replies {
		all.WriteString(r.raw)
	}
	c, srv := pipeConn(t)
	go func() { // owned by the test: ends after one write
		srv.Write(all.Bytes())
	}()
	for _, r := range replies {
		got, err := c.ReadReply()
		if err != nil {
			t.Fatalf("ReadReply for %q: %v", r.raw, err)
		}
		if string(got) != r.raw {
			t.Fatalf("ReadReply = %q, want %q", got, r.raw)
		}
		p, err := Parse(got)
		if err != nil {
			t.Fatalf("Parse(%q): %v", got, err)
		}
		if p.String() != r.want {
			t.Errorf("Parse(%q) = %s, want %s", got, p, r.want)
		}
	}
}

func TestReadReplyRejectsBrokenStreams(t *testing.T) {
	for _, raw := range []string{
		"?x\r\n", "+OK\n", "$3\r\nabcd\r\n", "$x\r\n", "*-2\r\n", "\r\n",
		strings.Repeat("*1\r\n", maxDepth+2) + ":1\r\n",
	} {
		if _, err := Parse([]byte(raw)); err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", raw)
		}
	}
	if _, err := Parse([]byte("+OK\r\n+OK\r\n")); err == nil {
		t.Error("Parse of two replies succeeded")
	}
	// A truncated reply is an error, never a partial success.
	c, srv := pipeConn(t)
	go func() {
		srv.Write([]byte("*2\r\n:1\r\n"))
		srv.Close()
	}()
	if got, err := c.ReadReply(); err == nil {
		t.Fatalf("ReadReply of a truncated reply = %q", got)
	}
}

func TestCanonical(t *testing.T) {
	a := MustParse([]byte("*3\r\n$1\r\nb\r\n$1\r\na\r\n$1\r\nb\r\n"))
	b := MustParse([]byte("*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nb\r\n"))
	c := MustParse([]byte("*3\r\n$1\r\na\r\n$1\r\na\r\n$1\r\nb\r\n"))
	if a.Canonical(false) == b.Canonical(false) {
		t.Error("ordered arrays in different order compare equal")
	}
	if a.Canonical(true) != b.Canonical(true) {
		t.Error("unordered arrays with the same elements compare different")
	}
	if a.Canonical(true) == c.Canonical(true) {
		t.Error("multisets with different counts compare equal")
	}
	m1 := MustParse([]byte("%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n"))
	m2 := MustParse([]byte("%2\r\n+b\r\n:2\r\n+a\r\n:1\r\n"))
	m3 := MustParse([]byte("%2\r\n+b\r\n:1\r\n+a\r\n:2\r\n"))
	if m1.Canonical(false) != m2.Canonical(false) || m1.Canonical(false) == m3.Canonical(false) {
		t.Error("maps must compare as sets of pairs")
	}
}

func pipeConn(t *testing.T) (*Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := Dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); srv.Close() })
	c.SetTimeout(5 * time.Second)
	return c, srv
}

func hash(kv ...string) []byte {
	b := store.AppendHashHeader(nil, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		b = store.AppendHashField(b, []byte(kv[i]), []byte(kv[i+1]))
	}
	return b
}

func TestRedisLoadAndReplica(t *testing.T) {
	r := StartRedis(t)
	entries := []store.Entry{
		{Key: []byte("s"), Value: store.AppendString(nil, []byte("v"))},
		{Key: []byte("bin\x00\r\n"), Value: store.AppendString(nil, []byte("\x00\xff\r\n"))},
		{Key: []byte("empty"), Value: store.AppendString(nil, nil)},
		{Key: []byte("h"), Value: hash("z", "1", "a", "2", "m", "3")},
	}
	for i := 0; i < 5000; i++ {
		entries = append(entries, store.Entry{
			Key:   []byte("k" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strconv.Itoa(i)),
			Value: store.AppendString(nil, []byte(strconv.Itoa(i))),
		})
	}
	Load(t, r.Addr, entries)
	MakeReadOnlyReplica(t, r.Addr)

	c, err := Dial(r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Give the replica a few failed sync attempts (one per second): it must
	// keep its data.
	time.Sleep(2500 * time.Millisecond)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"DBSIZE"}, ":5004\r\n"},
		{[]string{"GET", "bin\x00\r\n"}, "$4\r\n\x00\xff\r\n\r\n"},
		{[]string{"GET", "empty"}, "$0\r\n\r\n"},
		{[]string{"HGETALL", "h"}, "*6\r\n$1\r\nz\r\n$1\r\n1\r\n$1\r\na\r\n$1\r\n2\r\n$1\r\nm\r\n$1\r\n3\r\n"},
		{[]string{"DEL", "s"}, ReadOnlyError},
		{[]string{"FLUSHALL"}, ReadOnlyError},
		{[]string{"GET", "s"}, "$1\r\nv\r\n"},
	} {
		got, err := c.DoString(tc.args...)
		if err != nil || string(got) != tc.want {
			t.Errorf("%q = %s (%v), want %s", tc.args, Escape(got), err, Escape([]byte(tc.want)))
		}
	}
}

// TestStartBatchkv runs the real server when ./cmd/server builds; it is the
// harness's own check, the behaviour is tested in test/parity.
func TestStartBatchkv(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "v1")
	meta := &store.Meta{Name: "redistest", Version: "v1"}
	err := store.WriteVersion(context.Background(), dir, meta, []store.Entry{
		{Key: []byte("a"), Value: store.AppendString(nil, []byte("1"))},
		{Key: []byte("h"), Value: hash("f", "v")},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := StartBatchkv(t, dir)
	c, err := Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"GET", "a"}, "$1\r\n1\r\n"},
		{[]string{"HGET", "h", "f"}, "$1\r\nv\r\n"},
		{[]string{"SET", "a", "2"}, ReadOnlyError},
		{[]string{"DBSIZE"}, ":2\r\n"},
	} {
		got, err := c.DoString(tc.args...)
		if err != nil || string(got) != tc.want {
			t.Errorf("%q = %s (%v), want %s", tc.args, Escape(got), err, Escape([]byte(tc.want)))
		}
	}
}
