package syncer

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/batchkv/batchkv/internal/manifest"
	"github.com/batchkv/batchkv/internal/release"
	"github.com/batchkv/batchkv/internal/store"
)

// trashPrefix names directories being deleted under staging/. Versions are
// renamed there first, so versions/ never shows a half-deleted version.
const trashPrefix = "trash+"

// heldOpen reports whether another process holds versionDir open. The server
// opens a version with Pebble, which keeps a POSIX (fcntl) write lock on
// db/LOCK while the database is open; probing for that lock without waiting
// tells whether it is held. fcntl locks belong to a process, so the probe is
// meaningful only because the syncer never opens versions itself; the probe
// lock is released at once (closing the descriptor releases it).
func heldOpen(versionDir string) (bool, error) {
	p := filepath.Join(versionDir, store.DBDir, "LOCK")
	// Write access is needed for a write lock; the file is not created: a
	// version without a LOCK file has never been opened.
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("syncer: probe lock %s: %w", p, err)
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return true, nil
		}
		return false, fmt.Errorf("syncer: probe lock %s: %w", p, err)
	}
	lk.Type = unix.F_UNLCK
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
		return false, fmt.Errorf("syncer: release probe lock %s: %w", p, err)
	}
	return false, nil
}

// gc deletes installed versions beyond the Keep newest, never live, nor
// previous (when Keep allows two), nor one the server holds open. Before a
// download that lacks space it runs with the target as live, as it will be
// once installed, so that the version the install would retire anyway makes
// room for the new one; the version live during the download is passed in
// also, which keeps it whatever Keep says.
func (s *Syncer) gc(live, previous string, also ...string) error {
	vdir := filepath.Join(s.opts.Root, manifest.VersionsDir)
	ents, err := os.ReadDir(vdir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return failure(KindGC, fmt.Errorf("syncer: gc: %w", err))
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() && release.ValidName(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	keep := map[string]bool{live: true}
	if s.opts.Keep >= 2 && previous != "" {
		keep[previous] = true
	}
	for _, v := range also {
		if v != "" {
			keep[v] = true
		}
	}
	// Newest first: version names sort in time order.
	slices.Sort(names)
	slices.Reverse(names)
	for _, n := range names {
		if len(keep) >= s.opts.Keep {
			break
		}
		keep[n] = true
	}
	var errs []error
	for _, n := range names {
		if keep[n] {
			continue
		}
		dir := filepath.Join(vdir, n)
		held, err := heldOpen(dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if held {
			s.log.Info("not deleting a version the server holds open", zap.String(keyVersion, n))
			continue
		}
		if err := s.trash(dir, n); err != nil {
			errs = append(errs, err)
			continue
		}
		s.stats.VersionsDeleted.Add(1)
		s.log.Info("deleted old version", zap.String(keyVersion, n))
	}
	if len(errs) > 0 {
		return failure(KindGC, fmt.Errorf("syncer: gc: %w", errors.Join(errs...)))
	}
	return nil
}

// trash moves dir (a version's directory) under staging/ with one rename,
// makes that durable, then removes it.
func (s *Syncer) trash(dir, name string) error {
	sdir := filepath.Join(s.opts.Root, manifest.StagingDir)
	if err := os.MkdirAll(sdir, 0o755); err != nil {
		return fmt.Errorf("syncer: %w", err)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	t := filepath.Join(sdir, trashPrefix+name+"+"+hex.EncodeToString(rnd[:]))
	if err := os.Rename(dir, t); err != nil {
		return fmt.Errorf("syncer: delete %s: %w", dir, err)
	}
	if err := store.SyncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.RemoveAll(t); err != nil {
		return fmt.Errorf("syncer: delete %s: %w", t, err)
	}
	return nil
}

// cleanStaging removes what an earlier run left under staging/ that is not
// the download of keep (keep "" removes every download) — trash, other
// versions' downloads and journals — and stray manifest temp files in root.
func (s *Syncer) cleanStaging(keep string) error {
	var errs []error
	sdir := filepath.Join(s.opts.Root, manifest.StagingDir)
	ents, err := os.ReadDir(sdir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range ents {
		n := e.Name()
		if keep != "" && (n == keep || n == keep+"+journal") {
			continue
		}
		// Only the download of a version we are not after any more, or trash.
		if keep == "" && !strings.HasPrefix(n, trashPrefix) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(sdir, n)); err != nil {
			errs = append(errs, err)
			continue
		}
		s.log.Info("removed stale staging entry", zap.String("entry", n))
	}
	tmps, _ := filepath.Glob(filepath.Join(s.opts.Root, "."+manifest.FileName+".tmp-*"))
	for _, p := range tmps {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("syncer: clean staging: %w", errors.Join(errs...))
	}
	return nil
}

// lockFile is held (flock) by the syncer for the length of a pass, so that
// two syncers pointed at one volume by mistake do not write the same
// staging files and manifest at once.
const lockFile = ".syncer.lock"

// ErrLocked reports another syncer working on the same root.
var ErrLocked = errors.New("syncer: another syncer is working on this root")

// lockRoot takes the root's syncer lock without waiting; the returned
// function releases it.
func lockRoot(root string) (unlock func(), err error) {
	p := filepath.Join(root, lockFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("syncer: lock %s: %w", p, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s is locked)", ErrLocked, p)
		}
		return nil, fmt.Errorf("syncer: lock %s: %w", p, err)
	}
	return func() { f.Close() }, nil
}
