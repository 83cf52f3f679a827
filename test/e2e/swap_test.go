package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/redistest"
	"github.com/batchkv/batchkv/internal/s3test"
)

const (
	// nClients is the number of load connections (kinds in turn: 5 of
	// each).
	nClients = 25
	// liveWithin is the SPEC's bound from install (manifest written) to
	// serving the new version.
	liveWithin = 2 * time.Second
	// steady is how long the load runs between steps with no swap.
	steady = 1500 * time.Millisecond
	// loadCap bounds the load whatever happens to the steps.
	loadCap = 60 * time.Second
	// stepTimeout bounds each wait for an install or a swap.
	stepTimeout = 20 * time.Second
)

// startSyncer runs batchkv-syncer following url on the real S3 server. The
// AWS_* variables s3test set (credentials, region, no config files) are
// passed to the child explicitly.
// startPod starts what a pod runs, on a fresh volume: the syncer following
// dataset on srv and, once it has installed the first version, the server,
// returning when the server serves it. The volume watcher closes at cleanup.
func startPod(t *testing.T, u *universe, srv *s3test.Server, dataset string, syncerArgs ...string) (root string, vw *volumeWatcher, syncer *child, s *server) {
	t.Helper()
	root = t.TempDir()
	vw = watchVolume(root)
	t.Cleanup(vw.close)
	syncer = startSyncer(t, srv, srv.URL(dataset), root, syncerArgs...)
	if _, ok := vw.waitInstall(1, versionNames[0], stepTimeout); !ok {
		t.Fatalf("v1 not installed within %v", stepTimeout)
	}
	s = startServer(t, root)
	probe := u.byName["s:7:0"] // in every version
	if _, err := waitValue(s.addr, probe.name, probe.str[0], stepTimeout); err != nil {
		t.Fatal(err)
	}
	return root, vw, syncer, s
}

func startSyncer(t *testing.T, srv *s3test.Server, url, root string, extra ...string) *child {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	args := []string{"--source", url, "--root", root, "--interval", "200ms", "--metrics-addr", "127.0.0.1:0",
		"--s3-endpoint", srv.Endpoint, "--s3-path-style", "--s3-region", s3test.Region}
	return startProc(t, "batchkv-syncer", binaries.syncer, env, append(args, extra...)...)
}

// waitValue polls GET key on addr until it answers want, or timeout. It
// speaks RESP on a plain connection, dialled again after any error, so that
// the time it reports is the server's: go-redis backs off for a second after
// a failed dial, which would blur start-up timings.
func waitValue(addr, key, want string, timeout time.Duration) (time.Time, error) {
	wantReply := fmt.Sprintf("$%d\r\n%s\r\n", len(want), want)
	deadline := time.Now().Add(timeout)
	var c *redistest.Conn
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	var last string
	for time.Now().Before(deadline) {
		var err error
		if c == nil {
			if c, err = redistest.Dial(addr); err != nil {
				c = nil
				last = err.Error()
				time.Sleep(2 * time.Millisecond)
				continue
			}
			c.SetTimeout(2 * time.Second)
		}
		got, err := c.DoString("GET", key)
		if err == nil && string(got) == wantReply {
			return time.Now(), nil
		}
		if err != nil {
			c.Close()
			c = nil
			last = err.Error()
		} else {
			last = redistest.Escape(got)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("GET %s: want %q within %v, last answer %s", key, want, timeout, last)
}

// waitInfoVersion polls INFO dataset until it names version.
func waitInfoVersion(addr, version string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	var last map[string]string
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		last, err = infoDataset(ctx, addr)
		cancel()
		if err == nil && last["version"] == version {
			return time.Now(), nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("INFO dataset: version %s not live within %v: %v %v", version, timeout, last, err)
}

// TestLiveSwapS3 is the end-to-end test of the live hot swap: v1 is
// published to a real S3 server, syncer and server run as separate
// processes, 24 go-redis clients (GET, HGETALL, pipelines of 50, MULTI
// blocks) run for the whole test while v2 and v3 are published and the
// dataset is pinned back to v2. No client may see an error or lose its
// connection, every reply must come from v1, v2 or v3 and every batch from
// exactly one, each version must serve within 2 s of its install, replaced
// versions are closed and garbage-collected, and INFO counts the swaps.
func TestLiveSwapS3(t *testing.T) {
	testStart := time.Now()
	u := newUniverse()
	var dirs [nVersions]string
	for v := range nVersions {
		dirs[v] = u.writeVersion(t, v)
	}
	srv := s3test.Start(t)
	const dataset = "e2e/ds"
	dst := srv.Store(t, dataset)
	publishVersion(t, dst, dirs[0])

	root, vw, syncer, s := startPod(t, u, srv, dataset)
	setup := time.Since(testStart)

	l, err := startLoad(s.addr, nClients, u, time.Now().Add(loadCap))
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	defer l.stopLoad() // on a t.Fatal below: clients stop before the servers do

	// The steps: each makes the syncer install a version; the test waits
	// for the manifest and for INFO to name it, then lets the load run.
	steps := []struct {
		name    string
		version int
		do      func() error
	}{
		{"publish v2", 1, func() error { publishVersion(t, dst, dirs[1]); return nil }},
		{"publish v3", 2, func() error { publishVersion(t, dst, dirs[2]); return nil }},
		{"pin v2", 1, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return publish.Pin(ctx, dst, versionNames[1])
		}},
	}
	time.Sleep(steady)
	installs := []install{{}} // phase 0 (v1) was installed before the load
	infoLive := []time.Time{{}}
	for i, st := range steps {
		began := time.Since(l.t0)
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		t.Logf("%s: from +%v to +%v", st.name, began.Round(time.Millisecond), time.Since(l.t0).Round(time.Millisecond))
		ins, ok := vw.waitInstall(i+2, versionNames[st.version], stepTimeout)
		if !ok {
			got, _ := vw.snapshot()
			t.Fatalf("%s: manifest did not name %s within %v (installs so far: %+v)", st.name, versionNames[st.version], stepTimeout, got)
		}
		live, err := waitInfoVersion(s.addr, versionNames[st.version], stepTimeout)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		installs = append(installs, ins)
		infoLive = append(infoLive, live)
		time.Sleep(steady)
	}
	l.stopLoad()
	loadDur := time.Since(l.t0)

	// The order in which versions go live: v1, v2, v3, then the pin back
	// to v2.
	phases := []int{0, 1, 2, 1}
	a, batches, byKind := checkClients(t, l, phases)
	for i, lc := range l.clients {
		if a.saw[i] != allVersions {
			t.Errorf("client %d (%s) got replies from %v only: every client must cross every swap", lc.n, lc.kind, a.saw[i])
		}
	}

	// Each version serves within liveWithin of its install.
	var windows [][2]time.Duration
	for q := 1; q < len(phases); q++ {
		at := installs[q].at
		if at.IsZero() {
			t.Errorf("phase %d: manifest has no installed_at", q)
			continue
		}
		windows = append(windows, [2]time.Duration{at.Sub(l.t0), at.Sub(l.t0) + time.Second})
		if a.firstSeen[q] < 0 {
			t.Errorf("phase %d (v%d): no client saw a reply attributed to it", q, phases[q]+1)
			continue
		}
		first := l.t0.Add(a.firstSeen[q])
		lat := first.Sub(at)
		t.Logf("phase %d (v%d %s): installed_at %s (test saw the manifest %v later); first client reply from it %v after install; INFO names it %v after install",
			q, phases[q]+1, versionNames[phases[q]], at.Format("15:04:05.000"), installs[q].seen.Sub(at).Round(time.Millisecond),
			lat.Round(time.Millisecond), infoLive[q].Sub(at).Round(time.Millisecond))
		if lat > liveWithin {
			t.Errorf("phase %d (v%d): served %v after its install, want within %v", q, phases[q]+1, lat, liveWithin)
		}
		if lat < -50*time.Millisecond { // a reply from a version before it was installed is impossible
			t.Errorf("phase %d (v%d): a reply from it %v before its install", q, phases[q]+1, -lat)
		}
	}
	for _, line := range s.logLines("version live") {
		t.Logf("server: version live %v (previous %v) in %v", line["version"], line["previous"], line["duration"])
	}

	// Latency: reported, not asserted (a shared 2-core machine).
	skip := 200 * time.Millisecond
	st, sw := latencies(l.clients, windows, false, skip), latencies(l.clients, windows, true, skip)
	for k := range nKinds {
		t.Logf("latency %-8s steady p50/p99/max %v / %v / %v   swap windows (install..+1s) %v / %v / %v",
			k, st[k][0], st[k][1], st[k][2], sw[k][0], sw[k][1], sw[k][2])
	}

	var worst sample
	var worstKind kind
	for _, lc := range l.clients {
		for _, x := range lc.samples {
			if x.end-x.start > worst.end-worst.start {
				worst, worstKind = x, lc.kind
			}
		}
	}
	t.Logf("slowest batch: %s sent at +%v took %v (installs at %v)", worstKind, worst.start.Round(time.Millisecond),
		(worst.end - worst.start).Round(time.Millisecond), installOffsets(installs, l.t0))

	// Old versions are closed, then garbage-collected: versions/ ends with
	// what --keep (2) allows, the live v2 and the previous v3.
	wantDirs := []string{versionNames[1], versionNames[2]}
	var gotDirs []string
	deadline := time.Now().Add(stepTimeout)
	for {
		gotDirs, err = installedVersions(root)
		if err == nil && slices.Equal(gotDirs, wantDirs) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !slices.Equal(gotDirs, wantDirs) {
		t.Errorf("versions/ holds %v (%v), want %v", gotDirs, err, wantDirs)
	}
	var closed []string
	for _, line := range s.logLines("replaced version closed") {
		closed = append(closed, fmt.Sprint(line["version"]))
	}
	if want := []string{versionNames[0], versionNames[1], versionNames[2]}; !slices.Equal(closed, want) {
		t.Errorf("server closed %v, want %v (v1 by v2, v2 by v3, v3 by the pin)", closed, want)
	}
	ins, problems := vw.snapshot()
	for _, p := range problems {
		t.Errorf("shared volume: %s", p)
	}
	if len(ins) != 4 {
		t.Errorf("manifest changes %+v, want exactly v1, v2, v3, v2", ins)
	}

	// INFO dataset shows the swaps.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := infoDataset(ctx, s.addr)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"dataset":          datasetName,
		"version":          versionNames[1],
		"swaps":            "3",
		"swap_failures":    "0",
		"previous_version": versionNames[2],
		"keys":             strconv.Itoa(u.count(1)),
	}
	for k, v := range want {
		if info[k] != v {
			t.Errorf("INFO dataset %s = %q, want %q (all: %v)", k, info[k], v, info)
		}
	}
	checkLogs(t, syncer, s.child)
	var scans int64
	for _, lc := range l.clients {
		scans += lc.scans
	}
	t.Logf("%d clients, %d batches in %v (get %d, hgetall %d, pipeline %d, multi %d, scan %d: %d full iterations); setup %v, total %v",
		len(l.clients), batches, loadDur.Round(time.Millisecond), byKind[kindGet], byKind[kindHGetAll], byKind[kindPipeline], byKind[kindMulti],
		byKind[kindScan], scans, setup.Round(time.Millisecond), time.Since(testStart).Round(time.Millisecond))
}

// count returns the number of keys of version v.
func (u *universe) count(v int) int {
	n := 0
	for _, k := range u.byName {
		if k.present&(1<<v) != 0 {
			n++
		}
	}
	return n
}

// checkClients asserts what must hold for every load client: no error, no
// reconnect, every batch explained by one version, and the versions seen in
// the order they went live (phases). It returns the analysis and the batch
// counts.
func checkClients(t *testing.T, l *load, phases []int) (a *analysis, batches int64, byKind [nKinds]int64) {
	t.Helper()
	for _, lc := range l.clients {
		batches += lc.batches
		byKind[lc.kind] += lc.batches
		if lc.errs > 0 {
			t.Errorf("client %d (%s): %d errors: %s", lc.n, lc.kind, lc.errs, strings.Join(lc.errTexts, " | "))
		}
		if lc.inconsistent > 0 {
			t.Errorf("client %d (%s): %d batches no single version explains: %s", lc.n, lc.kind, lc.inconsistent, strings.Join(lc.badTexts, " | "))
		}
		if lc.idAfter != lc.idBefore {
			t.Errorf("client %d (%s): CLIENT ID %d before, %d after: the connection was replaced", lc.n, lc.kind, lc.idBefore, lc.idAfter)
		}
		if ps := lc.c.PoolStats(); ps.TotalConns != 1 || ps.StaleConns != 0 {
			t.Errorf("client %d (%s): pool %+v: want exactly one connection, never stale", lc.n, lc.kind, *ps)
		}
		if lc.batches < 20 {
			t.Errorf("client %d (%s): only %d batches: the load did not run", lc.n, lc.kind, lc.batches)
		}
	}
	a = analyze(l.clients, phases)
	for _, v := range a.violations {
		t.Error(v)
	}
	if a.nViolation > len(a.violations) {
		t.Errorf("... %d swap-order violations in all", a.nViolation)
	}
	return a, batches, byKind
}

// checkLogs fails the test for every error-level log line of the processes.
func checkLogs(t *testing.T, procs ...*child) {
	t.Helper()
	for _, p := range procs {
		if exited, err := p.Exited(); exited {
			t.Errorf("%s exited during the test: %v", p.Name, err)
		}
		for _, line := range strings.Split(p.Output(), "\n") {
			if strings.Contains(line, `"level":"error"`) {
				t.Errorf("%s logged an error: %s", p.Name, line)
			}
		}
	}
}

func installOffsets(ins []install, t0 time.Time) []string {
	var out []string
	for _, in := range ins {
		if !in.at.IsZero() {
			out = append(out, "+"+in.at.Sub(t0).Round(time.Millisecond).String())
		}
	}
	return out
}
