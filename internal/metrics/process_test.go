package metrics_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/redistest"
	"github.com/batchkv/batchkv/internal/remote"
	"github.com/batchkv/batchkv/internal/store"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var binDir string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "batchkv-metrics-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binDir = dir
		return m.Run()
	}()
	os.Exit(code)
}

var buildOnce sync.Once
var buildErr error

// binaries builds batchkv-server and batchkv-syncer from this checkout, once.
func binaries(t *testing.T) (server, syncer string) {
	t.Helper()
	buildOnce.Do(func() {
		root, err := redistest.ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		for _, name := range []string{"server", "syncer"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, name), "./cmd/"+name)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", name, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "server"), filepath.Join(binDir, "syncer")
}

// daemon is a started binary whose JSON log lines are read as they come.
type daemon struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  strings.Builder
	msgs map[string]string // first "addr" logged with each msg
	done chan struct{}
	err  error
}

func start(t *testing.T, bin string, args ...string) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command(bin, args...), msgs: map[string]string{}, done: make(chan struct{})}
	// No BATCHKV_* variable of the environment running the tests leaks in.
	d.cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { // owned by d: ends when the process closes stderr
		defer close(d.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var line struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			json.Unmarshal(sc.Bytes(), &line) //nolint:errcheck // non-JSON lines are kept in the log only
			d.mu.Lock()
			d.log.Write(sc.Bytes())
			d.log.WriteByte('\n')
			if _, ok := d.msgs[line.Msg]; !ok && line.Addr != "" {
				d.msgs[line.Msg] = line.Addr
			}
			d.mu.Unlock()
		}
		d.err = d.cmd.Wait()
	}()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(20 * time.Second):
			d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", filepath.Base(bin), d.output())
		}
	})
	return d
}

func (d *daemon) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// addr waits for the address logged with msg.
func (d *daemon) addr(t *testing.T, msg string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		d.mu.Lock()
		a := d.msgs[msg]
		d.mu.Unlock()
		if a != "" {
			return a
		}
		select {
		case <-d.done:
			t.Fatalf("exited (%v) before logging %q", d.err, msg)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no %q log line", msg)
	return ""
}

var httpc = &http.Client{Timeout: 5 * time.Second}

// probe returns the status and body of GET http://addr/path.
func probe(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := httpc.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// waitReady polls /readyz until it answers 200.
func waitReady(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := probe(t, addr, "/readyz")
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz on %s still %d %q", addr, code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type families map[string]*dto.MetricFamily

func scrape(t *testing.T, addr string) families {
	t.Helper()
	resp, err := httpc.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return mf
}

// series returns the metric of family name whose labels include labels
// ("k=v" pairs), or nil.
func (f families) series(name string, labels ...string) *dto.Metric {
	fam := f[name]
	if fam == nil {
		return nil
	}
next:
	for _, m := range fam.GetMetric() {
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is the value of a counter or gauge, or a histogram's count; it
// fails the test when the series is absent.
func (f families) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	m := f.series(name, labels...)
	if m == nil {
		t.Fatalf("no series %s%v", name, labels)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	t.Fatalf("%s%v: unexpected type", name, labels)
	return 0
}

// redis sends raw RESP requests on a fresh connection and returns the replies.
func redis(t *testing.T, addr, req string, replies int) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	var sb strings.Builder
	for range replies {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reply to %q: %v (so far %q)", req, err, sb.String())
		}
		sb.WriteString(line)
		if line[0] == '$' && line != "$-1\r\n" {
			var n int
			fmt.Sscanf(line, "$%d", &n)
			buf := make([]byte, n+2)
			if _, err := io.ReadFull(r, buf); err != nil {
				t.Fatal(err)
			}
			sb.Write(buf)
		}
	}
	return sb.String()
}

func writeVersion(t *testing.T, version string, keys int, builtAt time.Time) string {
	t.Helper()
	var entries []store.Entry
	for i := range keys {
		entries = append(entries, store.Entry{Key: fmt.Appendf(nil, "k%d", i), Value: store.AppendString(nil, []byte(version))})
	}
	dir := filepath.Join(t.TempDir(), version)
	if err := store.WriteVersion(context.Background(), dir, &store.Meta{Name: "demo", Version: version, BuiltAt: builtAt}, entries); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDaemons runs the real server and syncer over a file:// source and
// checks that their health endpoints and metrics move with what they do:
// readiness before and after the first install, a GET, error replies, a
// swap, and the drain on SIGTERM.
func TestDaemons(t *testing.T) {
	serverBin, syncerBin := binaries(t)
	work := t.TempDir()
	source := "file://" + filepath.Join(work, "remote", "demo")
	root := filepath.Join(work, "volume")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dst, err := remote.Open(ctx, source, remote.Options{})
	if err != nil {
		t.Fatal(err)
	}

	const drain = 3 * time.Second
	srv := start(t, serverBin, "--addr", "127.0.0.1:0", "--root", root, "--poll-interval", "100ms",
		"--metrics-addr", "127.0.0.1:0", "--shutdown-drain", drain.String(), "--pprof")
	saddr, smet := srv.addr(t, "listening"), srv.addr(t, "metrics listening")
	syn := start(t, syncerBin, "--source", source, "--root", root, "--interval", "200ms", "--metrics-addr", "127.0.0.1:0")
	ymet := syn.addr(t, "metrics listening")

	// Before any version: alive, not ready, data commands refused.
	for _, addr := range []string{smet, ymet} {
		if code, _ := probe(t, addr, "/healthz"); code != http.StatusOK {
			t.Fatalf("%s /healthz: %d", addr, code)
		}
		if code, body := probe(t, addr, "/readyz"); code != http.StatusServiceUnavailable || body == "" || strings.Contains(body, "\n") {
			t.Fatalf("%s /readyz before the first version: %d %q", addr, code, body)
		}
	}
	if code, _ := probe(t, smet, "/debug/pprof/"); code != http.StatusOK {
		t.Fatalf("--pprof: /debug/pprof/ answers %d", code)
	}
	if code, _ := probe(t, ymet, "/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("without --pprof: /debug/pprof/ answers %d", code)
	}
	if got := redis(t, saddr, "GET k1\r\n", 1); !strings.HasPrefix(got, "-LOADING") {
		t.Fatalf("GET while loading: %q", got)
	}
	m := scrape(t, smet)
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "batchkv_connected_clients",
		"batchkv_rejected_connections_total", "batchkv_net_input_bytes_total", "batchkv_net_output_bytes_total",
		"batchkv_swaps_total", "batchkv_swap_failures_total", "batchkv_swap_duration_seconds", "batchkv_open_versions"} {
		m.value(t, name)
	}
	if m.value(t, "batchkv_errors_total", "kind=LOADING") != 1 {
		t.Errorf("errors_total{kind=LOADING} = %v, want 1", m.value(t, "batchkv_errors_total", "kind=LOADING"))
	}
	if m.series("batchkv_dataset_info") != nil || m.value(t, "batchkv_swaps_total") != 0 || m.value(t, "batchkv_open_versions") != 0 {
		t.Errorf("dataset series before the first version")
	}
	// The syncer failed its passes so far: the source is empty.
	ym := scrape(t, ymet)
	for _, kind := range []string{"source", "no_target", "release", "no_space", "download", "missing", "checksum", "metadata", "install", "gc"} {
		ym.value(t, "batchkv_syncer_failures_total", "kind="+kind)
	}
	if ym.value(t, "batchkv_syncer_installs_total") != 0 || ym.series("batchkv_syncer_live_version_info") != nil ||
		ym.series("batchkv_syncer_last_success_timestamp_seconds") != nil {
		t.Errorf("syncer reports an install before any")
	}

	// The first version.
	built1 := time.Now().Add(-time.Hour).Truncate(time.Second)
	if _, err := publish.Publish(ctx, writeVersion(t, "v1", 100, built1), dst, publish.Options{}); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ymet)
	waitReady(t, smet)
	m = scrape(t, smet)
	if got := m.value(t, "batchkv_dataset_info", "dataset=demo", "version=v1"); got != 1 {
		t.Errorf("dataset_info{v1} = %v", got)
	}
	if got := m.value(t, "batchkv_dataset_keys"); got != 100 {
		t.Errorf("dataset_keys = %v, want 100", got)
	}
	if age := m.value(t, "batchkv_dataset_version_age_seconds"); age < 3600 || age > 3600+60 {
		t.Errorf("dataset_version_age_seconds = %v, want about 3600", age)
	}
	if m.value(t, "batchkv_swaps_total") != 1 || m.value(t, "batchkv_swap_duration_seconds") != 1 ||
		m.value(t, "batchkv_warmup_duration_seconds") != 1 || m.value(t, "batchkv_open_versions") != 1 {
		t.Errorf("after the first install: swaps %v, swap durations %v, warmups %v, open versions %v",
			m.value(t, "batchkv_swaps_total"), m.value(t, "batchkv_swap_duration_seconds"),
			m.value(t, "batchkv_warmup_duration_seconds"), m.value(t, "batchkv_open_versions"))
	}
	ym = scrape(t, ymet)
	if ym.value(t, "batchkv_syncer_installs_total") != 1 || ym.value(t, "batchkv_syncer_versions_seen_total") < 1 ||
		ym.value(t, "batchkv_syncer_downloaded_bytes_total") <= 0 || ym.value(t, "batchkv_syncer_free_disk_bytes") <= 0 ||
		ym.value(t, "batchkv_syncer_live_version_info", "version=v1") != 1 ||
		ym.value(t, "batchkv_syncer_download_duration_seconds", "result=ok") < 1 {
		t.Errorf("syncer metrics after the first install: %v", ym)
	}
	if ts := ym.value(t, "batchkv_syncer_last_success_timestamp_seconds"); time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("last_success_timestamp_seconds = %v", ts)
	}

	// A GET counts one get with its latency; refused commands count by kind.
	before := scrape(t, smet)
	if got := redis(t, saddr, "GET k1\r\nSET k1 x\r\nNOSUCH\r\n", 3); !strings.HasPrefix(got, "$2\r\nv1\r\n-READONLY") || !strings.Contains(got, "\r\n-ERR unknown command") {
		t.Fatalf("replies %q", got)
	}
	// A protocol error: the reader refuses an unbalanced quote and closes.
	if got := redis(t, saddr, "GET \"k1\r\n", 1); !strings.HasPrefix(got, "-ERR Protocol error") {
		t.Fatalf("protocol error reply %q", got)
	}
	after := scrape(t, smet)
	// The GET read a block into the point-lookup cache.
	if after.value(t, "batchkv_block_cache_blocks") < 1 || after.value(t, "batchkv_block_cache_bytes") <= 0 ||
		after.value(t, "batchkv_block_cache_loads_total") < 1 || after.value(t, "batchkv_block_cache_budget_bytes") <= 0 {
		t.Errorf("block cache after a GET: blocks %v, bytes %v, loads %v, budget %v",
			after.value(t, "batchkv_block_cache_blocks"), after.value(t, "batchkv_block_cache_bytes"),
			after.value(t, "batchkv_block_cache_loads_total"), after.value(t, "batchkv_block_cache_budget_bytes"))
	}
	if got := redis(t, saddr, "INFO memory\r\n", 1); !strings.Contains(got, "\r\nbatchkv_block_cache_bytes:") || strings.Contains(got, "batchkv_block_cache_bytes:0\r\n") {
		t.Errorf("INFO memory without the block cache's bytes: %q", got)
	}
	deltas := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"batchkv_commands_total", []string{"command=get"}, 1},
		{"batchkv_command_duration_seconds", []string{"command=get"}, 1},
		{"batchkv_errors_total", []string{"kind=READONLY"}, 1},
		{"batchkv_errors_total", []string{"kind=ERR"}, 1},
		{"batchkv_errors_total", []string{"kind=protocol"}, 1},
	}
	for _, d := range deltas {
		var was float64
		if before.series(d.name, d.labels...) != nil {
			was = before.value(t, d.name, d.labels...)
		}
		if got := after.value(t, d.name, d.labels...) - was; got != d.want {
			t.Errorf("%s%v moved by %v, want %v", d.name, d.labels, got, d.want)
		}
	}
	if after.series("batchkv_commands_total", "command=set") != nil {
		t.Errorf("a refused SET counted as a command run")
	}
	if after.value(t, "batchkv_net_input_bytes_total") <= before.value(t, "batchkv_net_input_bytes_total") ||
		after.value(t, "batchkv_net_output_bytes_total") <= before.value(t, "batchkv_net_output_bytes_total") {
		t.Errorf("net bytes did not move")
	}

	// A second version: the server swaps to it.
	if _, err := publish.Publish(ctx, writeVersion(t, "v2", 50, time.Now()), dst, publish.Options{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		m = scrape(t, smet)
		if m.series("batchkv_dataset_info", "version=v2") != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dataset_info never named v2")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if m.series("batchkv_dataset_info", "version=v1") != nil || m.value(t, "batchkv_dataset_keys") != 50 ||
		m.value(t, "batchkv_swaps_total") != 2 || m.value(t, "batchkv_swap_duration_seconds") != 2 {
		t.Errorf("after the swap to v2: info %v, keys %v, swaps %v", m["batchkv_dataset_info"], m.value(t, "batchkv_dataset_keys"), m.value(t, "batchkv_swaps_total"))
	}
	if got := redis(t, saddr, "GET k1\r\n", 1); got != "$2\r\nv2\r\n" {
		t.Fatalf("GET after the swap: %q", got)
	}

	// SIGTERM: /readyz fails at once, clients are still served during the
	// drain, then the server exits cleanly.
	sig := time.Now()
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		code, body := probe(t, smet, "/readyz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "draining") {
			break
		}
		if time.Since(sig) > time.Second {
			t.Fatalf("/readyz %d %q a second after SIGTERM", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := redis(t, saddr, "GET k1\r\n", 1); got != "$2\r\nv2\r\n" {
		t.Fatalf("GET during the drain: %q", got)
	}
	if code, _ := probe(t, smet, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz during the drain: %d", code)
	}
	if time.Since(sig) >= drain {
		t.Fatalf("checks took longer than the drain")
	}
	select {
	case <-srv.done:
		t.Fatalf("exited %v after SIGTERM, before the %v drain", time.Since(sig), drain)
	case <-time.After(drain - time.Since(sig) - 500*time.Millisecond):
	}
	select {
	case <-srv.done:
		if srv.err != nil {
			t.Fatalf("exit: %v", srv.err)
		}
		t.Logf("exited %v after SIGTERM (drain %v)", time.Since(sig).Round(time.Millisecond), drain)
	case <-time.After(drain + 15*time.Second):
		t.Fatal("no exit after the drain")
	}
}
