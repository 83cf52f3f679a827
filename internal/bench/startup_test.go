package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/build"
	"github.com/batchkv/batchkv/internal/gen"
	"github.com/batchkv/batchkv/internal/objstore/file"
	"github.com/batchkv/batchkv/internal/publish"
)

func TestMedianOfAndAfterInstall(t *testing.T) {
	if medianOf(nil) != 0 || medianOf([]time.Duration{3, 1, 2}) != 2 || medianOf([]time.Duration{4, 1, 3, 2}) != 2 {
		t.Fatal("medianOf")
	}
	if (Startup{Ready: 5 * time.Second, Installed: 3 * time.Second}).AfterInstall() != 2*time.Second {
		t.Fatal("AfterInstall")
	}
	k, v := StringRecord(0)
	if len(k) != KeyLen || v == "" {
		t.Fatalf("StringRecord: %q %q", k, v)
	}
}

// smallVersion builds a version of n generated keys and publishes it to a
// file:// source; it returns the source directory.
func smallVersion(t *testing.T, n int64, v string) string {
	t.Helper()
	work := t.TempDir()
	ctx := context.Background()
	if _, err := gen.Generate(ctx, gen.Options{Dir: filepath.Join(work, "in"), Keys: n}); err != nil {
		t.Fatal(err)
	}
	if _, err := build.Build(ctx, build.Options{Inputs: []string{filepath.Join(work, "in")}, Out: filepath.Join(work, v), Name: "bench", Version: v}); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(work, "src")
	if _, err := publish.Publish(ctx, filepath.Join(work, v), file.New(src), publish.Options{}); err != nil {
		t.Fatal(err)
	}
	return src
}

// TestStartPod runs the real binaries: a new pod (syncer and server started
// together on an empty volume) is measured as installed, then serving; a
// restart on the installed volume is measured as serving with no install;
// a wrong expected value is never taken for serving.
func TestStartPod(t *testing.T) {
	bin := t.TempDir()
	for _, c := range []string{"server", "syncer"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, c), "github.com/batchkv/batchkv/cmd/"+c)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", c, err, out)
		}
	}
	src := smallVersion(t, 2000, "20261122T000001Z")
	root := t.TempDir()
	key, want := StringRecord(0)
	srvArgs := []string{"--metrics-addr", "", "--log-level", "warn"}
	syncArgs := []string{filepath.Join(bin, "syncer"), "--source", "file://" + src, "--root", root, "--interval", "1s",
		"--metrics-addr", "", "--log-level", "warn", "--min-free-bytes", "0"}
	ctx := context.Background()
	st, stop, err := StartPod(ctx, filepath.Join(bin, "server"), srvArgs, syncArgs, root, key, want, time.Minute)
	stop()
	if err != nil {
		t.Fatal(err)
	}
	if st.Installed <= 0 || st.Ready < st.Installed || st.AfterInstall() != st.Ready-st.Installed {
		t.Fatalf("new pod: %+v", st)
	}
	st2, stop, err := StartPod(ctx, filepath.Join(bin, "server"), srvArgs, nil, root, key, want, time.Minute)
	stop()
	if err != nil {
		t.Fatal(err)
	}
	if st2.Installed != 0 || st2.Ready <= 0 {
		t.Fatalf("restart: %+v", st2)
	}
	t.Logf("new pod %+v; restart %+v", st, st2)
	_, stop, err = StartPod(ctx, filepath.Join(bin, "server"), srvArgs, nil, root, key, want+"x", 300*time.Millisecond)
	stop()
	if err == nil {
		t.Fatal("a wrong value was taken for serving")
	}
}
