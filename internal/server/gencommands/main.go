// Command gencommands captures redis-server 7.0's own command metadata
// (COMMAND INFO and COMMAND DOCS, raw bytes in RESP2 and RESP3) for every
// command batchkv-server knows, and writes it as Go source, so that COMMAND's
// replies are byte-identical to Redis's. Run by `go generate` in
// internal/server; it starts /usr/bin/redis-server on a free local port.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

// supported lists the commands batchkv implements beyond the write commands
// (which are all captured: they answer READONLY).
var supported = []string{
	"ping", "echo", "quit", "reset", "hello", "auth", "select", "client", "command", "info",
	"config", "time", "dbsize", "role", "slowlog",
	"get", "mget", "exists", "type", "ttl", "pttl", "expiretime", "pexpiretime", "strlen",
	"getrange", "substr", "touch", "randomkey", "scan", "keys", "getbit", "bitcount",
	"hget", "hmget", "hgetall", "hkeys", "hvals", "hlen", "hexists", "hstrlen", "hrandfield", "hscan",
	"multi", "exec", "discard", "watch", "unwatch",
	"readonly", "readwrite", "asking", "cluster",
	"lrange", "llen", "lindex", "smembers", "scard", "sismember", "smismember",
	"zcard", "zscore", "zmscore", "xlen", "srandmember", "sinter", "sunion", "sdiff", "zrank", "zrevrank", "zrandmember", "zrange", "zrevrange", "zrangebyscore", "zrevrangebyscore", "zrangebylex", "zrevrangebylex", "zcount", "zlexcount",
}

func main() {
	server := flag.String("redis-server", "/usr/bin/redis-server", "redis-server binary (7.0.x)")
	out := flag.String("out", "commands_gen.go", "output file")
	flag.Parse()
	if err := run(*server, *out); err != nil {
		log.Fatal(err)
	}
}

func run(server, out string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	bus, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	busPort := bus.Addr().(*net.TCPAddr).Port
	ln.Close()
	bus.Close()
	// Cluster mode, so that CLUSTER HELP answers (its nodes.conf in a
	// temporary directory); COMMAND's metadata is the same either way.
	dir, err := os.MkdirTemp("", "gencommands-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(server, "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1",
		"--dir", dir, "--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(busPort))
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var c net.Conn
	for i := 0; i < 100; i++ {
		if c, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	rd := bufio.NewReader(c)
	do := func(args ...string) (raw []byte, v any, err error) {
		var b bytes.Buffer
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		if _, err := c.Write(b.Bytes()); err != nil {
			return nil, nil, err
		}
		var rec bytes.Buffer
		v, err = parse(io.TeeReader(rd, &rec), rd)
		_ = v
		return rec.Bytes(), v, err
	}
	// Read exactly one value: parse reads through a tee that records bytes.
	_, ver, err := do("INFO", "server")
	if err != nil {
		return err
	}
	if !strings.Contains(string(ver.([]byte)), "redis_version:7.0.") {
		return errors.New("gencommands: need redis-server 7.0.x")
	}
	_, list, err := do("COMMAND", "LIST")
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, s := range supported {
		want[s] = true
	}
	type entry struct {
		name                       string
		info2, info3, docs2, docs3 []byte
		arity                      int64
		flags, categories          []string
		subs                       []entry
		help                       []byte
	}
	// capture records one command's (or subcommand's) RESP2 metadata.
	var capture func(name string) (entry, error)
	capture = func(name string) (entry, error) {
		raw2, info, err := do("COMMAND", "INFO", name)
		if err != nil {
			return entry{}, err
		}
		e := info.([]any)[0].([]any)
		en := entry{name: name, arity: e[1].(int64), flags: strs(e[2]), categories: strs(e[6]),
			info2: bytes.TrimPrefix(raw2, []byte("*1\r\n"))}
		d2, _, err := do("COMMAND", "DOCS", name)
		if err != nil {
			return entry{}, err
		}
		en.docs2 = bytes.TrimPrefix(d2, []byte("*2\r\n"))
		if len(e) > 9 {
			for _, s := range e[9].([]any) {
				sub, err := capture(string(s.([]any)[0].([]byte)))
				if err != nil {
					return entry{}, err
				}
				en.subs = append(en.subs, sub)
			}
		}
		return en, nil
	}
	// The commands batchkv knows: the supported ones, every write command
	// (answered READONLY) and every container with a write subcommand
	// (FUNCTION, XGROUP: those subcommands answer READONLY). Each is
	// captured whole, with Redis's nested subcommands, so COMMAND lists
	// exactly Redis's entries for the names we answer.
	var entries []entry
	names := []string{}
	for _, n := range list.([]any) {
		if name := string(n.([]byte)); !strings.Contains(name, "|") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		en, err := capture(name)
		if err != nil {
			return err
		}
		known := want[name] || contains(en.flags, "write")
		for _, s := range en.subs {
			known = known || contains(s.flags, "write")
		}
		if want[name] && len(en.subs) > 0 {
			// The containers we serve answer HELP with Redis's text (an
			// array of simple strings: the same bytes in RESP2 and RESP3).
			if en.help, _, err = do(name, "HELP"); err != nil {
				return err
			}
		}
		if known {
			entries = append(entries, en)
		}
	}
	if _, _, err := do("HELLO", "3"); err != nil {
		return err
	}
	var capture3 func(e *entry) error
	capture3 = func(e *entry) error {
		raw3, _, err := do("COMMAND", "INFO", e.name)
		if err != nil {
			return err
		}
		e.info3 = bytes.TrimPrefix(raw3, []byte("*1\r\n"))
		d3, _, err := do("COMMAND", "DOCS", e.name)
		if err != nil {
			return err
		}
		e.docs3 = bytes.TrimPrefix(d3, []byte("%1\r\n"))
		for i := range e.subs {
			if err := capture3(&e.subs[i]); err != nil {
				return err
			}
		}
		return nil
	}
	for i := range entries {
		if err := capture3(&entries[i]); err != nil {
			return err
		}
	}
	writeMeta := func(b *bytes.Buffer, e entry) {
		fmt.Fprintf(b, "Name: %q, Arity: %d, Flags: %#v, Categories: %#v,\n", e.name, e.arity, e.flags, e.categories)
		fmt.Fprintf(b, "Info2: %s,\nInfo3: %s,\nDocs2: %s,\nDocs3: %s",
			strconv.Quote(string(e.info2)), strconv.Quote(string(e.info3)), strconv.Quote(string(e.docs2)), strconv.Quote(string(e.docs3)))
	}
	var b bytes.Buffer
	b.WriteString("// Code generated by gencommands from redis-server 7.0.15; DO NOT EDIT.\n\npackage server\n\n")
	b.WriteString("var redisCommands = []commandMeta{\n")
	for _, e := range entries {
		b.WriteString("{")
		writeMeta(&b, e)
		b.WriteString(",\n")
		if e.help != nil {
			fmt.Fprintf(&b, "Help: %s,\n", strconv.Quote(string(e.help)))
		}
		if len(e.subs) > 0 {
			b.WriteString("Subcommands: []subcommandMeta{\n")
			for _, s := range e.subs {
				b.WriteString("{")
				writeMeta(&b, s)
				b.WriteString("},\n")
			}
			b.WriteString("},\n")
		}
		b.WriteString("},\n")
	}
	b.WriteString("}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		return err
	}
	return os.WriteFile(out, src, 0o644)
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, string(x.([]byte)))
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// parse reads one RESP2/RESP3 value from r (a tee of br); lines come from r.
func parse(r io.Reader, _ *bufio.Reader) (any, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	if len(line) == 0 {
		return nil, errors.New("empty line")
	}
	body := string(line[1:])
	switch line[0] {
	case '+', ',', '(', '#':
		return []byte(body), nil
	case '-':
		return nil, fmt.Errorf("redis: %s", body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '_':
		return nil, nil
	case '$', '=':
		n, _ := strconv.Atoi(body)
		if n < 0 {
			return nil, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return b[:n], nil
	case '*', '~', '%', '>':
		n, _ := strconv.Atoi(body)
		if line[0] == '%' {
			n *= 2
		}
		if n < 0 {
			return nil, nil
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = parse(r, nil); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown type %q", line[0])
}

func readLine(r io.Reader) ([]byte, error) {
	var b []byte
	var c [1]byte
	for {
		if _, err := io.ReadFull(r, c[:]); err != nil {
			return nil, err
		}
		b = append(b, c[0])
		if len(b) >= 2 && b[len(b)-2] == '\r' && b[len(b)-1] == '\n' {
			return b[:len(b)-2], nil
		}
	}
}
