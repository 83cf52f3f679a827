package cluster

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/proc"
	"github.com/batchkv/batchkv/internal/redistest"
	"github.com/batchkv/batchkv/internal/slot"
	"github.com/redis/go-redis/v9"
)

// SwapRunsEnv sets how many version changes TestClusterSwapUnderLoad
// publishes (default 1; the long form: BATCHKV_CLUSTER_SWAP_RUNS=5).
const SwapRunsEnv = "BATCHKV_CLUSTER_SWAP_RUNS"

// syncerBinary is $BATCHKV_TEST_SYNCER_BIN or ./cmd/syncer built once.
func syncerBinary(t testing.TB) string {
	t.Helper()
	bin, err := redistest.Binary("syncer")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// versionData is n keys key:<i> = <version>:<i>:<256 hex>.
func versionData(version string, n int) []entry {
	out := make([]entry, n)
	for i := range out {
		// Incompressible padding, so that a bandwidth limit takes effect.
		pad := sha512.Sum512([]byte(version + strconv.Itoa(i)))
		pad2 := sha512.Sum512(pad[:])
		out[i] = entry{key: "key:" + strconv.Itoa(i), str: version + ":" + strconv.Itoa(i) + ":" + hex.EncodeToString(pad[:]) + hex.EncodeToString(pad2[:])}
	}
	return out
}

// publish builds version v of n keys with --shards 3 and publishes it with
// `batchkv publish` to the file:// source.
func publish(t *testing.T, src, v string, n int) {
	t.Helper()
	build := buildSharded(t, versionData(v, n), 3, v)
	cmd := exec.Command(batchkvBinary(t), "publish", "--quiet", build, "file://"+src)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("batchkv publish %s: %v\n%s", v, err, out)
	}
}

// TestClusterSwapUnderLoad: 3 shards × 2 replicas of batchkv-server with
// --root, each fed by its own batchkv-syncer (--shard i) from a file://
// source; go-redis ClusterClients (masters, and RouteRandomly over
// replicas) read all the time while new sharded versions are published.
// The syncers coordinate the activation (ready markers, one activate_at);
// the test requires zero client errors, only values of the old or the new
// version, no server going back to the old version, and measures the
// mixed-version window: from the first server serving the new version to
// the last (probed on every server), and as the clients saw it.
func TestClusterSwapUnderLoad(t *testing.T) {
	t.Parallel() // mostly waiting on processes: overlaps the other cluster test
	runs := 1
	if s := os.Getenv(SwapRunsEnv); s != "" {
		var err error
		if runs, err = strconv.Atoi(s); err != nil || runs < 1 {
			t.Fatalf("%s=%q", SwapRunsEnv, s)
		}
	}
	const keys = 3000
	syncer := syncerBinary(t)
	src := filepath.Join(t.TempDir(), "ds")
	publish(t, src, "v00", keys)

	var syncers []*proc.Process
	bk := startCluster(t, 3, 2, func(i, r int) []string {
		root := t.TempDir()
		name := fmt.Sprintf("syncer-%d-%d", i, r)
		args := []string{"--source", "file://" + src, "--root", root, "--shard", strconv.Itoa(i), "--node-name", name,
			"--interval", "1s", "--ready-poll", "200ms", "--activate-delay", "3s", "--ready-replicas", "1",
			"--metrics-addr", ""}
		if i == 2 {
			// Shard 2's syncers download slowly (~300 KB at 16 KB/s after
			// the limiter's 256 KiB burst): its servers would swap seconds
			// after the others without the coordination.
			args = append(args, "--bandwidth", "64K")
		}
		p, err := proc.Start(name, exec.Command(syncer, args...), 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			p.Stop(5 * time.Second)
			if t.Failed() {
				t.Logf("--- %s output ---\n%s", name, p.Output())
			}
		})
		syncers = append(syncers, p)
		return []string{"--root", root, "--poll-interval", "200ms"}
	})
	// A probe key per shard, read on each of its servers directly.
	probes := make([]string, 3)
	for i := range 3 {
		for j := range keys {
			if k := "key:" + strconv.Itoa(j); slot.Split(3)[i].Contains(slot.Of([]byte(k))) {
				probes[i] = k
				break
			}
		}
	}
	waitAll(t, bk, probes, "v00", 90*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ld := startLoad(ctx, t, bk, keys)
	var windows, clientWindows []time.Duration
	for run := 1; run <= runs; run++ {
		v := fmt.Sprintf("v%02d", run)
		pollers := pollNodes(t, bk, probes, v, 120*time.Second)
		publish(t, src, v, keys)
		first := pollers.wait(t)
		lo, hi := first[0], first[0]
		for _, at := range first {
			lo, hi = minTime(lo, at), maxTime(hi, at)
		}
		// Let the load read the new version for a moment.
		time.Sleep(500 * time.Millisecond)
		cw := ld.window(v)
		skew := installSkew(t, syncers, v)
		windows, clientWindows = append(windows, hi.Sub(lo)), append(clientWindows, cw)
		t.Logf("%s: mixed-version window %v over the 6 servers (first served at %v from the first); as the clients saw it %v; syncers installed it %v apart; %d reads so far, 0 errors required",
			v, hi.Sub(lo), offsetsFrom(first, lo), cw, skew, ld.reads.Load())
		// Installs far enough apart that uncoordinated swaps would show a
		// window of that size (shard 2's bandwidth limit makes ~1-3 s).
		if skew < 500*time.Millisecond {
			t.Errorf("%s: the syncers installed within %v of each other: the test did not exercise the coordinated activation", v, skew)
		}
		if hi.Sub(lo) > 2500*time.Millisecond {
			t.Errorf("%s: mixed-version window %v > 2.5 s", v, hi.Sub(lo))
		}
	}
	cancel()
	ld.wg.Wait()
	if n := ld.errors.Load(); n != 0 {
		t.Errorf("%d client errors during the swaps; first: %v", n, ld.firstErr.Load())
	}
	if n := ld.bad.Load(); n != 0 {
		t.Errorf("%d reads returned a value of neither version; first: %v", n, ld.firstBad.Load())
	}
	if ld.reads.Load() < 1000 {
		t.Errorf("only %d reads: the load did not run", ld.reads.Load())
	}
	slices.Sort(windows)
	slices.Sort(clientWindows)
	t.Logf("mixed-version window over %d swaps: servers min %v median %v max %v; clients median %v; %d reads, %d errors",
		runs, windows[0], windows[len(windows)/2], windows[len(windows)-1], clientWindows[len(clientWindows)/2],
		ld.reads.Load(), ld.errors.Load())
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func offsetsFrom(ts []time.Time, base time.Time) []string {
	var out []string
	for _, x := range ts {
		out = append(out, x.Sub(base).Round(100*time.Microsecond).String())
	}
	return out
}

// waitAll waits until every node serves version v.
func waitAll(t *testing.T, bk *bkCluster, probes []string, v string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, n := range bk.nodes {
		for {
			got := string(do(t, n.addr, "GET", probes[n.shard]))
			if strings.Contains(got, v+":") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s (shard %d) does not serve %s: GET %s = %q", n.addr, n.shard, v, probes[n.shard], got)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// pollers read each node's probe key in a loop and record when it first
// served version v; after that any other value fails the test.
type pollers struct {
	wg    sync.WaitGroup
	first []time.Time
	errs  chan error
}

func pollNodes(t *testing.T, bk *bkCluster, probes []string, v string, timeout time.Duration) *pollers {
	p := &pollers{first: make([]time.Time, len(bk.nodes)), errs: make(chan error, len(bk.nodes))}
	deadline := time.Now().Add(timeout)
	for i, n := range bk.nodes {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			c, err := redistest.Dial(n.addr)
			if err != nil {
				p.errs <- err
				return
			}
			defer c.Close()
			c.SetTimeout(5 * time.Second)
			want := v + ":"
			confirm := 0
			for time.Now().Before(deadline) {
				r, err := c.DoString("GET", probes[n.shard])
				now := time.Now()
				if err != nil {
					p.errs <- fmt.Errorf("%s: GET: %w", n.addr, err)
					return
				}
				hit := strings.Contains(string(r), want)
				switch {
				case hit && p.first[i].IsZero():
					p.first[i] = now
				case hit:
					if confirm++; confirm > 100 {
						return
					}
				case !p.first[i].IsZero():
					p.errs <- fmt.Errorf("%s served %s, then %q", n.addr, v, r)
					return
				}
			}
			p.errs <- fmt.Errorf("%s (shard %d) did not serve %s within %v", n.addr, n.shard, v, timeout)
		}()
	}
	return p
}

func (p *pollers) wait(t *testing.T) []time.Time {
	t.Helper()
	p.wg.Wait()
	close(p.errs)
	for err := range p.errs {
		t.Fatal(err)
	}
	return p.first
}

// load is go-redis ClusterClient readers: half send to masters, half
// (RouteRandomly) to any node of the key's shard; each read is checked and
// its version and time recorded.
type load struct {
	wg                sync.WaitGroup
	reads, errors     atomic.Int64
	bad               atomic.Int64
	firstErr          atomic.Value
	firstBad          atomic.Value
	mu                sync.Mutex
	firstNew, lastOld map[string]time.Time // by version: first read of it / last read of the one before
}

const loadReaders = 8

func startLoad(ctx context.Context, t *testing.T, bk *bkCluster, keys int) *load {
	ld := &load{firstNew: map[string]time.Time{}, lastOld: map[string]time.Time{}}
	// Bounded in time by ctx (the test's end) and in requests.
	const maxReads = 50_000_000
	for g := range loadReaders {
		rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: bk.seeds(), RouteRandomly: g%2 == 1,
			ReadTimeout: 5 * time.Second, MaxRetries: 0})
		ld.wg.Add(1)
		go func() {
			defer ld.wg.Done()
			defer rdb.Close()
			r := rand.New(rand.NewPCG(uint64(g), 42))
			for ctx.Err() == nil && ld.reads.Load() < maxReads {
				// A pipeline of 50 GETs over all shards.
				pipe := rdb.Pipeline()
				cmds := make([]*redis.StringCmd, 50)
				ks := make([]int, 50)
				for i := range cmds {
					ks[i] = r.IntN(keys)
					cmds[i] = pipe.Get(ctx, "key:"+strconv.Itoa(ks[i]))
				}
				_, err := pipe.Exec(ctx)
				now := time.Now()
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					ld.errors.Add(1)
					ld.firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ld.reads.Add(int64(len(cmds)))
				for i, c := range cmds {
					parts := strings.SplitN(c.Val(), ":", 3)
					if len(parts) != 3 || parts[1] != strconv.Itoa(ks[i]) || !strings.HasPrefix(parts[0], "v") {
						ld.bad.Add(1)
						ld.firstBad.CompareAndSwap(nil, fmt.Sprintf("key:%d = %q", ks[i], c.Val()))
						continue
					}
					ld.record(parts[0], now)
				}
			}
		}()
	}
	return ld
}

// record notes a read of version ver at time at: the first read of each
// version, and the last read of every version.
func (ld *load) record(ver string, at time.Time) {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	if f, ok := ld.firstNew[ver]; !ok || at.Before(f) {
		ld.firstNew[ver] = at
	}
	if l := ld.lastOld[ver]; at.After(l) {
		ld.lastOld[ver] = at
	}
}

// window is how long the clients read both the version before v and v:
// from their first read of v to their last read of the one before (0 if
// they never overlapped).
func (ld *load) window(v string) time.Duration {
	n, _ := strconv.Atoi(strings.TrimPrefix(v, "v"))
	prev := fmt.Sprintf("v%02d", n-1)
	ld.mu.Lock()
	defer ld.mu.Unlock()
	first, lastPrev := ld.firstNew[v], ld.lastOld[prev]
	if first.IsZero() || lastPrev.Before(first) {
		return 0
	}
	return lastPrev.Sub(first)
}

// installSkew is the time between the first and the last syncer logging
// "installed" for version v (JSON log lines).
func installSkew(t *testing.T, syncers []*proc.Process, v string) time.Duration {
	t.Helper()
	var ts []time.Time
	for _, p := range syncers {
		for _, line := range strings.Split(p.Output(), "\n") {
			var l struct {
				TS      string `json:"ts"`
				Msg     string `json:"msg"`
				Version string `json:"version"`
			}
			if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "installed" || l.Version != v {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, l.TS)
			if err != nil {
				t.Fatalf("%s: log time %q: %v", p.Name, l.TS, err)
			}
			ts = append(ts, at)
		}
	}
	if len(ts) != len(syncers) {
		t.Fatalf("%s: %d syncers logged installing it, want %d", v, len(ts), len(syncers))
	}
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	return ts[len(ts)-1].Sub(ts[0])
}
