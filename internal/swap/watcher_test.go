package swap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/manifest"
	"github.com/batchkv/batchkv/internal/release"
	"github.com/batchkv/batchkv/internal/store"
)

// installVersion does what the syncer does, by hand: a complete version
// directory with its release file, under root/versions/name.
func installVersion(t *testing.T, root, name, value string) {
	t.Helper()
	dir := manifest.VersionDir(root, name)
	entries := []store.Entry{
		{Key: []byte("k"), Value: store.AppendString(nil, []byte(value))},
		{Key: []byte("version"), Value: store.AppendString(nil, []byte(name))},
	}
	meta := &store.Meta{Name: "ds", Version: name}
	if err := store.WriteVersion(context.Background(), dir, meta, entries); err != nil {
		t.Fatal(err)
	}
	rel := &release.Release{Format: release.FormatVersion, Dataset: "ds", Version: name, Meta: meta}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "LOCK" {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			return err
		}
		rel.Files = append(rel.Files, release.File{Path: filepath.ToSlash(p[len(dir)+1:]), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := rel.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, release.FileName), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func setManifest(t *testing.T, root, version string, activateAt *time.Time) {
	t.Helper()
	m := &manifest.Manifest{Dataset: "ds", Version: version, InstalledAt: time.Now().UTC(), ActivateAt: activateAt}
	if err := manifest.Write(root, m); err != nil {
		t.Fatal(err)
	}
}

func readK(t *testing.T, c *Current) string {
	t.Helper()
	v := c.Acquire()
	if v == nil {
		return "<none>"
	}
	defer v.Release()
	val, cl, err := v.DB.Get([]byte("version"))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	defer cl.Close()
	return string(val.Data)
}

func TestWatcherCheck(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	var cur Current
	defer cur.Close()
	w := NewWatcher(&cur, Options{Root: root})

	w.Check(ctx) // no manifest yet: nothing live, no failure
	if cur.Live() || w.Stats().Failures != 0 {
		t.Fatalf("live=%v stats=%+v before any manifest", cur.Live(), w.Stats())
	}

	installVersion(t, root, "v1", "one")
	setManifest(t, root, "v1", nil)
	w.Check(ctx)
	if got := readK(t, &cur); got != "v1" {
		t.Fatalf("serving %s, want v1", got)
	}

	// A reader holds v1 across the swap to v2.
	held := cur.Acquire()
	installVersion(t, root, "v2", "two")
	setManifest(t, root, "v2", nil)
	w.Check(ctx)
	if got := readK(t, &cur); got != "v2" {
		t.Fatalf("serving %s, want v2", got)
	}
	if st := w.Stats(); st.Swaps != 2 || st.Previous != "v1" || st.Version != "v2" || st.Dataset != "ds" {
		t.Fatalf("stats %+v", st)
	}
	if open := w.Open(); len(open) != 2 {
		t.Fatalf("open versions %v, want v2 and draining v1", open)
	}
	held.Release()
	<-held.Closed()
	if open := w.Open(); len(open) != 1 {
		t.Fatalf("open versions %v after v1 closed, want only v2", open)
	}

	// A corrupt version is not swapped in, is counted, and is not retried
	// until the manifest changes.
	// No reader holds v2 across the swap to v2b: Swap closes it at once,
	// and it must not be left behind as draining.
	installVersion(t, root, "v2b", "two-b")
	setManifest(t, root, "v2b", nil)
	w.Check(ctx)
	if got := readK(t, &cur); got != "v2b" {
		t.Fatalf("serving %s, want v2b", got)
	}
	if open := w.Open(); len(open) != 1 {
		t.Fatalf("open versions %v after a swap nobody held the old version across, want only v2b", open)
	}

	installVersion(t, root, "v3", "three")
	sst, _ := filepath.Glob(filepath.Join(manifest.VersionDir(root, "v3"), "db", "*.sst"))
	if err := os.Truncate(sst[0], 10); err != nil {
		t.Fatal(err)
	}
	setManifest(t, root, "v3", nil)
	w.Check(ctx)
	w.Check(ctx)
	if got := readK(t, &cur); got != "v2b" {
		t.Fatalf("serving %s after a corrupt version, want v2b", got)
	}
	if st := w.Stats(); st.Failures != 1 || st.LastError == "" {
		t.Fatalf("stats after corrupt version: %+v", st)
	}

	// An unparsable manifest changes nothing either.
	os.WriteFile(filepath.Join(root, manifest.FileName), []byte("{garbage"), 0o644)
	w.Check(ctx)
	if got := readK(t, &cur); got != "v2b" || w.Stats().Failures != 2 {
		t.Fatalf("after garbage manifest: serving %s, stats %+v", got, w.Stats())
	}

	// Roll back to v1, which was closed and is reopened.
	setManifest(t, root, "v1", nil)
	w.Check(ctx)
	if got := readK(t, &cur); got != "v1" {
		t.Fatalf("serving %s after rollback, want v1", got)
	}
}

func TestWatcherRunFollowsManifest(t *testing.T) {
	root := t.TempDir()
	installVersion(t, root, "v1", "one")
	setManifest(t, root, "v1", nil)
	var cur Current
	defer cur.Close()
	// A long poll interval: the swap must come from fsnotify.
	w := NewWatcher(&cur, Options{Root: root, PollInterval: time.Hour, Sampler: NewSampler(16, 1)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor(t, 5*time.Second, func() bool { return cur.Live() })
	w.opts.Sampler.Observe([]byte("k"))

	installVersion(t, root, "v2", "two")
	start := time.Now()
	setManifest(t, root, "v2", nil)
	waitFor(t, 5*time.Second, func() bool { return readK(t, &cur) == "v2" })
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("swap took %s after the manifest was written", d)
	}
	t.Logf("manifest written -> v2 serving in %s", time.Since(start))

	// Activation time: opened at once, live only at the given time.
	installVersion(t, root, "v3", "three")
	at := time.Now().Add(700 * time.Millisecond)
	setManifest(t, root, "v3", &at)
	time.Sleep(300 * time.Millisecond)
	if got := readK(t, &cur); got != "v2" {
		t.Fatalf("serving %s before the activation time", got)
	}
	waitFor(t, 5*time.Second, func() bool { return readK(t, &cur) == "v3" })
	if time.Now().Before(at) {
		t.Fatal("swapped before the activation time")
	}
}

func TestWatcherPollsWithoutRoot(t *testing.T) {
	// The root appears after the server starts (the syncer creates it).
	root := filepath.Join(t.TempDir(), "later")
	var cur Current
	defer cur.Close()
	w := NewWatcher(&cur, Options{Root: root, PollInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(100 * time.Millisecond)
	installVersion(t, root, "v1", "one")
	setManifest(t, root, "v1", nil)
	waitFor(t, 5*time.Second, func() bool { return cur.Live() })
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
