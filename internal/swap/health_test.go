package swap

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/batchkv/batchkv/internal/manifest"
	"github.com/batchkv/batchkv/internal/release"
)

func readKey(t *testing.T, c *Current, key string) string {
	t.Helper()
	v := c.Acquire()
	if v == nil {
		return "<none>"
	}
	defer v.Release()
	val, cl, err := v.DB.Get([]byte(key))
	if err != nil {
		return "<error: " + err.Error() + ">"
	}
	defer cl.Close()
	return string(val.Data)
}

// watchV1 installs v1 (k = "first") under a new root, makes it live through a
// watcher and runs a first health check.
func watchV1(t *testing.T) (root string, cur *Current, w *Watcher) {
	t.Helper()
	root = t.TempDir()
	installVersion(t, root, "v1", "first")
	setManifest(t, root, "v1", nil)
	cur = new(Current)
	t.Cleanup(cur.Close)
	w = NewWatcher(cur, Options{Root: root})
	w.Check(context.Background())
	w.checkHealth(context.Background())
	return root, cur, w
}

// TestHealth damages the live version's files and checks that the watcher
// reports it, recovers when the damage is undone in place, and reopens a
// reinstalled copy.
func TestHealth(t *testing.T) {
	root, cur, w := watchV1(t)
	ctx := context.Background()
	if err := w.Health(); err != nil || readKey(t, cur, "k") != "first" {
		t.Fatalf("fresh version: health %v, k %q", err, readKey(t, cur, "k"))
	}

	// The release file removed, then put back in place: damaged, then
	// intact again without a reopen.
	dir := manifest.VersionDir(root, "v1")
	relPath := filepath.Join(dir, release.FileName)
	rel, _ := os.ReadFile(relPath)
	os.Remove(relPath)
	w.checkHealth(ctx)
	if err := w.Health(); !errors.Is(err, ErrDamaged) {
		t.Fatalf("release file gone: health %v, want ErrDamaged", err)
	}
	w.checkHealth(ctx)
	if d, _ := w.HealthCounts(); d != 1 {
		t.Errorf("one damage counted %d times", d)
	}
	os.WriteFile(relPath, rel, 0o644)
	w.checkHealth(ctx)
	if err := w.Health(); err != nil {
		t.Fatalf("release file restored: health %v", err)
	}
	if _, r := w.HealthCounts(); r != 0 {
		t.Errorf("reopened %d times for a restore in place", r)
	}

	// An sstable truncated: damaged.
	ssts, _ := filepath.Glob(filepath.Join(dir, "db", "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no sstable")
	}
	os.Truncate(ssts[0], 10)
	w.checkHealth(ctx)
	if err := w.Health(); !errors.Is(err, ErrDamaged) {
		t.Fatalf("truncated sstable: health %v, want ErrDamaged", err)
	}

	// Reinstalled as the syncer does (the damaged copy moved away, a fresh
	// one installed, the manifest rewritten): reopened, healthy, serving
	// the new files.
	v := cur.Acquire()
	old := v
	v.Release()
	if err := os.Rename(dir, filepath.Join(root, "trash")); err != nil {
		t.Fatal(err)
	}
	// Built elsewhere (Pebble refuses to create at a path this process
	// has open; the syncer is another process) and renamed into place.
	other := t.TempDir()
	installVersion(t, other, "v1", "second")
	if err := os.Rename(manifest.VersionDir(other, "v1"), dir); err != nil {
		t.Fatal(err)
	}
	setManifest(t, root, "v1", nil)
	w.Check(ctx)
	w.checkHealth(ctx)
	if err := w.Health(); err != nil {
		t.Fatalf("after the reinstall: health %v", err)
	}
	if _, r := w.HealthCounts(); r != 1 {
		t.Errorf("reopened %d times, want 1", r)
	}
	if got := readKey(t, cur, "k"); got != "second" {
		t.Errorf("after the reinstall k = %q, want second", got)
	}
	select {
	case <-old.Closed():
	default:
		t.Error("the damaged instance is still open")
	}
	// Nothing changes: no second reopen.
	w.checkHealth(ctx)
	if _, r := w.HealthCounts(); r != 1 {
		t.Errorf("reopened %d times after a quiet check, want 1", r)
	}
}

// TestHealthAcrossRollback: v1 live and checked, then v2, then v1 again
// from a fresh install (the syncer deleted v1 and downloaded it again for a
// rollback), with no health check while v2 was live (rapid pins between
// polls). The v1 now open is the fresh install: nothing to reopen, so no
// moment without a live version (-LOADING; found by test/e2e
// TestRapidPins).
func TestHealthAcrossRollback(t *testing.T) {
	root, cur, w := watchV1(t)
	ctx := context.Background()

	installVersion(t, root, "v2", "second")
	setManifest(t, root, "v2", nil)
	w.Check(ctx)
	if got := readKey(t, cur, "k"); got != "second" {
		t.Fatalf("k = %q, want second", got)
	}
	// v1 closed (nobody held it); delete and reinstall it: a new inode.
	if err := os.RemoveAll(manifest.VersionDir(root, "v1")); err != nil {
		t.Fatal(err)
	}
	installVersion(t, root, "v1", "first")
	setManifest(t, root, "v1", nil)
	w.Check(ctx)
	w.checkHealth(ctx)
	if _, reopened := w.HealthCounts(); reopened != 0 {
		t.Fatalf("the freshly opened v1 was reopened %d times (a moment of -LOADING for nothing)", reopened)
	}
	if err := w.Health(); err != nil || readKey(t, cur, "k") != "first" {
		t.Fatalf("health %v, k %q", err, readKey(t, cur, "k"))
	}
}
