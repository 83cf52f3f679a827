package redistest

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/store"
)

// RedisServerPath is the reference server every parity test compares with.
const RedisServerPath = "/usr/bin/redis-server"

// ReadOnlyError is the reply of a read-only replica (and of batchkv) to any
// write command.
const ReadOnlyError = "-READONLY You can't write against a read only replica.\r\n"

// Redis is a redis-server process started for a test.
type Redis struct {
	// Addr is its host:port on 127.0.0.1.
	Addr string
	p    *child
}

// StartRedis starts redis-server 7 on 127.0.0.1 with a free port, no
// persistence and a temporary directory, waits until it answers PING and
// stops it when the test ends. extraArgs are passed through
// (e.g. "--databases", "1").
func StartRedis(t testing.TB, extraArgs ...string) *Redis {
	t.Helper()
	if _, err := os.Stat(RedisServerPath); err != nil {
		t.Fatalf("redistest: %s not found (%v): install the reference server "+
			"(Debian package redis-server; .ci/run installs it: apt-get install -y redis-server redis-tools)",
			RedisServerPath, err)
	}
	dir := t.TempDir()
	p := startProc(t, "redis-server", RedisServerPath, func(port int) []string {
		args := []string{
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--save", "",
			"--appendonly", "no",
			"--dir", dir,
			"--daemonize", "no",
			"--logfile", "",
		}
		return append(args, extraArgs...)
	})
	return &Redis{Addr: p.addr, p: p}
}

// Output returns what the server has logged so far.
func (r *Redis) Output() string { return r.p.Output() }

// Load writes entries into the server at addr with pipelined, binary-safe SET
// and HSET commands (one HSET per hash, fields in stored order, so that a
// small hash keeps the insertion order batchkv replies in), checks every reply
// and finally that DBSIZE equals len(entries).
func Load(t testing.TB, addr string, entries []store.Entry) {
	t.Helper()
	c, err := Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetTimeout(time.Minute)

	var (
		buf  []byte
		want []string
	)
	flush := func() {
		if len(want) == 0 {
			return
		}
		if err := c.Send(buf); err != nil {
			t.Fatalf("redistest: load: %v", err)
		}
		for i, w := range want {
			got, err := c.ReadReply()
			if err != nil {
				t.Fatalf("redistest: load: reply %d: %v", i, err)
			}
			if string(got) != w {
				t.Fatalf("redistest: load: reply %s, want %s", Escape(got), Escape([]byte(w)))
			}
		}
		buf, want = buf[:0], want[:0]
	}
	args := make([][]byte, 0, 16)
	for _, e := range entries {
		v, err := store.DecodeValue(e.Value)
		if err != nil {
			t.Fatalf("redistest: load: key %q: %v", e.Key, err)
		}
		args = args[:0]
		switch v.Type {
		case store.TypeString:
			args = append(args, []byte("SET"), e.Key, v.Data)
			want = append(want, "+OK\r\n")
		case store.TypeHash:
			args = append(args, []byte("HSET"), e.Key)
			n := 0
			err := v.Hash().Range(func(f, val []byte) bool {
				args = append(args, f, val)
				n++
				return true
			})
			if err != nil {
				t.Fatalf("redistest: load: key %q: %v", e.Key, err)
			}
			if n == 0 {
				t.Fatalf("redistest: load: key %q: redis cannot hold an empty hash", e.Key)
			}
			// A field given twice would be counted once: the reply checks
			// that the hash has exactly the stored fields.
			want = append(want, ":"+strconv.Itoa(n)+"\r\n")
		}
		buf = AppendCommand(buf, args...)
		if len(want) >= 1000 || len(buf) >= 4<<20 {
			flush()
		}
	}
	flush()
	got, err := c.DoString("DBSIZE")
	if err != nil {
		t.Fatal(err)
	}
	if w := fmt.Sprintf(":%d\r\n", len(entries)); string(got) != w {
		t.Fatalf("redistest: load: DBSIZE %s, want %s (duplicate keys?)", Escape(got), Escape([]byte(w)))
	}
}

// MakeReadOnlyReplica turns the loaded server at addr into a replica of a
// port where nothing listens. The sync never succeeds, so the server keeps
// serving the data it holds (replica-serve-stale-data is on by default) and
// answers every write with ReadOnlyError — what batchkv does.
func MakeReadOnlyReplica(t testing.TB, addr string) {
	t.Helper()
	c, err := Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	size, err := c.DoString("DBSIZE")
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.DoString("REPLICAOF", "127.0.0.1", strconv.Itoa(ClosedPort(t)))
	if err != nil || string(got) != "+OK\r\n" {
		t.Fatalf("redistest: REPLICAOF: %s %v", Escape(got), err)
	}
	got, err = c.DoString("SET", "redistest:probe", "x")
	if err != nil || string(got) != ReadOnlyError {
		t.Fatalf("redistest: write to replica: %s %v, want %s", Escape(got), err, Escape([]byte(ReadOnlyError)))
	}
	if after, err := c.DoString("DBSIZE"); err != nil || string(after) != string(size) {
		t.Fatalf("redistest: replica DBSIZE %s (%v), was %s", Escape(after), err, Escape(size))
	}
}
