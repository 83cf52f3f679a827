package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/store"
	"github.com/batchkv/batchkv/internal/swap"
	"go.uber.org/zap/zaptest"
)

// testData is the dataset most tests serve: strings and hashes, binary-safe.
type testPair struct {
	key   string
	value string   // a string value, when hash is nil
	hash  []string // field, value, field, value...
}

var testData = []testPair{
	{key: "s", value: "hello"},
	{key: "empty", value: ""},
	{key: "num", value: "42"},
	{key: "bin\x00\xff", value: "\x00\x01\r\n"},
	{key: "long", value: string(bytes.Repeat([]byte("abcdefghij"), 100))},
	{key: "h", hash: []string{"f1", "v1", "f2", "v2", "f3", ""}},
	{key: "h2", hash: []string{"b", "2", "a", "1"}},
	{key: "user:1", value: "alice"},
	{key: "user:2", value: "bob"},
	{key: "user:10", value: "carol"},
	{key: "{tag}x", value: "tagged"},
}

func entriesOf(data []testPair) []store.Entry {
	var es []store.Entry
	for _, p := range data {
		if p.hash == nil {
			es = append(es, store.Entry{Key: []byte(p.key), Value: store.AppendString(nil, []byte(p.value))})
			continue
		}
		v := store.AppendHashHeader(nil, len(p.hash)/2)
		for i := 0; i < len(p.hash); i += 2 {
			v = store.AppendHashField(v, []byte(p.hash[i]), []byte(p.hash[i+1]))
		}
		es = append(es, store.Entry{Key: []byte(p.key), Value: v})
	}
	return es
}

// writeDataset writes data as a version directory and returns it.
func writeDataset(t testing.TB, name string, data []testPair) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	meta := &store.Meta{Name: "test", Version: name, BuiltAt: time.Unix(1700000000, 0)}
	if err := store.WriteVersion(context.Background(), dir, meta, entriesOf(data)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// openVersion opens dir as a swap.Version.
func openVersion(t testing.TB, dir string) *swap.Version {
	t.Helper()
	db, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return swap.NewVersion(db, nil)
}

type testServer struct {
	srv  *Server
	cur  *swap.Current
	addr string
	done chan error
}

// startServer serves data (nil: no version live) on 127.0.0.1:0.
func startServer(t testing.TB, cfg Config, data []testPair) *testServer {
	t.Helper()
	cur := &swap.Current{}
	if data != nil {
		cur.Swap(openVersion(t, writeDataset(t, "v1", data)))
	}
	ts := startServerCurrent(t, cfg, cur)
	t.Cleanup(cur.Close)
	return ts
}

func startServerCurrent(t testing.TB, cfg Config, cur *swap.Current) *testServer {
	t.Helper()
	srv, err := New(cfg, cur, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, cur: cur, addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-ts.done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

// redisServer starts redis-server 7.0 on a free port loaded with data. As a
// replica of an unreachable master it is read-only, like batchkv-server:
// writes answer READONLY after the same checks.
func redisServer(t testing.TB, data []testPair, password ...string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is required for parity tests: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--databases", "1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var c net.Conn
	for i := 0; i < 200; i++ {
		if c, err = net.Dial("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var req []byte
	n := 0
	for _, p := range data {
		if p.hash == nil {
			req = appendCmd(req, "SET", p.key, p.value)
		} else {
			req = appendCmd(req, append([]string{"HSET", p.key}, p.hash...)...)
		}
		n++
	}
	// Replicate from a port nothing listens on: read-only, data kept.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadPort := dead.Addr().(*net.TCPAddr).Port
	dead.Close()
	req = appendCmd(req, "REPLICAOF", "127.0.0.1", strconv.Itoa(deadPort))
	n++
	if len(password) > 0 {
		req = appendCmd(req, "CONFIG", "SET", "requirepass", password[0])
		n++
	}
	c.Write(req)
	br := bufio.NewReader(c)
	for i := 0; i < n; i++ {
		r, err := readReply(br)
		if err != nil || r[0] == '-' {
			t.Fatalf("loading redis: %q %v", r, err)
		}
	}
	return addr
}

func appendCmd(b []byte, args ...string) []byte {
	b = fmt.Appendf(b, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}

func cmdBytes(args ...string) []byte { return appendCmd(nil, args...) }

// readReply reads one RESP2/RESP3 reply and returns its raw bytes.
func readReply(br *bufio.Reader) ([]byte, error) {
	var out []byte
	err := readReplyInto(br, &out)
	return out, err
}

func readReplyInto(br *bufio.Reader, out *[]byte) error {
	line, err := br.ReadBytes('\n')
	*out = append(*out, line...)
	if err != nil {
		return err
	}
	if len(line) < 3 {
		return fmt.Errorf("short line %q", line)
	}
	body := string(line[1 : len(line)-2])
	switch line[0] {
	case '+', '-', ':', '_', ',', '#', '(':
		return nil
	case '$', '=', '!':
		n, err := strconv.Atoi(body)
		if err != nil {
			return err
		}
		if n < 0 {
			return nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(br, b); err != nil {
			return err
		}
		*out = append(*out, b...)
		return nil
	case '*', '~', '%', '>', '|':
		n, err := strconv.Atoi(body)
		if err != nil {
			return err
		}
		if line[0] == '%' || line[0] == '|' {
			n *= 2
		}
		for i := 0; i < n; i++ {
			if err := readReplyInto(br, out); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("bad reply type %q", line)
}

// exchange sends req on a new connection and reads n replies, then, when
// wantEOF, expects the server to close the connection.
func exchange(t testing.TB, addr string, req []byte, n int, wantEOF bool) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []byte
	for i := 0; i < n; i++ {
		if err := readReplyInto(br, &out); err != nil {
			t.Fatalf("reply %d of %q: %v (got %q)", i, req, err, out)
		}
	}
	if wantEOF {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		rest, err := io.ReadAll(br)
		if err != nil && !isReset(err) {
			t.Fatalf("%q: want EOF, got %v after %q", req, err, rest)
		}
		out = append(out, rest...)
		out = append(out, "<EOF>"...)
	}
	return out
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}
