// Package publish uploads built dataset versions to a remote store with the
// layout of SPEC §4 and manages what the syncers serve:
//
//	<root>/versions/<version>/…             the version's files
//	<root>/versions/<version>/release.json  written last: every file with size and SHA-256
//	<root>/pointer.json                     optional: the version to serve (pin / rollback)
//
// Without a pointer the greatest complete version (by name) is served.
package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/release"
	"github.com/batchkv/batchkv/internal/store"
)

// Layout of the remote store, relative to the dataset root.
const (
	VersionsDir = "versions/"
	PointerFile = "pointer.json"
)

// VersionPrefix returns the prefix of a version's objects.
func VersionPrefix(version string) string { return VersionsDir + version + "/" }

// ReleaseKey returns the key of a version's release file.
func ReleaseKey(version string) string { return VersionPrefix(version) + release.FileName }

var (
	// ErrExists: the version is already published complete.
	ErrExists = errors.New("publish: version already published")
	// ErrIncomplete: the version has no release file (an interrupted publish).
	ErrIncomplete = errors.New("publish: version is incomplete")
	// ErrNoVersion: the version does not exist at all, or (from Target) no
	// complete version exists yet.
	ErrNoVersion = errors.New("publish: no such version")
)

// DefaultConcurrency is the default number of files hashed and uploaded at once.
const DefaultConcurrency = 4

// Options configures Publish.
type Options struct {
	// Concurrency is the number of files hashed and uploaded at once; each
	// large file is also uploaded in parallel parts by the S3 store.
	// Default 4.
	Concurrency int
	// Progress, when set, is called with the bytes done and the total, at
	// most every 100 ms and once at the end; calls never overlap. Bytes of a
	// file being uploaded are counted as the store reads them (a retried
	// part can make one file's count run ahead; it never exceeds the file's
	// size), and files found already uploaded by an earlier run count once
	// verified.
	Progress func(done, total int64)
	// ActivateAt, when set, goes into the release: the earliest time
	// servers may make the version live (sharded datasets swap together).
	ActivateAt time.Time
	// Now returns the current time (the release's created_at). Default time.Now.
	Now func() time.Time
}

// Result describes a finished publish.
type Result struct {
	Release *release.Release
	// Uploaded and Resumed count the files uploaded now and the files an
	// earlier, interrupted run had uploaded (verified by size and SHA-256).
	Uploaded, Resumed int
	// UploadedBytes is the size of the files uploaded now.
	UploadedBytes int64
	// Removed counts stale objects under the version that an earlier,
	// interrupted publish of a different build had left and that the
	// release does not list.
	Removed int
	// Skipped counts shards found already published from the same build.
	Skipped int
	// Shards lists the shards published (sharded builds); Count is the
	// shard count (0: unsharded). Release is then the last shard's.
	Shards []int
	Count  int
}

// sameBuild reports whether rel was published from the build in dir: the
// same metadata (version, build time, counts, shard) and the same file names
// and sizes.
func sameBuild(rel *release.Release, meta *store.Meta, files []*localFile) bool {
	m := rel.Meta
	if m.Version != meta.Version || !m.BuiltAt.Equal(meta.BuiltAt) || m.Keys != meta.Keys || m.Name != meta.Name ||
		m.Shard == nil || meta.Shard == nil || *m.Shard != *meta.Shard || len(rel.Files) != len(files) {
		return false
	}
	sizes := make(map[string]int64, len(files))
	for _, f := range files {
		sizes[f.rel] = f.size
	}
	for _, f := range rel.Files {
		if s, ok := sizes[f.Path]; !ok || s != f.Size {
			return false
		}
	}
	return true
}

type localFile struct {
	rel  string // path in the version, '/'-separated
	abs  string
	size int64
	sha  string
}

// Publish uploads the built version in dir to dst under versions/<version>/
// and writes the release file last, so that a syncer never sees a partial
// version. Publishing a version that is already complete is refused
// (ErrExists). A publish that died half-way is completed by running it
// again: objects already uploaded with the right size and SHA-256 (read
// back and hashed) are kept, others uploaded again, and objects the release
// will not list are removed. Before the release is written, a listing
// checks that every file is in the store with its size.
//
// dir is a version directory (dataset.json + db/), or a sharded build
// directory holding shard-<i>/ version directories (all of one version):
// each shard goes under versions/<version>/shard-<i>/ with its own release
// written last (so one job of a sharded build publishes only its shard). A
// version directory whose metadata names a shard is published as that
// shard. A shard already published from the same build is skipped
// (Result.Skipped), so a publish of several shards that died half-way is
// completed by running it again. Shards must agree on the shard count with
// the shards already published (ErrShards otherwise).
func Publish(ctx context.Context, dir string, dst objstore.Store, opts Options) (*Result, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if _, err := os.Stat(filepath.Join(dir, store.MetaFile)); errors.Is(err, fs.ErrNotExist) {
		if shards, serr := shardDirs(dir); serr == nil && len(shards) > 0 {
			return publishShards(ctx, dir, shards, dst, opts)
		}
	}
	meta, err := store.ReadMeta(dir)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	res, err := publishVersion(ctx, dir, meta, dst, opts)
	if err != nil {
		return nil, err
	}
	if meta.Shard != nil {
		res.Shards, res.Count = []int{meta.Shard.Index}, meta.Shard.Count
	}
	return res, nil
}

// shardDirs lists the shard-<i> directories of a sharded build directory.
func shardDirs(dir string) (map[int]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for _, e := range ents {
		if i, ok := ParseShardDir(e.Name()); ok && e.IsDir() {
			out[i] = filepath.Join(dir, e.Name())
		}
	}
	return out, nil
}

// publishShards publishes every shard directory of a sharded build.
func publishShards(ctx context.Context, dir string, shards map[int]string, dst objstore.Store, opts Options) (*Result, error) {
	idx := make([]int, 0, len(shards))
	for i := range shards {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	metas := make([]*store.Meta, len(idx))
	for k, i := range idx {
		m, err := store.ReadMeta(shards[i])
		if err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
		switch first := metas[0]; {
		case m.Shard == nil:
			return nil, fmt.Errorf("%w: %s: dataset.json has no shard (not a sharded build)", ErrShards, shards[i])
		case m.Shard.Index != i:
			return nil, fmt.Errorf("%w: %s: dataset.json says shard %d", ErrShards, shards[i], m.Shard.Index)
		case first != nil && m.Shard.Count != first.Shard.Count:
			return nil, fmt.Errorf("%w: %s: %d shards, %s: %d", ErrShards, shards[idx[0]], first.Shard.Count, shards[i], m.Shard.Count)
		case first != nil && m.Version != first.Version:
			return nil, fmt.Errorf("%w: %s: version %q, %s: version %q", ErrShards, shards[idx[0]], first.Version, shards[i], m.Version)
		case first != nil && m.Name != first.Name:
			return nil, fmt.Errorf("%w: %s: dataset %q, %s: dataset %q", ErrShards, shards[idx[0]], first.Name, shards[i], m.Name)
		}
		metas[k] = m
	}
	if n := metas[0].Shard.Count; idx[len(idx)-1] >= n {
		return nil, fmt.Errorf("%w: %s has %s but its shards say %d shards", ErrShards, dir, ShardDir(idx[len(idx)-1]), n)
	}
	total := &Result{Count: metas[0].Shard.Count}
	// One shard after the other, each with opts.Concurrency files at once:
	// progress is per shard.
	for k, i := range idx {
		res, err := publishVersion(ctx, shards[i], metas[k], dst, opts)
		if err != nil {
			return nil, fmt.Errorf("shard %d: %w", i, err)
		}
		total.Release = res.Release
		total.Uploaded += res.Uploaded
		total.Resumed += res.Resumed
		total.UploadedBytes += res.UploadedBytes
		total.Removed += res.Removed
		total.Skipped += res.Skipped
		total.Shards = append(total.Shards, i)
	}
	return total, nil
}

// publishVersion publishes one version directory: unsharded, or one shard.
func publishVersion(ctx context.Context, dir string, meta *store.Meta, dst objstore.Store, opts Options) (*Result, error) {
	if err := release.ValidName(meta.Version); err != nil {
		return nil, fmt.Errorf("publish: %s: version: %v", dir, err)
	}
	if meta.Name != "" {
		if err := release.ValidName(meta.Name); err != nil {
			return nil, fmt.Errorf("publish: %s: dataset name: %v", dir, err)
		}
	}
	files, err := scan(dir)
	if err != nil {
		return nil, err
	}
	v := meta.Version
	prefix, relKey := VersionPrefix(v), ReleaseKey(v)
	if meta.Shard != nil {
		prefix, relKey = ShardPrefix(v, meta.Shard.Index), ShardReleaseKey(v, meta.Shard.Index)
	}
	where := dst.String() + "/" + prefix

	if meta.Shard == nil {
		switch _, err := dst.Stat(ctx, relKey); {
		case err == nil:
			return nil, fmt.Errorf("%w: %s already has %s; versions are immutable: build under a new version name", ErrExists, where, release.FileName)
		case !errors.Is(err, objstore.ErrNotExist):
			return nil, fmt.Errorf("publish: %w", err)
		}
		names, err := dst.ListPrefixes(ctx, prefix)
		if err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
		for _, n := range names {
			if _, ok := ParseShardDir(n); ok {
				return nil, fmt.Errorf("%w: %s holds shards (%s/): version %s is sharded; this build is not", ErrShards, where, n, v)
			}
		}
	} else {
		sh := meta.Shard
		if _, err := dst.Stat(ctx, ReleaseKey(v)); err == nil {
			return nil, fmt.Errorf("%w: %s is published unsharded; this build is shard %d of %d", ErrShards, dst.String()+"/"+VersionPrefix(v), sh.Index, sh.Count)
		}
		set, err := ReadSet(ctx, dst, v)
		switch {
		case errors.Is(err, ErrIncomplete):
		case err != nil:
			return nil, err
		case set.Count != sh.Count:
			return nil, fmt.Errorf("%w: version %s is published with %d shards; this build is shard %d of %d",
				ErrShards, v, set.Count, sh.Index, sh.Count)
		case set.Shards[sh.Index] != nil:
			if sameBuild(set.Shards[sh.Index], meta, files) {
				return &Result{Release: set.Shards[sh.Index], Skipped: 1}, nil
			}
			return nil, fmt.Errorf("%w: %s already has %s from another build; versions are immutable: build under a new version name", ErrExists, where, release.FileName)
		case len(set.Shards) > 0:
			for _, r := range set.Shards {
				if r != nil && r.Dataset != meta.Name {
					return nil, fmt.Errorf("%w: version %s is published as dataset %q; this build is %q", ErrShards, v, r.Dataset, meta.Name)
				}
			}
		}
	}
	existing, err := listMap(ctx, dst, prefix)
	if err != nil {
		return nil, err
	}

	var total int64
	for _, f := range files {
		total += f.size
	}
	prog := newProgress(opts.Progress, total)
	res := &Result{}
	var mu sync.Mutex // guards res
	err = forEach(ctx, opts.Concurrency, files, func(ctx context.Context, f *localFile) error {
		sha, err := hashFile(f.abs, f.size)
		if err != nil {
			return err
		}
		f.sha = sha
		key := prefix + f.rel
		if o, ok := existing[f.rel]; ok && o.Size == f.size {
			sum, err := hashRemote(ctx, dst, key)
			if err != nil {
				return err
			}
			if sum == f.sha {
				prog.add(f.size)
				mu.Lock()
				res.Resumed++
				mu.Unlock()
				return nil
			}
		}
		if err := upload(ctx, dst, key, f, prog); err != nil {
			return err
		}
		mu.Lock()
		res.Uploaded++
		res.UploadedBytes += f.size
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	prog.finish()

	// Check what the store holds before declaring the version complete.
	got, err := listMap(ctx, dst, prefix)
	if err != nil {
		return nil, err
	}
	// Objects an earlier, different build left under this (incomplete, so
	// unused) version are not in the release: remove them, so the prefix
	// holds exactly the release's files.
	listed := make(map[string]bool, len(files))
	for _, f := range files {
		listed[f.rel] = true
	}
	for rel := range got {
		if !listed[rel] {
			if err := dst.Delete(ctx, prefix+rel); err != nil {
				return nil, fmt.Errorf("publish: remove stale object: %w", err)
			}
			res.Removed++
		}
	}
	for _, f := range files {
		o, ok := got[f.rel]
		if !ok {
			return nil, fmt.Errorf("publish: %s%s missing after upload", where, f.rel)
		}
		if o.Size != f.size {
			return nil, fmt.Errorf("publish: %s%s has %d bytes after upload, want %d", where, f.rel, o.Size, f.size)
		}
	}

	rel := &release.Release{
		Format:    release.FormatVersion,
		Dataset:   meta.Name,
		Version:   v,
		CreatedAt: opts.Now().UTC(),
		Meta:      meta,
	}
	if !opts.ActivateAt.IsZero() {
		at := opts.ActivateAt.UTC()
		rel.ActivateAt = &at
	}
	for _, f := range files {
		rel.Files = append(rel.Files, release.File{Path: f.rel, Size: f.size, SHA256: f.sha})
	}
	sort.Slice(rel.Files, func(i, j int) bool { return rel.Files[i].Path < rel.Files[j].Path })
	b, err := rel.Marshal()
	if err != nil {
		return nil, fmt.Errorf("publish: %s: %w", dir, err)
	}
	// Checked again just before the commit point, to narrow the window in
	// which two publishers of the same version both succeed.
	if _, err := dst.Stat(ctx, relKey); err == nil {
		return nil, fmt.Errorf("%w: %s was completed by another publisher meanwhile", ErrExists, where)
	}
	if err := dst.Put(ctx, relKey, strings.NewReader(string(b)), int64(len(b))); err != nil {
		return nil, fmt.Errorf("publish: write release: %w", err)
	}
	res.Release = rel
	return res, nil
}

// scan lists the files of the version directory to publish: everything but
// Pebble's LOCK (created when a version is opened) and temp files.
func scan(dir string) ([]*localFile, error) {
	var files []*localFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if skip(rel, d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("publish: %s: not a regular file (%v)", p, d.Type())
		}
		if err := release.ValidPath(rel); err != nil {
			return fmt.Errorf("publish: %s: cannot be published: %v", p, err)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, &localFile{rel: rel, abs: p, size: fi.Size()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("publish: scan %s: %w", dir, err)
	}
	// Largest first, so that the big tables start uploading while the small
	// files fill the gaps.
	sort.Slice(files, func(i, j int) bool {
		if files[i].size != files[j].size {
			return files[i].size > files[j].size
		}
		return files[i].rel < files[j].rel
	})
	return files, nil
}

func skip(rel, name string) bool {
	switch {
	case rel == store.DBDir+"/LOCK":
		return true // Pebble's lock file, created by every open
	case strings.HasPrefix(name, "."):
		return true // temp files of atomic writes (.dataset.json.tmp-*, .tmp-*)
	case strings.HasSuffix(name, ".dbtmp"):
		return true // Pebble's temp files
	}
	return false
}

func listMap(ctx context.Context, s objstore.Store, prefix string) (map[string]objstore.Object, error) {
	objs, err := s.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	m := make(map[string]objstore.Object, len(objs))
	for _, o := range objs {
		m[strings.TrimPrefix(o.Key, prefix)] = o
	}
	return m, nil
}

func hashFile(path string, size int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("publish: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", fmt.Errorf("publish: hash %s: %w", path, err)
	}
	if n != size {
		return "", fmt.Errorf("publish: %s changed during the publish (%d bytes, was %d)", path, n, size)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashRemote(ctx context.Context, s objstore.Store, key string) (string, error) {
	rc, err := s.ReadRange(ctx, key, 0, -1)
	if err != nil {
		return "", fmt.Errorf("publish: verify existing object: %w", err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return "", fmt.Errorf("publish: verify existing object %s: %w", key, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func upload(ctx context.Context, dst objstore.Store, key string, f *localFile, prog *progress) error {
	fh, err := os.Open(f.abs)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if fi.Size() != f.size {
		return fmt.Errorf("publish: %s changed during the publish (%d bytes, was %d)", f.abs, fi.Size(), f.size)
	}
	cr := &countingReaderAt{r: fh, size: f.size, prog: prog}
	if err := dst.Put(ctx, key, cr, f.size); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	prog.add(f.size - cr.counted.Load())
	return nil
}

// countingReaderAt reports bytes read to the progress, at most size in all.
type countingReaderAt struct {
	r       io.ReaderAt
	size    int64
	prog    *progress
	counted atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	for {
		old := c.counted.Load()
		nw := min(old+int64(n), c.size)
		if c.counted.CompareAndSwap(old, nw) {
			c.prog.add(nw - old)
			break
		}
	}
	return n, err
}

// progress serializes and rate-limits the Progress callback.
type progress struct {
	fn    func(done, total int64)
	total int64
	mu    sync.Mutex
	done  int64
	last  time.Time
}

func newProgress(fn func(done, total int64), total int64) *progress {
	return &progress{fn: fn, total: total}
}

func (p *progress) add(n int64) {
	if p.fn == nil || n == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.fn(p.done, p.total)
	}
}

func (p *progress) finish() {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fn(p.done, p.total)
}

// forEach runs fn on every item with at most n at once; the first error
// cancels the rest and is returned.
func forEach[T any](ctx context.Context, n int, items []T, fn func(context.Context, T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	work := make(chan T)
	for range min(n, len(items)) {
		wg.Add(1)
		go func() { // owned by forEach, which waits for it
			defer wg.Done()
			for it := range work {
				if ctx.Err() != nil {
					continue // drain after a failure
				}
				if err := fn(ctx, it); err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		work <- it
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}
