package syncer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/release"
	"github.com/batchkv/batchkv/internal/store"
)

// readChunk is the size of one read from a part's body (and one token-bucket
// withdrawal): small enough to keep memory at concurrency × 1 MiB and the
// bandwidth limit smooth, large enough that a fast local source fills it and
// the write system calls stay few (256 KiB cost about 15% more CPU).
const readChunk = 1 << 20

// ErrNoSpace reports too little free disk space for a download.
var ErrNoSpace = errors.New("syncer: not enough free disk space")

// ErrVerify reports a staged file whose size or SHA-256 differs from the release.
var ErrVerify = errors.New("syncer: verification failed")

// errTruncated reports a part body shorter than requested (retried).
var errTruncated = errors.New("syncer: truncated body")

// permanent marks an error that retrying a part cannot fix (a local write
// failed, for example ENOSPC).
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// localKind classifies a failure of the local disk: out of space (the
// filesystem filled up after the check, or the estimate was short), or other.
func localKind(err error) Kind {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return KindNoSpace
	}
	return KindInstall
}

// stagedFile is one file of the target version in staging.
type stagedFile struct {
	rf    release.File
	key   string // object key at the source
	path  string // data file in staging/<v>/
	jpath string // its journal in staging/<v>+journal/
	hdr   journalHeader

	f         *os.File // open while parts are missing
	j         *journal
	remaining atomic.Int64 // parts not yet on disk

	// hashq takes a file that was complete before this pass, to be verified
	// while other files download. A file downloaded in this pass is hashed
	// as its parts arrive instead (see inc). Whoever hashes sets verr and
	// hashed; they are read after the workers and hashers are done.
	hashq  chan<- *stagedFile
	hashed bool
	verr   error

	inc *prefixHash // nil unless parts are downloaded in this pass
}

// prefixHash hashes a file being downloaded in order, as far as its parts
// are contiguous on disk, so that the SHA-256 is known moments after the last
// part arrives instead of after a second full read of the file. The worker
// that completes the next part in order hashes forward (from the page cache)
// until the first part still missing; other workers keep downloading.
type prefixHash struct {
	mu   sync.Mutex
	h    hash.Hash
	rf   *os.File // a read-only descriptor (the writer's is closed by finishFile)
	done []bool   // parts written (or recorded before this pass)
	next int      // first part not hashed yet
	busy bool     // a worker is hashing
}

// part is one ranged read.
type part struct {
	sf       *stagedFile
	idx      int
	off, len int64
}

// stagingDir and journalDir hold the download of version v. '+' cannot occur
// in a version name, so neither can collide with another version's staging.
func stagingDir(root, v string) string { return filepath.Join(root, "staging", v) }
func journalDir(root, v string) string { return filepath.Join(root, "staging", v+"+journal") }

// diskFree returns the bytes available to unprivileged users on dir's filesystem.
func diskFree(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("syncer: statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// allocated returns the bytes of path already allocated on disk, at most
// size (a staged file is preallocated; a sparse one counts what it holds).
func allocated(path string, size int64) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return min(fi.Size(), size)
	}
	return min(st.Blocks*512, size)
}

// download brings every file of t into staging/<v>/, resuming what an earlier
// pass left, and hashes each file as soon as it is complete (verify reports
// the results). live is the version live now ("" if none).
func (s *Syncer) download(ctx context.Context, t *target, live string) (files []*stagedFile, err error) {
	root, v := s.opts.Root, t.version
	sdir, jdir := stagingDir(root, v), journalDir(root, v)
	for _, d := range []string{filepath.Join(root, "staging"), sdir, jdir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, failure(KindInstall, fmt.Errorf("syncer: %w", err))
		}
	}
	// Hashers verify complete files while the rest download: the pass then
	// ends soon after the last byte arrives instead of re-reading everything.
	hashq := make(chan *stagedFile, len(t.rel.Files))
	hctx := ctx // ctx is replaced below, for the download workers
	var hwg sync.WaitGroup
	for range min(s.opts.Concurrency, runtime.GOMAXPROCS(0), len(t.rel.Files)) {
		hwg.Add(1)
		go func() {
			defer hwg.Done()
			buf := make([]byte, 1<<20)
			for sf := range hashq {
				if hctx.Err() == nil {
					sf.verr = verifyFile(sf.path, sf.rf, buf)
					sf.hashed = true
				}
			}
		}()
	}
	defer func() {
		close(hashq)
		hwg.Wait()
	}()
	files = make([]*stagedFile, len(t.rel.Files))
	listed := make(map[string]bool, len(t.rel.Files))
	for i, rf := range t.rel.Files {
		sum, _ := hex.DecodeString(rf.SHA256) // validated by release.Parse
		sf := &stagedFile{
			rf:    rf,
			key:   path.Join("versions", v, rf.Path),
			path:  filepath.Join(sdir, filepath.FromSlash(rf.Path)),
			jpath: filepath.Join(jdir, filepath.FromSlash(rf.Path)),
			hdr:   journalHeader{Size: rf.Size, PartSize: s.opts.PartSize},
			hashq: hashq,
		}
		copy(sf.hdr.SHA256[:], sum)
		files[i] = sf
		listed[rf.Path] = true
	}
	if err := removeUnlisted(sdir, listed); err != nil {
		return nil, failure(KindInstall, err)
	}
	if err := removeUnlisted(jdir, listed); err != nil {
		return nil, failure(KindInstall, err)
	}

	// Free space: what is still to be written, plus the margin.
	var staged int64
	for _, sf := range files {
		staged += allocated(sf.path, sf.rf.Size)
	}
	free, err := diskFree(root)
	if err != nil {
		return nil, failure(KindInstall, err)
	}
	s.stats.FreeBytes.Store(free)
	need := t.rel.TotalSize() - staged + s.opts.MinFreeBytes
	if free < need {
		// Retire now what the install would retire anyway.
		s.log.Info("short of space: deleting the versions this install retires", zap.Int64("need", need), zap.Int64("free", free))
		if err := s.gc(v, live, live); err != nil {
			s.log.Warn("gc before download", zap.Error(err))
		}
		if free, err = diskFree(root); err != nil {
			return nil, failure(KindInstall, err)
		}
		s.stats.FreeBytes.Store(free)
	}
	if free < need {
		return nil, failure(KindNoSpace, fmt.Errorf("%w on %s for version %s: need %d bytes (%d to download + %d reserve), %d free",
			ErrNoSpace, root, v, need, t.rel.TotalSize()-staged, s.opts.MinFreeBytes, free))
	}

	var parts []part
	defer func() {
		for _, sf := range files {
			if sf.f != nil {
				sf.f.Close()
			}
			if sf.j != nil {
				sf.j.close()
			}
			if sf.inc != nil && sf.inc.rf != nil {
				sf.inc.rf.Close()
			}
		}
	}()
	dirs := map[string]bool{}
	var resumed, total int64
	for _, sf := range files {
		ps, err := s.prepare(sf, dirs)
		if err != nil {
			return nil, failure(localKind(err), err)
		}
		for _, p := range ps {
			total += p.len
		}
		parts = append(parts, ps...)
		resumed += sf.rf.Size
	}
	// Make the new files' directory entries durable before any journal
	// record can claim their data.
	for d := range dirs {
		if err := store.SyncDir(d); err != nil {
			return nil, failure(KindInstall, err)
		}
	}
	resumed -= total
	if len(parts) == 0 {
		return files, nil
	}
	s.log.Info("downloading", zap.String(keyVersion, v), zap.Int("files", len(files)), zap.Int("parts", len(parts)),
		zap.Int64("bytes", total), zap.Int64("already_staged", resumed), zap.Int64("free_bytes", free))
	start := time.Now()
	before := s.stats.BytesDownloaded.Load()
	defer func() {
		d := time.Since(start)
		s.stats.DownloadNanos.Add(int64(d))
		if s.opts.OnDownload != nil {
			s.opts.OnDownload(d, s.stats.BytesDownloaded.Load()-before, err)
		}
	}()
	stopProgress := s.logProgress(v, total, start, before)
	defer stopProgress()

	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan part)
	var wg sync.WaitGroup
	lim := newLimiter(s.opts.Bandwidth)
	c := newCommitter(s)
	cdone := make(chan struct{})
	go func() { // owned here: stops once the workers are done, below
		defer close(cdone)
		if err := c.run(); err != nil {
			cancel(permanent{err})
		}
	}()
	for range min(s.opts.Concurrency, len(parts)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, readChunk)
			for p := range work {
				if err := s.fetchWithRetry(wctx, p, buf, lim); err != nil {
					cancel(err)
					return
				}
				c.add(p)
				if err := p.sf.hashWritten(p.idx, buf); err != nil {
					cancel(permanent{err})
					return
				}
			}
		}()
	}
feed:
	for _, p := range parts {
		select {
		case work <- p:
		case <-wctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	// Parts already written are committed even when the pass fails: a
	// retry then keeps them.
	c.stop()
	<-cdone
	if err := context.Cause(wctx); err != nil {
		if errors.Is(err, objstore.ErrNotExist) {
			return nil, failure(KindMissing, err)
		}
		var perm permanent
		if errors.As(err, &perm) {
			return nil, failure(localKind(err), err)
		}
		return nil, failure(KindDownload, err)
	}
	s.log.Info("downloaded", zap.String(keyVersion, v), zap.Int64("bytes", total), zap.Duration("took", time.Since(start)),
		zap.Float64("mb_per_s", float64(total)/1e6/max(time.Since(start).Seconds(), 1e-9)))
	return files, nil
}

// prepare opens sf for download: it resumes its journal if one matches,
// otherwise starts the file over, and returns the parts still missing. A
// data file without a journal is complete (verified later). Directories that
// gained entries are added to dirs.
func (s *Syncer) prepare(sf *stagedFile, dirs map[string]bool) ([]part, error) {
	done, err := s.resume(sf)
	if err != nil {
		return nil, err
	}
	if done == nil {
		sf.hashq <- sf // complete: verify it
		return nil, nil
	}
	var ps []part
	for i, ok := range done {
		if ok {
			continue
		}
		off := int64(i) * sf.hdr.PartSize
		ps = append(ps, part{sf: sf, idx: i, off: off, len: min(sf.hdr.PartSize, sf.rf.Size-off)})
	}
	if len(ps) == 0 {
		// Every part is recorded: a crash came between the last record and
		// the journal's removal.
		return nil, s.finishFile(sf)
	}
	sf.remaining.Store(int64(len(ps)))
	rf, err := os.Open(sf.path)
	if err != nil {
		return nil, fmt.Errorf("syncer: %w", err)
	}
	sf.inc = &prefixHash{h: sha256.New(), rf: rf, done: done}
	dirs[filepath.Dir(sf.path)] = true
	dirs[filepath.Dir(sf.jpath)] = true
	return ps, nil
}

// resume returns which parts of sf are done (nil: the file is complete),
// leaving sf.f and sf.j open when parts are missing.
func (s *Syncer) resume(sf *stagedFile) ([]bool, error) {
	if j, done, err := openJournal(sf.jpath, sf.hdr); err == nil {
		f, ferr := os.OpenFile(sf.path, os.O_RDWR, 0)
		if ferr == nil {
			if fi, serr := f.Stat(); serr == nil && fi.Size() == sf.rf.Size {
				sf.f, sf.j = f, j
				return done, nil
			}
			f.Close()
		}
		j.close()
		s.log.Info("journal without a matching data file: starting the file over", zap.String(keyFile, sf.rf.Path))
	} else if !errors.Is(err, fs.ErrNotExist) {
		s.log.Info("journal does not match: starting the file over", zap.String(keyFile, sf.rf.Path), zap.Error(err))
	} else if fi, err := os.Stat(sf.path); err == nil {
		if fi.Mode().IsRegular() && fi.Size() == sf.rf.Size {
			return nil, nil // complete; verified before install
		}
		s.log.Info("staged file has the wrong size: starting it over", zap.String(keyFile, sf.rf.Path), zap.Int64("size", fi.Size()))
	}
	// Start over: the journal first, so that a crash never leaves a data
	// file without a journal (which would pass for complete).
	if err := os.RemoveAll(sf.path); err != nil {
		return nil, fmt.Errorf("syncer: %w", err)
	}
	if sf.rf.Size == 0 {
		os.Remove(sf.jpath)
		if err := os.MkdirAll(filepath.Dir(sf.path), 0o755); err != nil {
			return nil, fmt.Errorf("syncer: %w", err)
		}
		if err := os.WriteFile(sf.path, nil, 0o644); err != nil {
			return nil, fmt.Errorf("syncer: %w", err)
		}
		return nil, nil
	}
	for _, d := range []string{filepath.Dir(sf.path), filepath.Dir(sf.jpath)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("syncer: %w", err)
		}
	}
	j, err := createJournal(sf.jpath, sf.hdr)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(sf.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		j.close()
		return nil, fmt.Errorf("syncer: %w", err)
	}
	// Reserve the space now, so that running out shows here rather than
	// halfway through; filesystems without fallocate get a sparse file.
	if err := unix.Fallocate(int(f.Fd()), 0, 0, sf.rf.Size); err != nil {
		if !errors.Is(err, unix.EOPNOTSUPP) {
			f.Close()
			j.close()
			return nil, fmt.Errorf("syncer: preallocate %s: %w", sf.path, err)
		}
		if err := f.Truncate(sf.rf.Size); err != nil {
			f.Close()
			j.close()
			return nil, fmt.Errorf("syncer: %w", err)
		}
	}
	sf.f, sf.j = f, j
	return make([]bool, sf.hdr.parts()), nil
}

// finishFile makes a fully downloaded file durable and drops its journal.
func (s *Syncer) finishFile(sf *stagedFile) error {
	if err := sf.f.Sync(); err != nil {
		return fmt.Errorf("syncer: fsync %s: %w", sf.path, err)
	}
	if err := sf.f.Close(); err != nil {
		return fmt.Errorf("syncer: close %s: %w", sf.path, err)
	}
	sf.f = nil
	sf.j.close()
	sf.j = nil
	if err := os.Remove(sf.jpath); err != nil {
		return fmt.Errorf("syncer: %w", err)
	}
	if sf.inc == nil {
		sf.hashq <- sf // never blocks: room for every file
	}
	return nil
}

// hashWritten records that part idx of sf is written and, unless another
// worker is at it, hashes forward from the first unhashed part as far as
// the parts are contiguous (buf is scratch space). When the whole file is
// hashed it sets sf.verr and sf.hashed. An error is a failed local read.
func (sf *stagedFile) hashWritten(idx int, buf []byte) error {
	ph := sf.inc
	ph.mu.Lock()
	ph.done[idx] = true
	if ph.busy {
		ph.mu.Unlock()
		return nil
	}
	ph.busy = true
	for ph.next < len(ph.done) && ph.done[ph.next] {
		i := ph.next
		ph.mu.Unlock()
		off := int64(i) * sf.hdr.PartSize
		n := min(sf.hdr.PartSize, sf.rf.Size-off)
		if _, err := io.CopyBuffer(ph.h, io.NewSectionReader(ph.rf, off, n), buf); err != nil {
			ph.mu.Lock()
			ph.busy = false
			ph.mu.Unlock()
			return fmt.Errorf("syncer: hash %s: %w", sf.path, err)
		}
		ph.mu.Lock()
		ph.next++
	}
	ph.busy = false
	if ph.next == len(ph.done) && !sf.hashed {
		if got := hex.EncodeToString(ph.h.Sum(nil)); got != sf.rf.SHA256 {
			sf.verr = fmt.Errorf("%s: sha256 %s, release says %s", sf.rf.Path, got, sf.rf.SHA256)
		}
		sf.hashed = true
		ph.rf.Close()
		ph.rf = nil
	}
	ph.mu.Unlock()
	return nil
}

// fetchWithRetry downloads one part, retrying transient failures with backoff.
func (s *Syncer) fetchWithRetry(ctx context.Context, p part, buf []byte, lim *limiter) error {
	for attempt := 1; ; attempt++ {
		err := s.fetch(ctx, p, buf, lim)
		if err == nil {
			break
		}
		var perm permanent
		switch {
		case ctx.Err() != nil:
			return context.Cause(ctx)
		case errors.Is(err, objstore.ErrNotExist), errors.As(err, &perm):
			return err
		case attempt >= s.opts.MaxAttempts:
			return fmt.Errorf("syncer: %s bytes %d-%d: giving up after %d attempts: %w", p.sf.key, p.off, p.off+p.len-1, attempt, err)
		}
		d := backoff(attempt, s.opts.RetryBase, s.opts.RetryMax)
		s.log.Warn("part failed, retrying", zap.String(keyFile, p.sf.rf.Path), zap.Int("part", p.idx),
			zap.Int("attempt", attempt), zap.Duration("backoff", d), zap.Error(err))
		if err := sleep(ctx, d); err != nil {
			return context.Cause(ctx)
		}
	}
	return nil
}

// committer makes finished parts durable in groups: workers hand it parts
// whose bytes are written; it fsyncs each file concerned once, then appends
// their records to the journals with one fsync each, and finishes files
// whose last part it committed. Workers never wait for an fsync. Commits
// are at least commitInterval apart, so that one fsync covers many parts and
// the disk writes back in large runs instead of being forced every few
// megabytes (which halved the download rate). A crash loses the parts in
// flight and those finished since the last commit: at most about
// commitInterval of download.
type committer struct {
	s       *Syncer
	mu      sync.Mutex
	pend    []part
	stopped bool
	wake    chan struct{}
	stopc   chan struct{} // closed by stop
}

// commitInterval is the least time between two commits of the journals.
const commitInterval = 500 * time.Millisecond

func newCommitter(s *Syncer) *committer {
	return &committer{s: s, wake: make(chan struct{}, 1), stopc: make(chan struct{})}
}

func (c *committer) add(p part) {
	c.mu.Lock()
	c.pend = append(c.pend, p)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// stop makes run commit what is pending and return.
func (c *committer) stop() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	close(c.stopc)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *committer) run() error {
	for range c.wake {
		c.mu.Lock()
		batch, stopped := c.pend, c.stopped
		c.pend = nil
		c.mu.Unlock()
		if err := c.commit(batch); err != nil {
			return err
		}
		if stopped {
			c.mu.Lock()
			left := len(c.pend)
			c.mu.Unlock()
			if left == 0 {
				return nil
			}
			continue
		}
		t := time.NewTimer(commitInterval)
		select {
		case <-t.C:
		case <-c.stopc:
		}
		t.Stop()
	}
	return nil
}

func (c *committer) commit(batch []part) error {
	if len(batch) == 0 {
		return nil
	}
	byFile := map[*stagedFile][]int{}
	var order []*stagedFile
	for _, p := range batch {
		if byFile[p.sf] == nil {
			order = append(order, p.sf)
		}
		byFile[p.sf] = append(byFile[p.sf], p.idx)
	}
	for _, sf := range order {
		if err := unix.Fdatasync(int(sf.f.Fd())); err != nil {
			return fmt.Errorf("syncer: fsync %s: %w", sf.path, err)
		}
		if err := sf.j.markDone(byFile[sf]...); err != nil {
			return err
		}
		if sf.remaining.Add(-int64(len(byFile[sf]))) == 0 {
			if err := c.s.finishFile(sf); err != nil {
				return err
			}
		}
	}
	return nil
}

// fetch reads one part into its place in the staged file. A body shorter
// or longer than asked is an error. The committer makes it durable.
func (s *Syncer) fetch(ctx context.Context, p part, buf []byte, lim *limiter) error {
	rc, err := s.opts.Source.ReadRange(ctx, p.sf.key, p.off, p.len)
	if err != nil {
		return err
	}
	defer rc.Close()
	buf = lim.chunk(buf)
	var got int64
	for {
		n, rerr := rc.Read(buf)
		if n > 0 {
			if got+int64(n) > p.len {
				return fmt.Errorf("syncer: %s: source sent more than the %d bytes asked from offset %d", p.sf.key, p.len, p.off)
			}
			if _, err := p.sf.f.WriteAt(buf[:n], p.off+got); err != nil {
				return permanent{fmt.Errorf("syncer: write %s: %w", p.sf.path, err)}
			}
			got += int64(n)
			s.stats.BytesDownloaded.Add(int64(n))
			if err := lim.wait(ctx, n); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("syncer: %s: read after %d of %d bytes: %w", p.sf.key, got, p.len, rerr)
		}
	}
	if got != p.len {
		return fmt.Errorf("%w: %s from offset %d: got %d of %d bytes", errTruncated, p.sf.key, p.off, got, p.len)
	}
	return nil
}

// removeUnlisted deletes regular files under dir whose slash path is not
// listed (left by an earlier, different release of the same name).
func removeUnlisted(dir string, listed map[string]bool) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if !listed[filepath.ToSlash(rel)] {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("syncer: remove stray %s: %w", p, err)
			}
		}
		return nil
	})
}

// verify reports the files whose size or SHA-256 differ from the release
// (hashing any the download did not), deletes them (they will be
// downloaded again) and returns an error naming each.
func (s *Syncer) verify(ctx context.Context, t *target, files []*stagedFile) error {
	start := time.Now()
	buf := make([]byte, 1<<20)
	var bad []error
	for _, sf := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !sf.hashed {
			sf.verr, sf.hashed = verifyFile(sf.path, sf.rf, buf), true
		}
		if sf.verr == nil {
			s.stats.FilesVerified.Add(1)
			continue
		}
		bad = append(bad, sf.verr)
		if err := os.Remove(sf.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			bad = append(bad, err)
		}
		s.log.Error("staged file failed verification: deleted", zap.String(keyVersion, t.version),
			zap.String(keyFile, sf.rf.Path), zap.Error(sf.verr))
	}
	if len(bad) > 0 {
		return failure(KindChecksum, fmt.Errorf("%w: version %s: %w", ErrVerify, t.version, errors.Join(bad...)))
	}
	s.log.Info("verified", zap.String(keyVersion, t.version), zap.Int("files", len(files)), zap.Duration("took", time.Since(start)))
	return nil
}

func verifyFile(p string, rf release.File, buf []byte) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("%s: %w", rf.Path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, buf)
	if err != nil {
		return fmt.Errorf("%s: read: %w", rf.Path, err)
	}
	if n != rf.Size {
		return fmt.Errorf("%s: size %d, release says %d", rf.Path, n, rf.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != rf.SHA256 {
		return fmt.Errorf("%s: sha256 %s, release says %s", rf.Path, got, rf.SHA256)
	}
	return nil
}

// logProgress logs a long download's progress every ProgressInterval: bytes
// received of total, the rate since start, and an ETA at that rate. Its
// goroutine is owned by the caller, which stops it (and waits) with the
// returned function.
func (s *Syncer) logProgress(v string, total int64, start time.Time, before int64) (stop func()) {
	if s.opts.ProgressInterval < 0 {
		return func() {}
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(s.opts.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			got := s.stats.BytesDownloaded.Load() - before
			el := time.Since(start)
			rate := float64(got) / max(el.Seconds(), 1e-9)
			fields := []zap.Field{zap.String(keyVersion, v), zap.Int64("bytes", got), zap.Int64("total", total),
				zap.Float64("percent", 100*float64(got)/float64(max(total, 1))),
				zap.Float64("mb_per_s", rate/1e6), zap.Duration("elapsed", el.Round(time.Second))}
			if rate > 0 && got < total {
				fields = append(fields, zap.Duration("eta", time.Duration(float64(total-got)/rate*float64(time.Second)).Round(time.Second)))
			}
			s.log.Info("download progress", fields...)
		}
	}()
	return func() { close(done); <-exited }
}
