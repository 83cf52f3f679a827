package e2e

import (
	"context"
	"net"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/manifest"
	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/s3test"
)

// restartWithin is how soon a restarted server must answer GETs from the
// manifest's version.
const restartWithin = time.Second

// TestCrashMidSwap SIGKILLs the server right as the syncer installs a new
// version (the manifest has just changed; the swap is under way or not yet
// started), restarts it on the same root, and requires it to answer GETs
// from the manifest's version within 1 s of its start. Three rounds: a new
// version (killed at once), another (killed 20 ms in), and a pin back
// (killed 5 ms in, no download involved: the swap itself takes 5-10 ms).
func TestCrashMidSwap(t *testing.T) {
	u := newUniverse()
	var dirs [nVersions]string
	for v := range nVersions {
		dirs[v] = u.writeVersion(t, v)
	}
	srv := s3test.Start(t)
	const dataset = "e2e/crash"
	dst := srv.Store(t, dataset)
	publishVersion(t, dst, dirs[0])
	root, vw, syncer, s := startPod(t, u, srv, dataset)
	probe := u.byName["s:7:0"] // in every version

	rounds := []struct {
		name    string
		version int
		delay   time.Duration // after the manifest change, before SIGKILL
		do      func() error
	}{
		{"publish v2", 1, 0, func() error { publishVersion(t, dst, dirs[1]); return nil }},
		{"publish v3", 2, 20 * time.Millisecond, func() error { publishVersion(t, dst, dirs[2]); return nil }},
		{"pin v2", 1, 5 * time.Millisecond, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return publish.Pin(ctx, dst, versionNames[1])
		}},
	}
	for i, r := range rounds {
		if err := r.do(); err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		if _, ok := vw.waitInstall(i+2, versionNames[r.version], stepTimeout); !ok {
			t.Fatalf("%s: manifest did not name %s within %v", r.name, versionNames[r.version], stepTimeout)
		}
		time.Sleep(r.delay)
		s.Kill()
		s = restartServer(t, root)
		ready, err := waitValue(s.addr, probe.name, probe.str[r.version], stepTimeout)
		if err != nil {
			t.Fatalf("%s: restarted server: %v", r.name, err)
		}
		took := ready.Sub(s.started)
		t.Logf("%s: killed %v after the manifest change; the restarted server answered v%d %v after its start",
			r.name, r.delay, r.version+1, took.Round(time.Millisecond))
		if took > restartWithin {
			t.Errorf("%s: restarted server served the manifest's version %v after its start, want within %v", r.name, took, restartWithin)
		}
		m, err := manifest.Read(root)
		if err != nil || m.Version != versionNames[r.version] {
			t.Fatalf("%s: manifest %+v %v", r.name, m, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		info, err := infoDataset(ctx, s.addr)
		cancel()
		if err != nil || info["version"] != m.Version || info["swap_failures"] != "0" {
			t.Errorf("%s: INFO dataset %v %v: want version %s, no failures", r.name, info, err, m.Version)
		}
	}
	// A killed server holds no lock: the syncer garbage-collects down to
	// --keep (live v2, previous v3).
	want := []string{versionNames[1], versionNames[2]}
	var got []string
	var err error
	for deadline := time.Now().Add(stepTimeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got, err = installedVersions(root); err == nil && slices.Equal(got, want) {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("versions/ holds %v (%v), want %v", got, err, want)
	}
	_, problems := vw.snapshot()
	for _, p := range problems {
		t.Errorf("shared volume: %s", p)
	}
	if exited, err := syncer.Exited(); exited {
		t.Errorf("syncer exited: %v", err)
	}
}

// restartServer starts batchkv-server on root without waiting for PING, so
// that the caller can time its start-up from the process's start. If the
// process exits at once (most likely the port was taken meanwhile) it tries
// another port.
func restartServer(t *testing.T, root string) *server {
	t.Helper()
	for attempt := 0; ; attempt++ {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		p := startProc(t, "batchkv-server (restarted)", binaries.server, os.Environ(), "--addr", addr, "--root", root, "--metrics-addr", "127.0.0.1:0", "--shutdown-drain", "0")
		select {
		case <-p.Done():
			if attempt < 2 {
				continue
			}
			_, err := p.Exited()
			t.Fatalf("restarted server exited: %v\n%s", err, p.Output())
		case <-time.After(20 * time.Millisecond):
		}
		return &server{child: p, addr: addr}
	}
}
