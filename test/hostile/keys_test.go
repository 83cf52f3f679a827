package hostile

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/redistest"
	"github.com/batchkv/batchkv/internal/store"
	"github.com/batchkv/batchkv/test/hostile/harness"
)

// bigServer serves a dataset of n strings harness.Key(i) → "v:<i>" (so
// probeKey is there) with the default limits.
func bigDataset(t *testing.T, n int) string {
	t.Helper()
	start := time.Now()
	dir := harness.WriteVersion(t, t.TempDir(), "big", "v", n)
	t.Logf("%d keys written in %v", n, time.Since(start).Round(time.Millisecond))
	return dir
}

// timed runs one command on a fresh connection and returns its reply and
// how long it took.
func timed(t *testing.T, addr string, args ...string) (*redistest.Reply, int, time.Duration) {
	t.Helper()
	c, err := redistest.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetTimeout(5 * time.Minute)
	start := time.Now()
	raw, err := c.DoString(args...)
	d := time.Since(start)
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	r, err := redistest.Parse(raw)
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	return r, len(raw), d
}

// judge returns the probes that waited too long while cmd ran for d: over
// maxLatency, or for most of the command's run (they were queued behind
// it: head-of-line blocking).
func judge(cmd string, d time.Duration, res []harness.ProbeResult) []string {
	var out []string
	for i, r := range res {
		if r.Max > maxLatency || d > 500*time.Millisecond && r.Max > d/2 {
			out = append(out, fmt.Sprintf("during %s (%v) well-behaved client %d waited %v",
				cmd, d.Round(time.Millisecond), i, r.Max.Round(time.Millisecond)))
		}
	}
	return out
}

// TestKeysAndScanOnBigDataset: KEYS * on a dataset larger than
// --max-keys-reply (default 1,000,000) answers an error naming SCAN instead
// of building the reply; a selective KEYS pattern works; SCAN COUNT 10^9
// does at most 2^20 keys of work per call and hands back a cursor. Others
// are served meanwhile, on both I/O engines: the event loops (the default)
// hand a long command's connection off the loop, so it does not stall the
// other clients of its loop (head-of-line blocking) any more than
// goroutines do. The short form has 2^20+50,000 keys; HOSTILE_LONG 10M.
func TestKeysAndScanOnBigDataset(t *testing.T) {
	n := 1<<20 + 50_000
	if long() {
		n = 10_000_000
	}
	dir := bigDataset(t, n)
	// One engine after the other: Pebble locks the directory.
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			for _, b := range keysAndScan(t, dir, n, e.args...) {
				t.Error(b)
			}
		})
	}
}

// engines are the I/O engines the head-of-line tests run on.
var engines = []struct {
	name string
	args []string
}{
	{"epoll-io", []string{"--io", "epoll"}}, // the default on Linux
	{"goroutine-io", []string{"--io", "goroutine"}},
}

// keysAndScan runs the checks against a server on dir, and returns the
// latency violations of well-behaved clients (4 probes: on every event loop
// of up to 4 cores).
func keysAndScan(t *testing.T, dir string, n int, args ...string) (slow []string) {
	s := harness.StartServer(t, append([]string{"--dataset", dir}, args...)...)
	check := boundedN(t, s, 4, 512<<20)
	r, size, d := timed(t, s.Addr, "KEYS", "*")
	t.Logf("KEYS * on %d keys: %v in %v", n, r, d)
	if want := "ERR KEYS would return more than 1000000 keys (max-keys-reply); use SCAN"; !r.IsError() || string(r.Text()) != want {
		t.Errorf("KEYS * = %v (%d bytes), want -%s", r, size, want)
	}
	slow = append(slow, judge("KEYS *", d, check())...)

	check2 := bounded(t, s, maxLatency, 512<<20)
	r, _, d = timed(t, s.Addr, "KEYS", "k:1234*")
	t.Logf("KEYS k:1234* on %d keys: %d keys in %v", n, len(r.Elems), d)
	if r.Kind != '*' || len(r.Elems) < 111 {
		t.Errorf("KEYS k:1234* = %d elements (%c)", len(r.Elems), r.Kind)
	}
	check2()

	check = boundedN(t, s, 4, 512<<20)
	r, size, d = timed(t, s.Addr, "SCAN", "0", "COUNT", "1000000000")
	slow = append(slow, judge("SCAN 0 COUNT 10^9", d, check())...)
	if r.Kind != '*' || len(r.Elems) != 2 {
		t.Fatalf("SCAN = %v", r)
	}
	cursor, keys := string(r.Elems[0].Text()), len(r.Elems[1].Elems)
	t.Logf("SCAN 0 COUNT 10^9 on %d keys: %d keys, cursor %s, %d bytes in %v", n, keys, cursor, size, d)
	if keys > 1<<20 || keys < 1<<19 || cursor == "0" {
		t.Errorf("SCAN 0 COUNT 10^9: %d keys, cursor %s; want at most 2^20 and a cursor to continue", keys, cursor)
	}
	// The scan completes over calls.
	total := keys
	for cursor != "0" {
		r, _, _ = timed(t, s.Addr, "SCAN", cursor, "COUNT", strconv.Itoa(1_000_000_000))
		cursor = string(r.Elems[0].Text())
		total += len(r.Elems[1].Elems)
	}
	if total != n {
		t.Errorf("SCAN COUNT 10^9 to the end returned %d keys, want %d", total, n)
	}
	return slow
}

// TestBigHash: commands whose cost grows with a hash's size, which the event
// loops cannot know before running them — a pipeline of HGETs scanning a
// hash of 2^20 fields for a missing field, HGETALL of it — run off the loop
// once they took a few milliseconds (the loops' watchdog), so the other
// clients are served meanwhile, on both engines.
func TestBigHash(t *testing.T) {
	fields := 1 << 20
	h := store.AppendHashHeader(nil, fields)
	for i := range fields {
		h = store.AppendHashField(h, []byte("f:"+strconv.Itoa(i)), []byte("v:"+strconv.Itoa(i)))
	}
	dir := filepath.Join(t.TempDir(), "v1")
	es := []store.Entry{
		{Key: []byte("bighash"), Value: h},
		{Key: []byte(probeKey), Value: store.AppendString(nil, []byte(probeValue))},
	}
	if err := store.WriteVersion(context.Background(), dir, &store.Meta{Name: "hostile", Version: "v1"}, es); err != nil {
		t.Fatal(err)
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			s := harness.StartServer(t, append([]string{"--dataset", dir}, e.args...)...)
			c, err := redistest.Dial(s.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetTimeout(5 * time.Minute)
			// The reply is read raw: parsing its 2M elements here would stall
			// the probes of this process, not the server's.
			check := boundedN(t, s, 4, 512<<20)
			start := time.Now()
			raw, err := c.DoString("HGETALL", "bighash")
			d := time.Since(start)
			t.Logf("HGETALL of %d fields: %d bytes in %v", fields, len(raw), d)
			if want := "*" + strconv.Itoa(2*fields) + "\r\n$3\r\nf:0\r\n$3\r\nv:0\r\n"; err != nil || !strings.HasPrefix(string(raw), want) {
				t.Errorf("HGETALL bighash = %.40q..., %v; want %.40q...", raw, err, want)
			}
			// Only logged: on both engines the other clients wait for as much
			// as half of its run, in the store (their GET decompresses the
			// big value's block) and in the garbage collector (its stop the
			// world waits for the copies of the big value to end), not
			// behind the command.
			for _, b := range judge("HGETALL bighash", d, check()) {
				t.Log(b)
			}

			const n = 100
			check = boundedN(t, s, 4, 512<<20)
			var req []byte
			for range n {
				req = redistest.AppendCommand(req, []byte("HGET"), []byte("bighash"), []byte("nosuchfield"))
			}
			start = time.Now()
			if err := c.Send(req); err != nil {
				t.Fatal(err)
			}
			for i := range n {
				got, err := c.ReadReply()
				if err != nil || string(got) != "$-1\r\n" {
					t.Fatalf("HGET %d = %q, %v", i, got, err)
				}
			}
			d = time.Since(start)
			t.Logf("%d pipelined HGETs scanning %d fields: %v", n, fields, d)
			for _, b := range judge(fmt.Sprintf("%d pipelined HGETs of a missing field", n), d, check()) {
				t.Error(b)
			}
		})
	}
}
