// Package soak swaps versions under steady load for a long time and checks
// that nothing leaks and no request fails: `make soak` runs it for
// SOAK_DURATION (default there: 30m); `make test` runs the short form
// (default 30s).
//
// The pod is real: batchkv-syncer follows a file:// source where four
// versions are published, the test pins them in turn (so the syncer
// downloads, installs and garbage-collects versions, and the server swaps),
// while load clients read with MGET and check every reply comes whole from
// one version.
package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/objstore/file"
	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/redistest"
	"github.com/batchkv/batchkv/test/hostile/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

const (
	keys    = 20000
	clients = 4
)

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// figures are the leak-relevant measurements of the server process.
type figures struct {
	fds, goroutines int
	rss             int64
}

func (f figures) String() string {
	return fmt.Sprintf("fds %d, goroutines %d, RSS %.1f MiB", f.fds, f.goroutines, float64(f.rss)/(1<<20))
}

func measure(t *testing.T, s *harness.Server) figures {
	t.Helper()
	var f figures
	var err error
	if f.fds, err = s.FDs(); err != nil {
		t.Fatal(err)
	}
	if f.goroutines, err = s.Goroutines(); err != nil {
		t.Fatal(err)
	}
	if f.rss, err = s.RSS(); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSoak(t *testing.T) {
	duration := envDuration(t, "SOAK_DURATION", 30*time.Second)
	every := envDuration(t, "SOAK_SWAP_EVERY", 3*time.Second)
	tmp := t.TempDir()
	remoteDir := filepath.Join(tmp, "remote", "hostile")
	if err := os.MkdirAll(remoteDir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := file.New(remoteDir)
	versions := []string{"20261122T000001Z", "20261122T000002Z", "20261122T000003Z", "20261122T000004Z"}
	for i, v := range versions {
		harness.Publish(t, src, harness.WriteVersion(t, filepath.Join(tmp, "build"), v, fmt.Sprintf("v%d", i), keys))
	}
	ctx := context.Background()
	pin := func(v string) {
		if err := publish.Pin(ctx, src, v); err != nil {
			t.Fatalf("pin %s: %v", v, err)
		}
	}
	pin(versions[0])
	root := filepath.Join(tmp, "root")
	os.MkdirAll(root, 0o755)
	syncer := harness.StartSyncer(t, "file://"+remoteDir, root, "--keep", "2")
	s := harness.StartServer(t, "--root", root, "--poll-interval", "500ms", "--cache-bytes", "67108864")
	if err := harness.WaitVersion(s.Addr, versions[0], time.Minute); err != nil {
		t.Fatal(err)
	}

	// Baseline: after a few seconds of load (connections, buffers, block
	// cache warm), with the load's connections closed again.
	warm := startLoad(s.Addr)
	time.Sleep(3 * time.Second)
	if w := warm.stop(); w.failed.Load() != 0 {
		t.Fatalf("warm-up: %d failed requests: %s", w.failed.Load(), w.firstErr())
	}
	time.Sleep(2 * time.Second)
	before := measure(t, s)
	t.Logf("soak: baseline %v", before)

	l := startLoad(s.Addr)
	start := time.Now()
	swaps := 0
	var maxSwap time.Duration
	for i := 1; time.Since(start) < duration; i++ {
		v := versions[i%len(versions)]
		t0 := time.Now()
		pin(v)
		if err := harness.WaitVersion(s.Addr, v, time.Minute); err != nil {
			l.stop()
			t.Fatalf("swap %d: %v", i, err)
		}
		swaps++
		maxSwap = max(maxSwap, time.Since(t0))
		if ex, _ := s.Exited(); ex {
			t.Fatal("server exited")
		}
		if ex, _ := syncer.Exited(); ex {
			t.Fatal("syncer exited")
		}
		time.Sleep(time.Until(t0.Add(every)))
	}
	elapsed := time.Since(start)
	// Every replaced version closes once its readers leave: as many
	// "replaced version closed" as versions made live after the first.
	// (Not batchkv_open_versions: see TestOpenVersionsMetric.)
	if err := waitClosed(s, 30*time.Second); err != nil {
		t.Error(err)
	}
	res := l.stop()
	time.Sleep(2 * time.Second)
	after := measure(t, s)
	failures, _ := s.Metric("batchkv_swap_failures_total")
	t.Logf("soak: %v of load, %d swaps (every %v, slowest pin-to-live %v), %d requests, %d failed, %d reconnects, swap failures %v",
		elapsed.Round(time.Second), swaps, every, maxSwap.Round(time.Millisecond), res.requests.Load(), res.failed.Load(), res.reconnects.Load(), failures)
	t.Logf("soak: before %v", before)
	t.Logf("soak: after  %v", after)

	if n := res.failed.Load(); n != 0 {
		t.Errorf("%d requests failed; first: %s", n, res.firstErr())
	}
	if res.requests.Load() == 0 || swaps < 2 {
		t.Errorf("%d requests, %d swaps: the soak did not run", res.requests.Load(), swaps)
	}
	if failures != 0 {
		t.Errorf("%v swap failures", failures)
	}
	// Bounds: a leak of one fd or goroutine per swap or connection would
	// pass them by hundreds; the slack is for the runtime's own (timers, the
	// GC's workers) and the metrics connection.
	if after.fds > before.fds+4 {
		t.Errorf("open fds %d after, %d before", after.fds, before.fds)
	}
	if after.goroutines > before.goroutines+5 {
		t.Errorf("goroutines %d after, %d before", after.goroutines, before.goroutines)
	}
	if after.rss > 2*before.rss+64<<20 {
		t.Errorf("RSS %d after, %d before", after.rss, before.rss)
	}
}

// waitClosed waits until every version replaced so far has closed.
func waitClosed(s *harness.Server, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		live, closed := len(s.Logs("version live")), len(s.Logs("replaced version closed"))
		if closed == live-1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d versions made live, %d replaced ones closed, %v later", live, closed, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestOpenVersionsMetric: after swaps with no reader holding the old
// versions, batchkv_open_versions is 1.
func TestOpenVersionsMetric(t *testing.T) {
	tmp := t.TempDir()
	remoteDir := filepath.Join(tmp, "remote", "hostile")
	os.MkdirAll(remoteDir, 0o755)
	src := file.New(remoteDir)
	versions := []string{"20261122T000001Z", "20261122T000002Z", "20261122T000003Z"}
	root := filepath.Join(tmp, "root")
	os.MkdirAll(root, 0o755)
	harness.StartSyncer(t, "file://"+remoteDir, root)
	s := harness.StartServer(t, "--root", root, "--poll-interval", "200ms")
	for i, v := range versions {
		harness.Publish(t, src, harness.WriteVersion(t, filepath.Join(tmp, "build"), v, fmt.Sprintf("v%d", i), 10))
		if err := harness.WaitVersion(s.Addr, v, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := waitClosed(s, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Metric("batchkv_open_versions"); err != nil || n != 1 {
		t.Errorf("batchkv_open_versions %v (%v) with every replaced version closed, want 1", n, err)
	}
}

// load runs clients that read MGETs of three random keys, checking each
// reply comes whole from one version. One client reconnects every 100
// requests, so connection set-up and tear-down are soaked too.
type load struct {
	stopc                        chan struct{}
	wg                           sync.WaitGroup
	requests, failed, reconnects atomic.Int64
	mu                           sync.Mutex
	errs                         []string
}

func startLoad(addr string) *load {
	l := &load{stopc: make(chan struct{})}
	for i := range clients {
		l.wg.Go(func() { l.client(addr, i == 0) })
	}
	return l
}

func (l *load) fail(format string, args ...any) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 10 {
		l.errs = append(l.errs, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
	}
	l.mu.Unlock()
}

func (l *load) firstErr() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.errs, "; ")
}

func (l *load) client(addr string, churn bool) {
	rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
	var c *redistest.Conn
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-l.stopc:
			return
		case <-tick.C:
		}
		if c != nil && churn && n%100 == 0 {
			c.Close()
			c = nil
			l.reconnects.Add(1)
		}
		if c == nil {
			var err error
			if c, err = redistest.Dial(addr); err != nil {
				c = nil
				l.fail("dial: %v", err)
				continue
			}
			c.SetTimeout(10 * time.Second)
		}
		idx := [3]int{rng.IntN(keys), rng.IntN(keys), rng.IntN(keys)}
		l.requests.Add(1)
		raw, err := c.DoString("MGET", harness.Key(idx[0]), harness.Key(idx[1]), harness.Key(idx[2]))
		if err != nil {
			l.fail("MGET: %v", err)
			c.Close()
			c = nil
			continue
		}
		r, err := redistest.Parse(raw)
		if err != nil || r.Kind != '*' || len(r.Elems) != 3 {
			l.fail("MGET answered %s", redistest.Escape(raw))
			continue
		}
		tag := ""
		for j, e := range r.Elems {
			t, i, ok := strings.Cut(string(e.Text()), ":")
			if !ok || i != fmt.Sprint(idx[j]) || (tag != "" && t != tag) {
				l.fail("MGET %v answered %s: not one version's values", idx, redistest.Escape(raw))
				break
			}
			tag = t
		}
	}
}

func (l *load) stop() *load {
	select {
	case <-l.stopc:
	default:
		close(l.stopc)
	}
	l.wg.Wait()
	return l
}
