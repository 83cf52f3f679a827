package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/batchkv/batchkv/internal/manifest"
	"github.com/batchkv/batchkv/internal/redistest"
	"github.com/batchkv/batchkv/internal/s3test"
)

// TestEmptyRootThenShutdown starts the server on an empty shared volume, or
// on one not created yet (the syncer comes later, as in a pod whose
// containers start in any order): it answers LOADING, then serves the first
// version within 2 s of its install; with clients connected and under load
// it exits promptly on SIGTERM.
func TestEmptyRootThenShutdown(t *testing.T) {
	for _, missing := range []bool{false, true} {
		name := "empty"
		if missing {
			name = "missing"
		}
		t.Run(name, func(t *testing.T) { emptyRootThenShutdown(t, missing) })
	}
}

func emptyRootThenShutdown(t *testing.T, missing bool) {
	u := newUniverse()
	srv := s3test.Start(t)
	const dataset = "e2e/empty"
	dst := srv.Store(t, dataset)
	publishVersion(t, dst, u.writeVersion(t, 0))
	root := t.TempDir()
	if missing {
		root = filepath.Join(root, "not", "yet")
	}
	s := startServer(t, root)
	c, err := redistest.Dial(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTimeout(5 * time.Second)
	got, err := c.DoString("GET", "s:7:0")
	c.Close()
	if err != nil || !strings.HasPrefix(string(got), "-LOADING ") {
		t.Fatalf("GET before any install: %q %v, want -LOADING", got, err)
	}
	vw := watchVolume(root)
	defer vw.close()
	startSyncer(t, srv, srv.URL(dataset), root)
	ins, ok := vw.waitInstall(1, versionNames[0], stepTimeout)
	if !ok {
		t.Fatalf("v1 not installed within %v", stepTimeout)
	}
	probe := u.byName["s:7:0"]
	ready, err := waitValue(s.addr, probe.name, probe.str[0], stepTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first version served %v after its install", ready.Sub(ins.at).Round(time.Millisecond))
	if d := ready.Sub(ins.at); d > liveWithin {
		t.Errorf("first version served %v after its install, want within %v", d, liveWithin)
	}
	if m, err := manifest.Read(root); err != nil || m.Version != versionNames[0] {
		t.Fatalf("manifest %+v %v", m, err)
	}
	// The next version too (on a root created after the server started,
	// the watch on it must have been set up since).
	publishVersion(t, dst, u.writeVersion(t, 1))
	if ins, ok = vw.waitInstall(2, versionNames[1], stepTimeout); !ok {
		t.Fatalf("v2 not installed within %v", stepTimeout)
	}
	if ready, err = waitValue(s.addr, probe.name, probe.str[1], stepTimeout); err != nil {
		t.Fatal(err)
	}
	t.Logf("second version served %v after its install", ready.Sub(ins.at).Round(time.Millisecond))
	if d := ready.Sub(ins.at); d > liveWithin {
		t.Errorf("second version served %v after its install, want within %v", d, liveWithin)
	}

	l, err := startLoad(s.addr, nClients, u, time.Now().Add(loadCap))
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	time.Sleep(300 * time.Millisecond)
	// Once the server is gone the clients' pools redial and go-redis logs
	// each failure: expected here, so not printed.
	redis.SetLogger(discardLogger{})
	defer redis.SetLogger(stderrLogger{})
	start := time.Now()
	if err := s.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(15 * time.Second):
		t.Fatalf("server still running 15 s after SIGTERM")
	}
	took := time.Since(start)
	// The clients now fail (the server is gone): stop them and their pools'
	// redials.
	close(l.stop)
	l.wg.Wait()
	l.close()
	_, exitErr := s.Exited()
	t.Logf("server exited %v after SIGTERM with %d busy clients (exit: %v)", took.Round(time.Millisecond), nClients, exitErr)
	if took > 2*time.Second {
		t.Errorf("server took %v to exit on SIGTERM with busy clients, want a prompt exit", took)
	}
}

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

// stderrLogger prints as go-redis's default logger does.
type stderrLogger struct{}

func (stderrLogger) Printf(_ context.Context, format string, v ...any) {
	fmt.Fprintf(os.Stderr, "redis: "+format+"\n", v...)
}
