package syncer

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/batchkv/batchkv/internal/manifest"
	"github.com/batchkv/batchkv/internal/objstore/file"
	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/redistest"
	"github.com/batchkv/batchkv/internal/release"
	"github.com/batchkv/batchkv/internal/store"
)

// holdEnv makes the test binary a child process that opens the version
// directory named by its value with store.Open (so Pebble takes its fcntl
// lock on db/LOCK), prints "ready", and holds it until stdin closes.
const holdEnv = "BATCHKV_SYNCER_TEST_HOLD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(holdEnv); dir != "" {
		db, err := store.Open(dir, nil)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		db.Close()
		os.Exit(0)
	}
	if root := os.Getenv(watchEnv); root != "" {
		os.Exit(serveWatcher(root))
	}
	code := m.Run()
	redistest.Cleanup()
	if bin, err := buildSyncer(); err == nil {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// holdOpen starts a child process holding the version in dir open, as the
// server would, and returns a function that makes it close and exit.
func holdOpen(t *testing.T, dir string) (release func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("holder child: %q %v", line, err)
	}
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("holder child: %v", err)
		}
	}
	t.Cleanup(release)
	return release
}

// published is one version laid out at the source by publishVersion.
type published struct {
	rel   *release.Release
	dir   string // <src>/versions/<v>
	build string // the built version directory
	keys  map[string]string
}

// publishVersion builds a real dataset version (keys string keys with
// random values of valueSize bytes) and publishes it under
// src/versions/<v>/ with the real publisher.
func publishVersion(t testing.TB, src, v string, keys, valueSize int) *published {
	t.Helper()
	build := filepath.Join(t.TempDir(), v)
	r := rand.New(rand.NewPCG(uint64(len(v)), uint64(keys)))
	kv := map[string]string{}
	var entries []store.Entry
	for i := range keys {
		val := make([]byte, valueSize)
		for j := range val {
			val[j] = byte(r.UintN(256))
		}
		k := fmt.Sprintf("%s-key-%06d", v, i)
		kv[k] = string(val)
		entries = append(entries, store.Entry{Key: []byte(k), Value: store.AppendString(nil, val)})
	}
	meta := &store.Meta{Name: "testds", Version: v, BuiltAt: time.Unix(1700000000, 0).UTC()}
	if err := store.WriteVersion(context.Background(), build, meta, entries); err != nil {
		t.Fatal(err)
	}
	res, err := publish.Publish(context.Background(), build, file.New(src), publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &published{rel: res.Release, dir: filepath.Join(src, "versions", v), build: build, keys: kv}
}

func writeRelease(t testing.TB, src string, rel *release.Release) {
	t.Helper()
	b, err := rel.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "versions", rel.Version, release.FileName), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func pin(t testing.TB, src, v string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(src, publish.PointerFile), []byte(`{"version":"`+v+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newTestSyncer returns a syncer from src (a directory) to a fresh root.
func newTestSyncer(t testing.TB, src, root string, mod func(*Options)) *Syncer {
	t.Helper()
	opts := Options{
		Source:       file.New(src),
		Root:         root,
		Concurrency:  4,
		PartSize:     MinPartSize,
		MinFreeBytes: -1,
		RetryBase:    time.Millisecond,
		RetryMax:     5 * time.Millisecond,
		Logger:       zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)),
	}
	if mod != nil {
		mod(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readManifest(t testing.TB, root string) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Read(root)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkInstalled opens the installed version as the server would and reads
// every key back.
func checkInstalled(t testing.TB, root string, p *published) {
	t.Helper()
	dir := manifest.VersionDir(root, p.rel.Version)
	if _, err := os.Stat(filepath.Join(dir, release.FileName)); err != nil {
		t.Fatalf("release file not installed: %v", err)
	}
	db, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for k, want := range p.keys {
		v, c, err := db.Get([]byte(k))
		if err != nil {
			t.Fatalf("Get(%q): %v", k, err)
		}
		if string(v.Data) != want {
			t.Fatalf("Get(%q): value differs", k)
		}
		c.Close()
	}
}

// versionsOnDisk lists <root>/versions.
func versionsOnDisk(t testing.TB, root string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(root, manifest.VersionsDir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
