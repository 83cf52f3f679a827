package syncer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/manifest"
	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/objstore/file"
	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/release"
)

func TestInstallUpgradeRollback(t *testing.T) {
	ctx := context.Background()
	src, root := t.TempDir(), t.TempDir()
	v1 := publishVersion(t, src, "20261101T000000Z", 300, 1000)
	s := newTestSyncer(t, src, root, nil)

	res, err := s.SyncOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != ActionInstalled || res.Version != v1.rel.Version || res.Bytes != v1.rel.TotalSize() {
		t.Fatalf("first pass: %+v, want installed %s with %d bytes", res, v1.rel.Version, v1.rel.TotalSize())
	}
	m := readManifest(t, root)
	if m.Version != v1.rel.Version || m.Previous != "" || m.Dataset != "testds" {
		t.Fatalf("manifest after v1: %+v", m)
	}
	checkInstalled(t, root, v1)

	// Nothing new: nothing downloaded, manifest untouched.
	res, err = s.SyncOnce(ctx)
	if err != nil || res.Action != ActionNone || res.Bytes != 0 {
		t.Fatalf("idle pass: %+v %v", res, err)
	}

	// An incomplete version (no release file yet) is never picked.
	if err := os.MkdirAll(filepath.Join(src, "versions", "20261103T000000Z", "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	v2 := publishVersion(t, src, "20261102T000000Z", 200, 1500)
	res, err = s.SyncOnce(ctx)
	if err != nil || res.Action != ActionInstalled || res.Version != v2.rel.Version {
		t.Fatalf("upgrade pass: %+v %v", res, err)
	}
	m = readManifest(t, root)
	if m.Version != v2.rel.Version || m.Previous != v1.rel.Version {
		t.Fatalf("manifest after v2: %+v", m)
	}
	checkInstalled(t, root, v2)

	// Pin back to v1: still on disk, so only the manifest changes.
	if err := publish.Pin(ctx, file.New(src), v1.rel.Version); err != nil {
		t.Fatal(err)
	}
	before := s.Stats().BytesDownloaded.Load()
	res, err = s.SyncOnce(ctx)
	if err != nil || res.Action != ActionActivated || res.Bytes != 0 {
		t.Fatalf("rollback pass: %+v %v", res, err)
	}
	if s.Stats().BytesDownloaded.Load() != before {
		t.Fatal("rollback downloaded bytes")
	}
	m = readManifest(t, root)
	if m.Version != v1.rel.Version || m.Previous != v2.rel.Version {
		t.Fatalf("manifest after rollback: %+v", m)
	}
	if got := versionsOnDisk(t, root); !slices.Equal(got, []string{v1.rel.Version, v2.rel.Version}) {
		t.Fatalf("versions on disk %v", got)
	}
	// Staging holds nothing once in sync.
	if ents, _ := os.ReadDir(filepath.Join(root, "staging")); len(ents) != 0 {
		t.Fatalf("staging not empty: %v", ents)
	}
	st := s.Stats().Snapshot()
	if st.Installs != 2 || st.Rollbacks != 1 || len(st.Failures) != 0 || st.LastSuccess.IsZero() || st.FreeBytes <= 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGC(t *testing.T) {
	ctx := context.Background()
	src, root := t.TempDir(), t.TempDir()
	names := []string{"v1", "v2", "v3", "v4", "v5"}
	for _, n := range names[:3] {
		publishVersion(t, src, n, 20, 100)
	}
	// Install v1, v2, v3 in turn (each the greatest at its time).
	s := newTestSyncer(t, src, root, nil)
	for _, n := range names[:3] {
		pin(t, src, n)
		if _, err := s.SyncOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Keep 2: live v3 and previous v2.
	if got := versionsOnDisk(t, root); !slices.Equal(got, []string{"v2", "v3"}) {
		t.Fatalf("after v3: %v", got)
	}

	// The server still holds v2 open (a reader on the old version) while
	// v4 and v5 arrive: v2 must survive, unheld v3 must go.
	release := holdOpen(t, manifest.VersionDir(root, "v2"))
	if held, err := heldOpen(manifest.VersionDir(root, "v2")); err != nil || !held {
		t.Fatalf("heldOpen(v2) = %v, %v while a child holds it", held, err)
	}
	if held, err := heldOpen(manifest.VersionDir(root, "v3")); err != nil || held {
		t.Fatalf("heldOpen(v3) = %v, %v", held, err)
	}
	for _, n := range names[3:] {
		publishVersion(t, src, n, 20, 100)
		pin(t, src, n)
		if _, err := s.SyncOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := versionsOnDisk(t, root); !slices.Equal(got, []string{"v2", "v4", "v5"}) {
		t.Fatalf("with v2 held: %v", got)
	}
	release()
	if held, err := heldOpen(manifest.VersionDir(root, "v2")); err != nil || held {
		t.Fatalf("heldOpen(v2) = %v, %v after the child closed it", held, err)
	}
	if _, err := s.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := versionsOnDisk(t, root); !slices.Equal(got, []string{"v4", "v5"}) {
		t.Fatalf("after release: %v", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "staging")); len(ents) != 0 {
		t.Fatalf("staging holds trash: %v", ents)
	}

	// Keep 3, after a rollback to v4: live v4, previous v5, and the newest other.
	s3 := newTestSyncer(t, src, root, func(o *Options) { o.Keep = 3 })
	pin(t, src, "v4")
	publishVersion(t, src, "v6", 20, 100) // not pinned: never installed
	if res, err := s3.SyncOnce(ctx); err != nil || res.Action != ActionActivated {
		t.Fatalf("rollback: %+v %v", res, err)
	}
	if got := versionsOnDisk(t, root); !slices.Equal(got, []string{"v4", "v5"}) {
		t.Fatalf("keep 3: %v", got)
	}
	// Keep 1: only the live version.
	s1 := newTestSyncer(t, src, root, func(o *Options) { o.Keep = 1 })
	if _, err := s1.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := versionsOnDisk(t, root); !slices.Equal(got, []string{"v4"}) {
		t.Fatalf("keep 1: %v", got)
	}
}

func TestCorruptFileNotInstalled(t *testing.T) {
	ctx := context.Background()
	src, root := t.TempDir(), t.TempDir()
	v1 := publishVersion(t, src, "v1", 50, 100)
	s := newTestSyncer(t, src, root, nil)
	if _, err := s.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	v2 := publishVersion(t, src, "v2", 500, 1000)
	// Flip one byte of the biggest file after the release was written.
	big := v2.rel.Files[0]
	for _, f := range v2.rel.Files {
		if f.Size > big.Size {
			big = f
		}
	}
	p := filepath.Join(v2.dir, big.Path)
	orig, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	bad := slices.Clone(orig)
	bad[len(bad)/2] ^= 0xff
	if err := os.WriteFile(p, bad, 0o644); err != nil {
		t.Fatal(err)
	}

	_, err = s.SyncOnce(ctx)
	if !errors.Is(err, ErrVerify) || KindOf(err) != KindChecksum || !strings.Contains(err.Error(), big.Path) {
		t.Fatalf("corrupt pass: %v (kind %v)", err, KindOf(err))
	}
	if m := readManifest(t, root); m.Version != "v1" {
		t.Fatalf("manifest moved to %s", m.Version)
	}
	if _, err := os.Stat(manifest.VersionDir(root, "v2")); !os.IsNotExist(err) {
		t.Fatalf("v2 installed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(stagingDir(root, "v2"), big.Path)); !os.IsNotExist(err) {
		t.Fatalf("corrupt staged file kept: %v", err)
	}
	if n := s.Stats().Failures(KindChecksum); n != 1 {
		t.Fatalf("checksum failures %d", n)
	}
	checkInstalled(t, root, v1)

	// The source is fixed: the next pass fetches only the deleted file.
	if err := os.WriteFile(p, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := s.SyncOnce(ctx)
	if err != nil || res.Action != ActionInstalled {
		t.Fatalf("after fix: %+v %v", res, err)
	}
	if res.Bytes != big.Size {
		t.Fatalf("second pass downloaded %d bytes, want only the re-fetched %d", res.Bytes, big.Size)
	}
	checkInstalled(t, root, v2)
}

func TestRejectedReleases(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		mutate func(t *testing.T, src string, p *published) // after a valid publish
		kind   Kind
		want   string
	}{
		{"path escapes", func(t *testing.T, src string, p *published) {
			b, _ := p.rel.Marshal()
			b = []byte(strings.Replace(string(b), `"path": "dataset.json"`, `"path": "../../etc/x"`, 1))
			os.WriteFile(filepath.Join(p.dir, release.FileName), b, 0o644)
		}, KindRelease, `".." is not allowed`},
		{"not json", func(t *testing.T, src string, p *published) {
			os.WriteFile(filepath.Join(p.dir, release.FileName), []byte("{"), 0o644)
		}, KindRelease, "invalid release"},
		{"names another version", func(t *testing.T, src string, p *published) {
			r := *p.rel
			m := *r.Meta
			m.Version, r.Version = "v9", "v9"
			r.Meta = &m
			b, _ := r.Marshal()
			os.WriteFile(filepath.Join(p.dir, release.FileName), b, 0o644)
		}, KindRelease, `names version "v9"`},
		{"missing file", func(t *testing.T, src string, p *published) {
			r := *p.rel
			r.Files = append(slices.Clone(r.Files), release.File{Path: "db/000999.sst", Size: 10, SHA256: strings.Repeat("a", 64)})
			writeRelease(t, src, &r)
		}, KindMissing, "does not exist"},
		{"incomplete only", func(t *testing.T, src string, p *published) {
			os.Remove(filepath.Join(p.dir, release.FileName))
		}, KindNoTarget, "no complete version"},
		{"pinned to an incomplete version", func(t *testing.T, src string, p *published) {
			pin(t, src, "nope")
		}, KindNoTarget, "pinned version nope"},
		{"metadata disagrees", func(t *testing.T, src string, p *published) {
			r := *p.rel
			m := *r.Meta
			m.Keys, m.Strings = 7, 7
			r.Meta = &m
			writeRelease(t, src, &r)
		}, KindMetadata, "disagrees"},
		{"dataset disagrees", func(t *testing.T, src string, p *published) {
			r := *p.rel
			r.Dataset = "other"
			writeRelease(t, src, &r)
		}, KindMetadata, `names dataset "testds", the release "other"`},
		{"size lies", func(t *testing.T, src string, p *published) {
			r := *p.rel
			r.Files = slices.Clone(r.Files)
			r.Files[len(r.Files)-1].Size++
			writeRelease(t, src, &r)
		}, KindDownload, "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, root := t.TempDir(), t.TempDir()
			p := publishVersion(t, src, "v1", 20, 100)
			tt.mutate(t, src, p)
			s := newTestSyncer(t, src, root, func(o *Options) { o.MaxAttempts = 2 })
			_, err := s.SyncOnce(ctx)
			if err == nil || KindOf(err) != tt.kind || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v (kind %v), want kind %v containing %q", err, KindOf(err), tt.kind, tt.want)
			}
			if s.Stats().Failures(tt.kind) != 1 {
				t.Fatalf("failure not counted: %+v", s.Stats().Snapshot())
			}
			if _, err := os.Stat(filepath.Join(root, manifest.FileName)); !os.IsNotExist(err) {
				t.Fatalf("manifest written: %v", err)
			}
			if _, err := os.Stat(filepath.Join(root, "versions", "v1")); !os.IsNotExist(err) {
				t.Fatalf("installed: %v", err)
			}
			if tt.kind == KindRelease || tt.kind == KindNoTarget {
				if n := s.Stats().BytesDownloaded.Load(); n != 0 {
					t.Fatalf("downloaded %d bytes of a rejected release", n)
				}
				if _, err := os.Stat(filepath.Join(root, "staging", "v1")); !os.IsNotExist(err) {
					t.Fatalf("staged a rejected release: %v", err)
				}
			}
			// Nothing outside root was created.
			if _, err := os.Stat(filepath.Join(root, "..", "etc")); !os.IsNotExist(err) {
				t.Fatalf("escaped root: %v", err)
			}
		})
	}
}

// flaky wraps a store: every failEvery-th ReadRange fails, every
// truncEvery-th returns a body cut short, every longEvery-th returns a body
// with extra bytes.
type flaky struct {
	objstore.Store
	n                                atomic.Int64
	failEvery, truncEvery, longEvery int64
	failures                         atomic.Int64
}

func (f *flaky) ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	i := f.n.Add(1)
	if strings.HasSuffix(key, release.FileName) || key == publish.PointerFile {
		return f.Store.ReadRange(ctx, key, off, n)
	}
	switch {
	case f.failEvery > 0 && i%f.failEvery == 0:
		f.failures.Add(1)
		return nil, errors.New("flaky: connection reset")
	case f.truncEvery > 0 && i%f.truncEvery == 0 && n > 1:
		f.failures.Add(1)
		rc, err := f.Store.ReadRange(ctx, key, off, n)
		if err != nil {
			return nil, err
		}
		return readCloser{io.LimitReader(rc, n/2), rc}, nil
	case f.longEvery > 0 && i%f.longEvery == 0:
		f.failures.Add(1)
		rc, err := f.Store.ReadRange(ctx, key, off, n)
		if err != nil {
			return nil, err
		}
		return readCloser{io.MultiReader(rc, strings.NewReader("extra")), rc}, nil
	}
	return f.Store.ReadRange(ctx, key, off, n)
}

type readCloser struct {
	io.Reader
	io.Closer
}

func TestTransientErrorsRetried(t *testing.T) {
	src, root := t.TempDir(), t.TempDir()
	v1 := publishVersion(t, src, "v1", 1000, 1000) // ~1 MB: 16 parts of 64 KiB
	fl := &flaky{Store: file.New(src), failEvery: 3, truncEvery: 5, longEvery: 7}
	s := newTestSyncer(t, src, root, func(o *Options) { o.Source = fl; o.MaxAttempts = 10 })
	res, err := s.SyncOnce(context.Background())
	if err != nil || res.Action != ActionInstalled {
		t.Fatalf("%+v %v", res, err)
	}
	if fl.failures.Load() < 3 {
		t.Fatalf("only %d injected failures: the test did not exercise retries", fl.failures.Load())
	}
	checkInstalled(t, root, v1)

	// A source that always truncates fails the pass after MaxAttempts, and
	// the live version stays.
	publishVersion(t, src, "v2", 1000, 1000)
	fl2 := &flaky{Store: file.New(src), truncEvery: 1}
	s2 := newTestSyncer(t, src, root, func(o *Options) { o.Source = fl2; o.MaxAttempts = 3 })
	_, err = s2.SyncOnce(context.Background())
	if KindOf(err) != KindDownload || !errors.Is(err, errTruncated) || !strings.Contains(err.Error(), "after 3 attempts") {
		t.Fatalf("always-truncating source: %v", err)
	}
	if m := readManifest(t, root); m.Version != "v1" {
		t.Fatalf("manifest moved to %s", m.Version)
	}
}

func TestResumeAfterInterruption(t *testing.T) {
	src, root := t.TempDir(), t.TempDir()
	v1 := publishVersion(t, src, "v1", 400, 10000) // ~4 MB
	total := v1.rel.TotalSize()
	s := newTestSyncer(t, src, root, func(o *Options) { o.Bandwidth = 4 << 20; o.Concurrency = 2 })
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for s.Stats().BytesDownloaded.Load() < total/3 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	if _, err := s.SyncOnce(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted pass: %v", err)
	}
	first := s.Stats().BytesDownloaded.Load()
	if first >= total {
		t.Fatalf("first pass got everything (%d of %d): not interrupted", first, total)
	}
	if n := s.Stats().Snapshot().Failures; len(n) != 0 {
		t.Fatalf("cancellation counted as failure: %v", n)
	}

	s2 := newTestSyncer(t, src, root, nil)
	res, err := s2.SyncOnce(context.Background())
	if err != nil || res.Action != ActionInstalled {
		t.Fatalf("resumed pass: %+v %v", res, err)
	}
	// At most the parts in flight (concurrency 2) are fetched twice.
	if res.Bytes+first > total+2*MinPartSize || res.Bytes >= total {
		t.Fatalf("resume fetched %d after %d of %d", res.Bytes, first, total)
	}
	checkInstalled(t, root, v1)
}

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory for the test.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Fatalf("%s mounts a tmpfs and must run as root (CI does)", t.Name())
	}
	root := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", root).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", root).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	return root
}

func TestNoSpace(t *testing.T) {
	root := mountTmpfs(t, "2m")
	src := t.TempDir()
	v1 := publishVersion(t, src, "v1", 10, 100)
	s := newTestSyncer(t, src, root, nil)
	if _, err := s.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	v2 := publishVersion(t, src, "v2", 300, 10000) // ~3 MB
	_, err := s.SyncOnce(context.Background())
	if !errors.Is(err, ErrNoSpace) || KindOf(err) != KindNoSpace {
		t.Fatalf("err = %v", err)
	}
	for _, w := range []string{"need", "free", "v2"} {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not mention %q", err, w)
		}
	}
	if s.Stats().Failures(KindNoSpace) != 1 || s.Stats().BytesDownloaded.Load() != v1.rel.TotalSize() {
		t.Fatalf("stats %+v", s.Stats().Snapshot())
	}
	if m := readManifest(t, root); m.Version != "v1" {
		t.Fatalf("manifest moved to %s", m.Version)
	}
	checkInstalled(t, root, v1)
	_ = v2

	// A disk that fills up after the check (another writer) is still
	// classified as no space: a real ENOSPC from this filesystem.
	f, err := os.Create(filepath.Join(root, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	_, werr := f.Write(make([]byte, 4<<20))
	f.Close()
	os.Remove(filepath.Join(root, "filler"))
	if werr == nil || localKind(fmt.Errorf("syncer: write x: %w", werr)) != KindNoSpace || localKind(errors.New("x")) != KindInstall {
		t.Fatalf("ENOSPC (%v) not classified as no space", werr)
	}

	// The reserve counts too: a version that fits, but not with the margin.
	src2 := t.TempDir()
	publishVersion(t, src2, "v3", 10, 100)
	s2 := newTestSyncer(t, src2, root, func(o *Options) { o.MinFreeBytes = 4 << 20 })
	if _, err := s2.SyncOnce(context.Background()); !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "reserve") {
		t.Fatalf("reserve: %v", err)
	}
}

// TestNoSpacePrunesRetired: short of space, the syncer first deletes the
// version the install would retire anyway (keep 2: the live one stays as
// previous), and never the live one, even with keep 1.
func TestNoSpacePrunesRetired(t *testing.T) {
	for _, keep := range []int{2, 1} {
		t.Run(fmt.Sprintf("keep %d", keep), func(t *testing.T) {
			root := mountTmpfs(t, "4m")
			src := t.TempDir()
			s := newTestSyncer(t, src, root, func(o *Options) { o.Keep = 2 })
			for _, v := range []string{"v1", "v2"} { // 1.5 MB each
				publishVersion(t, src, v, 150, 10000)
				if _, err := s.SyncOnce(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if got := versionsOnDisk(t, root); !slices.Equal(got, []string{"v1", "v2"}) {
				t.Fatalf("before: %v", got)
			}
			v3 := publishVersion(t, src, "v3", 150, 10000)
			s = newTestSyncer(t, src, root, func(o *Options) { o.Keep = keep })
			res, err := s.SyncOnce(context.Background())
			if err != nil || res.Action != ActionInstalled {
				t.Fatalf("%+v %v", res, err)
			}
			want := []string{"v2", "v3"}
			if keep == 1 {
				want = []string{"v3"} // v2 went after the install, not before
			}
			if got := versionsOnDisk(t, root); !slices.Equal(got, want) {
				t.Fatalf("after: %v, want %v", got, want)
			}
			checkInstalled(t, root, v3)
		})
	}
}

func TestStaleStagingCleaned(t *testing.T) {
	src, root := t.TempDir(), t.TempDir()
	v1 := publishVersion(t, src, "v1", 20, 100)
	// Leftovers of a crashed run: another version's download, trash of a GC,
	// a manifest temp file, and a stray file in the target's staging.
	for _, d := range []string{"staging/v0/db", "staging/v0+journal/db", "staging/trash+v0+abc/db", "staging/v1/db"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "staging/v0/db/x"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(root, "staging/v1/db/stray"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(root, ".manifest.json.tmp-123"), []byte("x"), 0o644)
	s := newTestSyncer(t, src, root, nil)
	if _, err := s.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "staging")); len(ents) != 0 {
		t.Fatalf("staging: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(root, ".manifest.json.tmp-123")); !os.IsNotExist(err) {
		t.Fatal("temp manifest kept")
	}
	if _, err := os.Stat(filepath.Join(root, "versions/v1/db/stray")); !os.IsNotExist(err) {
		t.Fatal("stray file installed")
	}
	checkInstalled(t, root, v1)
}

func TestOneSyncerPerRoot(t *testing.T) {
	src, root := t.TempDir(), t.TempDir()
	publishVersion(t, src, "v1", 20, 100)
	unlock, err := lockRoot(root) // another syncer's pass
	if err != nil {
		t.Fatal(err)
	}
	s := newTestSyncer(t, src, root, nil)
	if _, err := s.SyncOnce(context.Background()); !errors.Is(err, ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
	if _, err := os.Stat(filepath.Join(root, manifest.FileName)); !os.IsNotExist(err) {
		t.Fatalf("manifest written under another syncer's lock: %v", err)
	}
	unlock()
	if res, err := s.SyncOnce(context.Background()); err != nil || res.Action != ActionInstalled {
		t.Fatalf("after unlock: %+v %v", res, err)
	}
}

func TestRunPolls(t *testing.T) {
	src, root := t.TempDir(), t.TempDir()
	publishVersion(t, src, "v1", 20, 100)
	s := newTestSyncer(t, src, root, func(o *Options) { o.Interval = 20 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, func() bool { m, err := manifest.Read(root); return err == nil && m.Version == "v1" })
	publishVersion(t, src, "v2", 20, 100)
	waitFor(t, func() bool { m, err := manifest.Read(root); return err == nil && m.Version == "v2" })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Options)
		want   string
	}{
		{"no source", func(o *Options) { o.Source = nil }, "no source"},
		{"no root", func(o *Options) { o.Root = "" }, "no root"},
		{"keep", func(o *Options) { o.Keep = -1 }, "keep"},
		{"part size", func(o *Options) { o.PartSize = 10 }, "part size"},
		{"bandwidth", func(o *Options) { o.Bandwidth = -5 }, "bandwidth"},
		{"concurrency", func(o *Options) { o.Concurrency = 1000 }, "concurrency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{Source: file.New(t.TempDir()), Root: t.TempDir()}
			tt.mutate(&o)
			_, err := New(o)
			if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	o := Options{Source: file.New(t.TempDir()), Root: t.TempDir()}
	o.EnsureDefaults()
	if o.Interval != DefaultInterval || o.Keep != 2 || o.PartSize != DefaultPartSize || o.MinFreeBytes != DefaultMinFreeBytes {
		t.Fatalf("defaults %+v", o)
	}
}
