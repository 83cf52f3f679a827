// Package faults damages the disk under a running pod (batchkv-syncer and
// batchkv-server on one shared volume, real processes): a disk that fills
// during a download, an sstable truncated and a version directory deleted
// under the server, an unreadable manifest. Each test says what the server
// and the syncer must do, and checks that no wrong value is ever served.
package faults

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/manifest"
	"github.com/batchkv/batchkv/internal/objstore/file"
	"github.com/batchkv/batchkv/internal/redistest"
	"github.com/batchkv/batchkv/internal/store"
	"github.com/batchkv/batchkv/test/hostile/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

const keys = 20000

// pod is a syncer and a server sharing root, following a file:// source.
type pod struct {
	t       *testing.T
	src     *file.Store
	srcDir  string
	root    string
	build   string
	syncer  *harness.Syncer
	server  *harness.Server
	syncArg []string
}

// newPod publishes version v1 (tag "a"), and starts the syncer and the
// server on root (a fresh temporary directory if root is "").
func newPod(t *testing.T, root string, syncerArgs ...string) *pod {
	t.Helper()
	return newPodServer(t, root, nil, syncerArgs...)
}

// newPodServer is newPod with extra batchkv-server flags.
func newPodServer(t *testing.T, root string, serverArgs []string, syncerArgs ...string) *pod {
	t.Helper()
	tmp := t.TempDir()
	p := &pod{t: t, srcDir: filepath.Join(tmp, "remote", "hostile"), build: filepath.Join(tmp, "build"), root: root, syncArg: syncerArgs}
	if p.root == "" {
		p.root = filepath.Join(tmp, "root")
	}
	os.MkdirAll(p.srcDir, 0o755)
	os.MkdirAll(p.root, 0o755)
	p.src = file.New(p.srcDir)
	harness.Publish(t, p.src, harness.WriteVersion(t, p.build, "v1", "a", keys))
	p.startSyncer()
	p.server = harness.StartServer(t, append([]string{"--root", p.root, "--poll-interval", "200ms"}, serverArgs...)...)
	if err := harness.WaitVersion(p.server.Addr, "v1", time.Minute); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *pod) startSyncer() {
	p.syncer = harness.StartSyncer(p.t, "file://"+p.srcDir, p.root, p.syncArg...)
}

func (p *pod) stopSyncer() { p.syncer.Stop(10 * time.Second) }

func (p *pod) versionDir(v string) string { return manifest.VersionDir(p.root, v) }

// readAll GETs every key once (pipelined) and returns how many answered
// the right value, how many an error reply, and fails the test on anything
// else (a wrong value, a hang, a dropped connection).
func readAll(t *testing.T, addr, tag string) (ok, errs int, firstErr string) {
	t.Helper()
	return read(t, addr, tag, false)
}

// readAllPrefix is readAll for values that carry padding after the tag and
// index (see writeSized).
func readAllPrefix(t *testing.T, addr, tag string) (ok, errs int, firstErr string) {
	t.Helper()
	return read(t, addr, tag, true)
}

func read(t *testing.T, addr, tag string, prefix bool) (ok, errs int, firstErr string) {
	t.Helper()
	c, err := redistest.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetTimeout(30 * time.Second)
	const batch = 500
	for lo := 0; lo < keys; lo += batch {
		var req []byte
		for i := lo; i < lo+batch; i++ {
			req = redistest.AppendCommand(req, []byte("GET"), []byte(harness.Key(i)))
		}
		if err := c.Send(req); err != nil {
			t.Fatal(err)
		}
		for i := lo; i < lo+batch; i++ {
			raw, err := c.ReadReply()
			if err != nil {
				t.Fatalf("GET %s: %v", harness.Key(i), err)
			}
			r := redistest.MustParse(raw)
			switch {
			case r.IsError():
				errs++
				if firstErr == "" {
					firstErr = string(r.Text())
				}
			case string(r.Text()) == harness.Value(tag, i),
				prefix && strings.HasPrefix(string(r.Text()), harness.Value(tag, i)+":"):
				ok++
			default:
				t.Fatalf("GET %s answered %s, want %s or an error", harness.Key(i), redistest.Escape(raw), harness.Value(tag, i))
			}
		}
	}
	return ok, errs, firstErr
}

// waitReady waits until /readyz answers ready (want true) or not, and
// returns its body.
func waitReady(t *testing.T, s *harness.Server, want bool, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, body, err := s.Ready()
		if err == nil && (code == 200) == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz %d %q (%v) after %v, want ready=%v", code, body, err, timeout, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTruncatedSSTable truncates the live version's sstable to half under
// the server, with the syncer stopped: reads of the lost half answer an
// error reply (never a wrong value), the server logs them, /readyz fails
// naming the damage. A syncer started again finds the damaged copy,
// reinstalls it, the server reopens it, and every key reads right.
//
// The server runs without a block cache: with one, blocks read before the
// truncation (this small version fits in a few) keep answering right from
// the cache whatever happens to the file.
func TestTruncatedSSTable(t *testing.T) {
	p := newPodServer(t, "", []string{"--cache-bytes", "0"})
	p.stopSyncer()
	ssts, _ := filepath.Glob(filepath.Join(p.versionDir("v1"), "*", "*.sst"))
	if len(ssts) == 0 {
		ssts, _ = filepath.Glob(filepath.Join(p.versionDir("v1"), "*.sst"))
	}
	if len(ssts) == 0 {
		t.Fatal("no sstable in the installed version")
	}
	for _, f := range ssts {
		fi, _ := os.Stat(f)
		if err := os.Truncate(f, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
	}
	body := waitReady(t, p.server, false, 10*time.Second)
	t.Logf("/readyz with a truncated sstable: %s", strings.TrimSpace(body))
	if !strings.Contains(body, "damaged") {
		t.Errorf("/readyz says %q, want it to name the damage", body)
	}
	ok, errs, first := readAll(t, p.server.Addr, "a")
	t.Logf("reads of the truncated version: %d right, %d error replies (first: %s)", ok, errs, first)
	if errs == 0 {
		t.Error("no read failed on a version truncated to half: the test damaged nothing")
	}
	if errs > 0 && len(p.server.Logs("storage read failed")) == 0 {
		t.Error("failed reads were not logged")
	}
	if len(p.server.Logs("live version damaged on disk: reads may fail; not ready until it is reinstalled")) != 1 {
		t.Error("the damage was not logged once")
	}

	p.startSyncer()
	waitReady(t, p.server, true, 30*time.Second)
	if len(p.syncer.Logs("installed version damaged on disk: reinstalling it")) == 0 {
		t.Error("the syncer did not log the repair")
	}
	if len(p.server.Logs("the live version was reinstalled: reopening it")) == 0 {
		t.Error("the server did not log the reopen")
	}
	if ok, errs, first := readAll(t, p.server.Addr, "a"); errs != 0 || ok != keys {
		t.Errorf("after the repair: %d right, %d errors (%s)", ok, errs, first)
	}
}

// TestVersionDirDeleted deletes the live version's directory under the
// server with the syncer stopped: reads keep answering right (Pebble holds
// the files open), /readyz fails; a syncer started again installs the
// version again and the server reopens it; a probe reading throughout sees
// no wrong value and at most the -LOADING of the reopen.
func TestVersionDirDeleted(t *testing.T) {
	p := newPod(t, "")
	p.stopSyncer()
	probe := harness.StartGetProbe(p.server.Addr, harness.Key(7), harness.Value("a", 7), 5*time.Millisecond)
	if err := os.RemoveAll(p.versionDir("v1")); err != nil {
		t.Fatal(err)
	}
	body := waitReady(t, p.server, false, 10*time.Second)
	t.Logf("/readyz with the version directory deleted: %s", strings.TrimSpace(body))
	if ok, errs, first := readAll(t, p.server.Addr, "a"); errs != 0 {
		t.Errorf("reads of the deleted version: %d right, %d errors (%s); the open files serve them", ok, errs, first)
	}
	p.startSyncer()
	waitReady(t, p.server, true, 30*time.Second)
	if _, err := os.Stat(filepath.Join(p.versionDir("v1"), "release.json")); err != nil {
		t.Errorf("not reinstalled: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	res := probe.Stop()
	t.Logf("probe throughout: %v", res)
	for _, e := range res.Errors {
		if !strings.Contains(e, "-LOADING") {
			t.Errorf("probe: %s", e)
		}
	}
	if ok, errs, first := readAll(t, p.server.Addr, "a"); errs != 0 || ok != keys {
		t.Errorf("after the reinstall: %d right, %d errors (%s)", ok, errs, first)
	}
}

// TestUnreadableManifest replaces the manifest with garbage, then with an
// oversized file, then with a directory (root reads any file whatever its
// mode, so a chmod would prove nothing here): the server keeps serving the
// live version, stays ready, logs and counts each failure; the syncer,
// started again, writes a good manifest back.
func TestUnreadableManifest(t *testing.T) {
	p := newPod(t, "")
	p.stopSyncer()
	probe := harness.StartGetProbe(p.server.Addr, harness.Key(7), harness.Value("a", 7), 5*time.Millisecond)
	mpath := filepath.Join(p.root, manifest.FileName)
	replace := func(write func(tmp string) error) {
		t.Helper()
		tmp := mpath + ".h5tmp"
		os.RemoveAll(tmp)
		if err := write(tmp); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(mpath)
		if err := os.Rename(tmp, mpath); err != nil {
			t.Fatal(err)
		}
	}
	failures := func() float64 {
		n, err := p.server.Metric("batchkv_swap_failures_total")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitFailures := func(want float64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for failures() < want {
			if time.Now().After(deadline) {
				t.Fatalf("batchkv_swap_failures_total %v, want %v", failures(), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	before := failures()
	replace(func(tmp string) error {
		return os.WriteFile(tmp, []byte("{\"format\":1,\"version\":\"../../etc\"}garbage"), 0o644)
	})
	waitFailures(before + 1)
	replace(func(tmp string) error { return os.WriteFile(tmp, make([]byte, 2<<20), 0o644) })
	waitFailures(before + 2)
	replace(func(tmp string) error { return os.Mkdir(tmp, 0o755) })
	waitFailures(before + 3)
	waitReady(t, p.server, true, time.Second)
	if l := p.server.Logs("version not swapped in; the live version keeps serving"); len(l) < 3 {
		t.Errorf("%d failures logged, want 3", len(l))
	} else {
		for _, m := range l {
			t.Logf("logged: %v", m["error"])
		}
	}
	// The syncer replaces a garbage manifest (a directory in its place is
	// not its to remove: put a garbage file back first).
	replace(func(tmp string) error { return os.WriteFile(tmp, []byte("garbage"), 0o644) })
	p.startSyncer()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m, err := manifest.Read(p.root); err == nil && m.Version == "v1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the syncer did not write a good manifest back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	res := probe.Stop()
	t.Logf("probe throughout: %v", res)
	if len(res.Errors) > 0 {
		t.Errorf("probe: %s", strings.Join(res.Errors, "; "))
	}
}

// writeSized writes a version of keys strings whose values carry pad bytes
// of incompressible padding, so that its files are about keys*pad bytes.
func writeSized(t *testing.T, parent, version, tag string, pad int) string {
	t.Helper()
	es := make([]store.Entry, keys)
	buf := make([]byte, pad/2)
	for i := range es {
		rand.Read(buf)
		v := harness.Value(tag, i) + ":" + hex.EncodeToString(buf)
		es[i] = store.Entry{Key: []byte(harness.Key(i)), Value: store.AppendString(nil, []byte(v))}
	}
	dir := filepath.Join(parent, version)
	if err := store.WriteVersion(context.Background(), dir, &store.Meta{Name: "hostile", Version: version}, es); err != nil {
		t.Fatal(err)
	}
	return dir
}

// fill writes a file into dir until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 256<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			return filler
		}
	}
}

// TestDiskFull runs the pod on a 48 MiB tmpfs and publishes v2 (about
// 11 MiB). First with the disk already full: the syncer refuses to start
// the download (a no_space failure, logged and counted), nothing of v2 is
// installed, the server keeps serving v1. Then with the space back, the
// disk is filled by another writer while v2 downloads (bandwidth-limited):
// the syncer reserved every file's space when the download began, so the
// download completes and is verified and installed, and the server swaps to
// it. Throughout, no wrong value is served and no request fails but for
// the probe's key changing value with the swap.
func TestDiskFull(t *testing.T) {
	mnt := t.TempDir()
	if out, err := runCmd("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mnt); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root and CAP_SYS_ADMIN): %v %s", err, out)
	}
	t.Cleanup(func() { runCmd("umount", "-l", mnt) })
	root := filepath.Join(mnt, "root")
	p := newPod(t, root, "--bandwidth", "4M", "--min-free-bytes", "1M")
	probe := harness.StartGetProbe(p.server.Addr, harness.Key(7), harness.Value("a", 7), 5*time.Millisecond)

	filler := fill(t, mnt)
	base, err := harness.MetricAt(p.syncer.Metrics, "batchkv_syncer_downloaded_bytes_total")
	if err != nil {
		t.Fatal(err)
	}
	harness.Publish(t, p.src, writeSized(t, p.build, "v2", "b", 1000))
	failed, err := waitLog(p.syncer, "sync failed", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("syncer with the disk full: %v: %v", failed[0]["kind"], failed[0]["error"])
	if failed[0]["kind"] != "no_space" {
		t.Errorf("failure kind %v, want no_space", failed[0]["kind"])
	}
	if n, err := harness.MetricAt(p.syncer.Metrics, `batchkv_syncer_failures_total{kind="no_space"}`); err != nil || n < 1 {
		t.Errorf(`batchkv_syncer_failures_total{kind="no_space"} = %v, %v`, n, err)
	}
	if _, err := os.Stat(p.versionDir("v2")); err == nil {
		t.Error("v2 was installed with the disk full")
	}
	if ok, errs, first := readAll(t, p.server.Addr, "a"); errs != 0 || ok != keys {
		t.Errorf("v1 with the disk full: %d right, %d errors (%s)", ok, errs, first)
	}

	// Space back; the disk fills again once v2's bytes are arriving.
	os.Remove(filler)
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := harness.MetricAt(p.syncer.Metrics, "batchkv_syncer_downloaded_bytes_total")
		if err == nil && n > base {
			t.Logf("%v bytes of v2 downloaded when the disk fills", n-base)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no download progress: %v, %v", n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fill(t, mnt)
	if err := harness.WaitVersion(p.server.Addr, "v2", 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if ok, errs, first := readAllPrefix(t, p.server.Addr, "b"); errs != 0 || ok != keys {
		t.Errorf("v2 installed on a full disk: %d right, %d errors (%s)", ok, errs, first)
	}
	res := probe.Stop()
	t.Logf("probe throughout: %v", res)
	for _, e := range res.Errors {
		// The probe's key changes value with the swap to v2.
		if !strings.Contains(e, harness.Value("b", 7)+":") {
			t.Errorf("probe: %s", e)
		}
	}
}

func waitLog(s *harness.Syncer, msg string, timeout time.Duration) ([]map[string]any, error) {
	deadline := time.Now().Add(timeout)
	for {
		if l := s.Logs(msg); len(l) > 0 {
			return l, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no syncer log %q in %v", msg, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tailOut(s string) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-30):], "\n")
}
