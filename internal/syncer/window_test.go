package syncer

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/objstore/file"
	"github.com/batchkv/batchkv/internal/proc"
	"github.com/batchkv/batchkv/internal/redistest"
	"github.com/batchkv/batchkv/internal/slot"
)

// windowRunsEnv sets how many version changes TestMixedVersionWindow
// measures (default 1; the figure in docs/CLUSTER.md comes from more).
const windowRunsEnv = "BATCHKV_MIXED_WINDOW_RUNS"

// startRootServer runs batchkv-server --root root on a free port and waits
// until it answers PING (it does before a version is live).
func startRootServer(t *testing.T, root string) string {
	t.Helper()
	bin, err := redistest.ServerBinary()
	if err != nil {
		t.Fatal(err)
	}
	var last string
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		cmd := exec.Command(bin, "--addr", addr, "--root", root, "--metrics-addr", "127.0.0.1:0", "--shutdown-drain", "0",
			"--log-level", "warn")
		p, err := proc.Start("batchkv-server", cmd, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Stop(5 * time.Second) })
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if exited, _ := p.Exited(); exited {
				break
			}
			if c, err := redistest.Dial(addr); err == nil {
				c.SetTimeout(time.Second)
				r, err := c.DoString("PING")
				c.Close()
				if err == nil && string(r) == "+PONG\r\n" {
					return addr
				}
			}
		}
		last = p.Output()
		p.Stop(time.Second)
	}
	t.Fatalf("batchkv-server did not start:\n%s", last)
	return ""
}

// keyOfShard returns a key "k<j>" (j < keys) of shard i of n.
func keyOfShard(t *testing.T, i, n, keys int) string {
	r := slot.Split(n)[i]
	for j := range keys {
		k := fmt.Sprintf("k%d", j)
		if r.Contains(slot.Of([]byte(k))) {
			return k
		}
	}
	t.Fatalf("no key of shard %d", i)
	return ""
}

// TestMixedVersionWindow measures what clients see: 3 shards, each a real
// batchkv-server --root (standalone) fed by its own batchkv-syncer --shard
// i; shard 2's syncer is bandwidth-limited so that it finishes downloading
// seconds after the others. A poller per server GETs a key of its shard in
// a loop and records when it first reads the new version's value; the
// mixed-version window is the time between the first and the last server
// serving it. Without coordination the window would be the download skew
// (about 4-7 s here, checked above 2.5 s); the test fails above 2.5 s (a loose bound for a loaded
// machine; the SPEC's aim is 1 s, the figure is logged).
func TestMixedVersionWindow(t *testing.T) {
	t.Parallel() // mostly waiting: overlaps TestShardedCoordinatedActivation
	runs := 1
	if s := os.Getenv(windowRunsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q", windowRunsEnv, s)
		}
		runs = n
	}
	const n, keys, valueSize = 3, 2000, 1000
	src := t.TempDir()
	dst := file.New(src)
	publishShards(t, buildShardsSized(t, "v00", n, keys, valueSize), dst, 0, 1, 2)

	addrs := make([]string, n)
	syncers := make([]*shardSyncer, n)
	for i := range n {
		s := &shardSyncer{name: fmt.Sprintf("syncer-%d", i), shard: i, root: t.TempDir()}
		s.args = []string{"--source", "file://" + src, "--root", s.root, "--shard", strconv.Itoa(i), "--node-name", s.name,
			"--interval", "1s", "--ready-poll", "200ms", "--activate-delay", "3s", "--metrics-addr", ""}
		if i == n-1 {
			s.args = append(s.args, "--bandwidth", "96K") // ~0.7 MB: about 7 s behind the others
		}
		s.start(t)
		syncers[i] = s
		addrs[i] = startRootServer(t, s.root)
	}
	probe := make([]string, n)
	for i := range n {
		probe[i] = keyOfShard(t, i, n, keys)
	}
	var windows []time.Duration
	for run := range runs {
		v := fmt.Sprintf("v%02d", run)
		next := fmt.Sprintf("v%02d", run+1)
		// Every server serves v before the change.
		seen := pollFirst(t, addrs, probe, v, time.Now().Add(90*time.Second))
		for i, at := range seen {
			if at.IsZero() {
				t.Fatalf("server %d never served %s", i, v)
			}
		}
		b := buildShardsSized(t, next, n, keys, valueSize)
		start := time.Now()
		publishShards(t, b, dst, 0, 1, 2)
		first := pollFirst(t, addrs, probe, next, time.Now().Add(90*time.Second))
		lo, hi := first[0], first[0]
		for i, at := range first {
			if at.IsZero() {
				t.Fatalf("server %d never served %s", i, next)
			}
			if at.Before(lo) {
				lo = at
			}
			if at.After(hi) {
				hi = at
			}
		}
		w := hi.Sub(lo)
		windows = append(windows, w)
		// What an uncoordinated swap would have shown: the spread of the
		// install times.
		var installed []time.Time
		for _, s := range syncers {
			for _, l := range s.logs(t, "installed") {
				if l["version"] == next && l["msg"] == "installed" {
					ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(l["ts"]))
					if err != nil {
						t.Fatal(err)
					}
					installed = append(installed, ts)
				}
			}
		}
		if len(installed) != n {
			t.Fatalf("%s: %d install log lines, want %d", next, len(installed), n)
		}
		sort.Slice(installed, func(i, j int) bool { return installed[i].Before(installed[j]) })
		skew := installed[n-1].Sub(installed[0])
		var at []string
		var activateAt time.Time
		for _, s := range syncers {
			m := manifestOf(s.root)
			if m == nil || m.Version != next || m.ActivateAt == nil {
				t.Fatalf("%s: manifest %+v", s.name, m)
			}
			at = append(at, m.ActivateAt.Format(time.RFC3339Nano))
			activateAt = *m.ActivateAt
		}
		if at[0] != at[1] || at[1] != at[2] {
			t.Fatalf("%s: activate_at differs: %v", next, at)
		}
		t.Logf("%s: mixed-version window %s; install skew %s; servers first served it %s after the publish began, %s after activate_at, at %v from the first",
			next, w, skew.Round(time.Millisecond), lo.Sub(start).Round(time.Millisecond), lo.Sub(activateAt).Round(100*time.Microsecond), offsets(first, lo))
		if lo.Before(activateAt) {
			t.Errorf("%s: a server served it at %s, before activate_at %s", next, lo.Format(time.RFC3339Nano), at[0])
		}
		if skew < 2500*time.Millisecond {
			t.Fatalf("%s: the shards installed only %s apart: the test did not exercise the coordination", next, skew)
		}
		if w > 2500*time.Millisecond {
			t.Errorf("%s: mixed-version window %s", next, w)
		}
		if run+1 < runs {
			// Drop old builds from the source so that the disk stays small.
			os.RemoveAll(filepath.Join(src, "versions", v))
		}
	}
	sort.Slice(windows, func(i, j int) bool { return windows[i] < windows[j] })
	t.Logf("mixed-version window over %d changes: min %s median %s max %s", len(windows), windows[0],
		windows[len(windows)/2], windows[len(windows)-1])
}

func offsets(ts []time.Time, base time.Time) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Sub(base).Round(100 * time.Microsecond).String()
	}
	return out
}

// pollFirst GETs probe[i] from addrs[i] in a loop, one goroutine per
// server, and returns when each first replied with version v's value (zero
// if not before deadline). A server seen serving v that later serves
// anything else fails the test.
func pollFirst(t *testing.T, addrs, probe []string, v string, deadline time.Time) []time.Time {
	t.Helper()
	first := make([]time.Time, len(addrs))
	var wg sync.WaitGroup
	errs := make(chan error, len(addrs))
	for i := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := redistest.Dial(addrs[i])
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetTimeout(5 * time.Second)
			want := v + ":" + probe[i]
			var confirm int
			for time.Now().Before(deadline) {
				r, err := c.DoString("GET", probe[i])
				now := time.Now()
				if err != nil {
					errs <- fmt.Errorf("server %d: GET: %w", i, err)
					return
				}
				got := string(r)
				_, payload, _ := strings.Cut(got, "\r\n")
				hit := strings.HasPrefix(got, "$") && strings.HasPrefix(payload, want)
				switch {
				case hit && first[i].IsZero():
					first[i] = now
				case hit:
					// Keep reading a little: the new version must stay.
					if confirm++; confirm > 200 {
						return
					}
				case !first[i].IsZero():
					errs <- fmt.Errorf("server %d served %s, then %.40q", i, v, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return first
}
