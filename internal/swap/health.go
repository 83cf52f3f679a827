package swap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/batchkv/batchkv/internal/manifest"
	"github.com/batchkv/batchkv/internal/release"
	"go.uber.org/zap"
)

// Health of the live version.
//
// A version directory is never modified after install, but a disk, an
// operator or a bug can still delete or truncate its files under a running
// server. Pebble keeps the files it opened, so reads may go on working (a
// deleted file) or fail (a truncated one: such reads answer an error reply
// and are logged). On every poll the watcher checks the live version's files
// against its release file (present, with their listed sizes): a damaged
// version makes Health return an error, which fails readiness, is logged
// and counted, until the syncer reinstalls the version (it checks the same
// and reinstalls a damaged copy). Once the directory is a new, intact
// install, the watcher reopens it: Pebble refuses to open a path this
// process already has open, so the damaged instance is unpublished first,
// and data commands answer -LOADING for the moment the reopen takes (its
// reads were failing anyway).
type health struct {
	mu       sync.Mutex
	err      error  // non-nil: the live version is damaged
	version  string // the live version the fields below describe
	ino      uint64 // its directory's inode when first checked
	damaged  int64  // damage detections
	reopened int64
}

// ErrDamaged reports a live version whose files no longer match its release.
var ErrDamaged = errors.New("swap: live version damaged")

// Health returns nil while the live version's files are intact (or no
// version is live), else an error saying what is wrong.
func (w *Watcher) Health() error {
	w.health.mu.Lock()
	defer w.health.mu.Unlock()
	return w.health.err
}

// HealthCounts returns how many times a live version was found damaged and
// how many times a reinstalled one was reopened.
func (w *Watcher) HealthCounts() (damaged, reopened int64) {
	w.health.mu.Lock()
	defer w.health.mu.Unlock()
	return w.health.damaged, w.health.reopened
}

// VerifyFiles checks an installed version directory against the release
// file in it: every listed file present with its listed size.
func VerifyFiles(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, release.FileName))
	if err != nil {
		return fmt.Errorf("release file: %w", err)
	}
	rel, err := release.Parse(b)
	if err != nil {
		return err
	}
	return checkFiles(dir, rel)
}

// checkFiles checks that every file rel lists is in dir with its listed size
// (the syncer verified the SHA-256 sums at install; sizes catch truncation and
// deletion since).
func checkFiles(dir string, rel *release.Release) error {
	for _, f := range rel.Files {
		fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			return fmt.Errorf("file %s: %w", f.Path, err)
		}
		if fi.Size() != f.Size {
			return fmt.Errorf("file %s: size %d, release says %d", f.Path, fi.Size(), f.Size)
		}
	}
	return nil
}

func dirInode(dir string) uint64 {
	fi, err := os.Stat(dir)
	if err != nil {
		return 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// checkHealth checks the live version's files; Run calls it on every poll.
// Only versions installed by the syncer (with a release file) are checked.
func (w *Watcher) checkHealth(ctx context.Context) {
	live := w.liveVersion()
	if live == "" || w.pending != nil {
		return
	}
	dir := manifest.VersionDir(w.opts.Root, live)
	h := &w.health
	h.mu.Lock()
	if h.version != live {
		// A new live version, opened moments ago from this directory.
		h.version, h.ino, h.err = live, dirInode(dir), nil
	}
	wasDamaged, ino := h.err != nil, h.ino
	h.mu.Unlock()

	verr := VerifyFiles(dir)
	now := dirInode(dir)
	switch {
	case verr == nil && now != ino && now != 0:
		// An intact new install of the live version (the syncer repaired
		// it, or an operator re-installed it): the open instance may read
		// the old, damaged files; reopen.
		w.reopen(ctx, live, dir, wasDamaged)
	case verr != nil && !wasDamaged:
		err := fmt.Errorf("%w: version %s: %v", ErrDamaged, live, verr)
		h.mu.Lock()
		h.err = err
		h.damaged++
		h.mu.Unlock()
		w.log.Error("live version damaged on disk: reads may fail; not ready until it is reinstalled",
			zap.String("version", live), zap.Error(verr))
	case verr == nil && wasDamaged && now == ino:
		// Put back in place (a file restored): intact again.
		h.mu.Lock()
		h.err = nil
		h.mu.Unlock()
		w.log.Info("live version intact again", zap.String("version", live))
	}
}

// reopen replaces the open instance of the live version by a fresh one of
// the reinstalled directory.
func (w *Watcher) reopen(ctx context.Context, live, dir string, wasDamaged bool) {
	m, err := manifest.Read(w.opts.Root)
	if err != nil || m.Version != live {
		return // the manifest moves on: Check handles it
	}
	start := time.Now()
	w.log.Warn("the live version was reinstalled: reopening it", zap.String("version", live), zap.Bool("was_damaged", wasDamaged))
	if old := w.cur.Swap(nil); old != nil {
		t := time.NewTimer(w.opts.CloseWait)
		select {
		case <-old.Closed():
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			if old.tryRef() {
				w.cur.Swap(old)
			}
			return
		case <-t.C:
			// Readers still hold it: Pebble will refuse the path. Keep it
			// serving and retry at the next poll.
			if old.tryRef() {
				w.cur.Swap(old)
				w.log.Warn("reopen postponed: the old instance still has readers", zap.String("version", live))
				return
			}
		}
	}
	db, err := w.openAndValidate(m, dir)
	if err != nil {
		// Nothing is live now: data commands answer -LOADING and readiness
		// fails; the next poll tries again.
		w.health.mu.Lock()
		w.health.err = fmt.Errorf("%w: version %s: reopening: %v", ErrDamaged, live, err)
		w.health.mu.Unlock()
		w.fail(err, live, time.Since(start))
		return
	}
	w.health.mu.Lock()
	w.health.version, w.health.ino, w.health.err = live, dirInode(dir), nil
	w.health.reopened++
	w.health.mu.Unlock()
	w.publish(NewVersion(db, w.closed), m, start)
}
