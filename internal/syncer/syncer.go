// Package syncer keeps a local volume's live dataset version in step with a
// remote source: it resolves the version the source says to serve, downloads
// it into staging (parallel ranged reads, resumable after a crash, optionally
// bandwidth-limited), verifies every file against the release, installs it
// with one rename, points the manifest at it, and deletes old versions the
// server no longer holds open. See package manifest for the volume layout.
//
// One pass (SyncOnce):
//
//  1. Resolve the target: the pinned version, else the greatest complete one;
//     fetch and validate its release file.
//  2. Installed and live: done. Installed but not live (a rollback to a version
//     still on disk): rewrite the manifest only.
//  3. Otherwise check free space, download into staging/<v>/ (journals in
//     staging/<v>+journal/ record finished parts), verify sizes, SHA-256 and
//     dataset.json, copy the release file in, fsync everything, rename into
//     versions/<v>, and write the manifest (Previous = the former live one).
//  4. GC versions beyond Options.Keep that the server does not hold open.
//
// A failed pass leaves the live version and the manifest untouched; the next
// pass resumes the download.
package syncer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/batchkv/batchkv/internal/manifest"
	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/release"
	"github.com/batchkv/batchkv/internal/store"
)

// Log field keys.
const (
	keyComponent = "component"
	keyVersion   = "version"
	keyFile      = "file"
	keyKind      = "kind"
)

// Action says what a pass did.
type Action string

// Actions of a pass.
const (
	// ActionNone: the target was already live.
	ActionNone Action = "none"
	// ActionActivated: the target was on disk; only the manifest changed.
	ActionActivated Action = "activated"
	// ActionInstalled: the target was downloaded, verified and installed.
	ActionInstalled Action = "installed"
	// ActionWaiting: the target is installed, but not every shard of the
	// (sharded) version is ready yet: the manifest still names the old
	// version. Run starts the next pass at once.
	ActionWaiting Action = "waiting"
)

// Result describes a successful pass.
type Result struct {
	Version  string
	Previous string
	Action   Action
	// Bytes is what this pass received from the source.
	Bytes int64
	// ActivateAt is the activation time written to the manifest (sharded
	// datasets; zero otherwise).
	ActivateAt time.Time
	// Late: the activation time had passed when this syncer learnt it, so
	// the version went live at once.
	Late bool
	// Missing lists the shards not ready yet (ActionWaiting).
	Missing []int
}

// Syncer syncs one root from one source. SyncOnce and Run must not be called
// concurrently, nor two Syncers run on one root.
type Syncer struct {
	opts  Options
	log   *zap.Logger
	stats Stats
	// src is the source; opts.Source is the view the download reads (for a
	// sharded syncer, the shard's files).
	src objstore.Store
	// lastTarget is the previous pass's target; pending the version
	// installed and waiting for the other shards (kept by GC); lastMissing
	// the shards last reported missing. Only the pass touches them.
	lastTarget, pending, lastMissing string
	lastMissingLog                   time.Time
}

// New validates opts (after filling defaults) and returns a Syncer.
func New(opts Options) (*Syncer, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Syncer{opts: opts, log: opts.Logger.With(zap.String(keyComponent, "syncer")), src: opts.Source}
	if opts.Sharded {
		s.opts.Source = shardView{Store: opts.Source, shard: opts.Shard}
		s.log = s.log.With(zap.Int("shard", opts.Shard), zap.String("node", opts.Node))
	}
	return s, nil
}

// Stats returns the syncer's live counters.
func (s *Syncer) Stats() *Stats { return &s.stats }

// Run syncs every Options.Interval (±10%) until ctx is done, then returns
// nil. A failed pass is logged and counted; the next one tries again.
func (s *Syncer) Run(ctx context.Context) error {
	s.log.Info("syncer started", zap.String("source", s.src.String()), zap.String("root", s.opts.Root),
		zap.Duration("interval", s.opts.Interval), zap.Int("keep", s.opts.Keep), zap.Bool("sharded", s.opts.Sharded))
	for {
		res, _ := s.SyncOnce(ctx) // logged and counted inside
		wait := jitter(s.opts.Interval)
		if res.Action == ActionWaiting {
			wait = 0 // the pass polled the markers for an interval already
		}
		if sleep(ctx, wait) != nil {
			s.log.Info("syncer stopped")
			return nil
		}
	}
}

// SyncOnce runs one pass. On success the target version is installed and
// the manifest names it. Errors are *Error values carrying their Kind.
func (s *Syncer) SyncOnce(ctx context.Context) (Result, error) {
	s.stats.Passes.Add(1)
	before := s.stats.BytesDownloaded.Load()
	unlock, err := s.lock()
	if err != nil {
		s.stats.fail(err)
		s.log.Error("sync failed", zap.Stringer(keyKind, KindOf(err)), zap.Error(err))
		return Result{}, err
	}
	defer unlock()
	res, err := s.pass(ctx)
	res.Bytes = s.stats.BytesDownloaded.Load() - before
	switch {
	case err != nil && ctx.Err() != nil:
		err = ctx.Err()
		s.log.Info("pass interrupted", zap.Error(err))
	case err != nil:
		s.stats.fail(err)
		s.log.Error("sync failed", zap.Stringer(keyKind, KindOf(err)), zap.Error(err))
	case res.Action == ActionWaiting:
		// Not a failure (the old version keeps serving, as designed), not
		// a success either: LastSuccess stays, so its age alerts.
	default:
		s.stats.LastSuccess.Store(s.opts.Now().UnixNano())
		s.log.Info("in sync", zap.String(keyVersion, res.Version), zap.String("action", string(res.Action)),
			zap.String("previous", res.Previous), zap.Int64("bytes_downloaded", res.Bytes))
	}
	// GC runs after failed passes too: old versions must not fill the disk
	// while a new one keeps failing.
	if m, merr := manifest.Read(s.opts.Root); merr == nil && ctx.Err() == nil {
		if gerr := s.gc(m.Version, m.Previous, s.pending); gerr != nil {
			s.stats.fail(gerr)
			s.log.Error("gc failed", zap.Error(gerr))
		}
	}
	if free, ferr := diskFree(s.opts.Root); ferr == nil {
		s.stats.FreeBytes.Store(free)
	}
	return res, err
}

// lock creates the root if needed and takes its syncer lock.
func (s *Syncer) lock() (unlock func(), err error) {
	if err := os.MkdirAll(s.opts.Root, 0o755); err != nil {
		return nil, failure(KindInstall, fmt.Errorf("syncer: root: %w", err))
	}
	unlock, err = lockRoot(s.opts.Root)
	if err != nil {
		return nil, failure(KindInstall, err)
	}
	return unlock, nil
}

func (s *Syncer) pass(ctx context.Context) (Result, error) {
	// Trash from an interrupted GC goes whatever the source says.
	if err := s.cleanStaging(""); err != nil {
		s.log.Warn("cleaning staging", zap.Error(err))
	}
	s.ensureReserve()
	t, err := s.resolveTarget(ctx)
	if err != nil {
		return Result{}, err
	}
	v := t.version
	if v != s.lastTarget {
		s.stats.VersionsSeen.Add(1)
		s.lastTarget = v
	}
	cur, err := manifest.Read(s.opts.Root)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			// A manifest the server cannot read either: replacing it is the fix.
			s.log.Warn("ignoring unreadable manifest", zap.Error(err))
		}
		cur = nil
	}
	if s.opts.Sharded && cur == nil {
		if t, err = s.bootstrapTarget(ctx, t); err != nil {
			return Result{}, err
		}
		v = t.version
	}
	res := Result{Version: v}
	if cur != nil && cur.Version != v {
		res.Previous = cur.Version
	}
	if err := s.cleanStaging(v); err != nil {
		s.log.Warn("cleaning staging", zap.Error(err))
	}

	if err := s.repairInstalled(t); err != nil { // a damaged copy is installed again (repair.go)
		return res, err
	}
	if fi, err := os.Stat(manifest.VersionDir(s.opts.Root, v)); err == nil && fi.IsDir() {
		if cur != nil && cur.Version == v {
			s.pending = ""
			s.stats.Waiting.Store(0)
			res.Action = ActionNone
			return res, nil
		}
		if s.opts.Sharded {
			if err := checkInstalledShard(s.opts.Root, t); err != nil {
				return res, err
			}
			return s.coordinate(ctx, t, cur, res, ActionActivated)
		}
		if err := s.writeManifest(t, res.Previous); err != nil {
			return res, err
		}
		if cur != nil {
			s.stats.Rollbacks.Add(1)
		}
		s.log.Info("activated a version already on disk", zap.String(keyVersion, v), zap.String("previous", res.Previous),
			zap.String("action", "rollback or re-activation"))
		res.Action = ActionActivated
		return res, nil
	}

	s.log.Info("new target version", zap.String(keyVersion, v),
		zap.Int("files", len(t.rel.Files)), zap.Int64("bytes", t.rel.TotalSize()))
	files, err := s.download(ctx, t, res.Previous)
	if err != nil {
		return res, err
	}
	if err := s.verify(ctx, t, files); err != nil {
		return res, err
	}
	if err := checkMeta(stagingDir(s.opts.Root, v), t.rel); err != nil {
		return res, err
	}
	if err := s.install(t); err != nil {
		return res, err
	}
	if s.opts.Sharded {
		s.stats.Installs.Add(1)
		return s.coordinate(ctx, t, cur, res, ActionInstalled)
	}
	if err := s.writeManifest(t, res.Previous); err != nil {
		return res, err
	}
	s.stats.Installs.Add(1)
	res.Action = ActionInstalled
	return res, nil
}

// checkMeta checks the staged dataset.json against the release's metadata.
func checkMeta(dir string, rel *release.Release) error {
	m, err := store.ReadMeta(dir)
	if err != nil {
		return failure(KindMetadata, fmt.Errorf("syncer: version %s: %w", rel.Version, err))
	}
	want := rel.Meta
	if rel.Dataset != "" && m.Name != rel.Dataset {
		// The manifest will name rel.Dataset, and the server checks it.
		return failure(KindMetadata, fmt.Errorf("syncer: version %s: %s names dataset %q, the release %q",
			rel.Version, store.MetaFile, m.Name, rel.Dataset))
	}
	if (m.Shard == nil) != (want.Shard == nil) || m.Shard != nil && *m.Shard != *want.Shard {
		return failure(KindMetadata, fmt.Errorf("syncer: version %s: %s shard %s disagrees with the release's %s",
			rel.Version, store.MetaFile, shardString(m.Shard), shardString(want.Shard)))
	}
	if m.Version != rel.Version || m.Name != want.Name || m.Keys != want.Keys || m.Strings != want.Strings || m.Hashes != want.Hashes {
		return failure(KindMetadata, fmt.Errorf("syncer: version %s: %s (name %q version %q keys %d) disagrees with the release (name %q version %q keys %d)",
			rel.Version, store.MetaFile, m.Name, m.Version, m.Keys, want.Name, rel.Version, want.Keys))
	}
	return nil
}

// install makes the verified staging directory durable and renames it into
// versions/ in one step.
func (s *Syncer) install(t *target) error {
	root, v := s.opts.Root, t.version
	sdir := stagingDir(root, v)
	if err := store.WriteFileAtomic(filepath.Join(sdir, release.FileName), t.raw, 0o644); err != nil {
		return failure(KindInstall, fmt.Errorf("syncer: %w", err))
	}
	if err := syncTree(sdir); err != nil {
		return failure(KindInstall, err)
	}
	vdir := filepath.Join(root, manifest.VersionsDir)
	if _, err := os.Stat(vdir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(vdir, 0o755); err != nil {
			return failure(KindInstall, fmt.Errorf("syncer: %w", err))
		}
		if err := store.SyncDir(root); err != nil {
			return failure(KindInstall, err)
		}
	}
	if err := os.Rename(sdir, manifest.VersionDir(root, v)); err != nil {
		return failure(KindInstall, fmt.Errorf("syncer: install %s: %w", v, err))
	}
	if err := store.SyncDir(vdir); err != nil {
		return failure(KindInstall, err)
	}
	if err := os.RemoveAll(journalDir(root, v)); err != nil {
		s.log.Warn("removing journals", zap.Error(err))
	}
	if err := store.SyncDir(filepath.Join(root, manifest.StagingDir)); err != nil {
		return failure(KindInstall, err)
	}
	s.log.Info("installed", zap.String(keyVersion, v))
	return nil
}

// writeManifest points the manifest at t (atomically; the rename is what the
// server watches for). activateAt, when set, replaces the release's.
func (s *Syncer) writeManifest(t *target, previous string, activateAt ...time.Time) error {
	m := &manifest.Manifest{
		Format:      manifest.FormatVersion,
		Dataset:     t.rel.Dataset,
		Version:     t.version,
		Previous:    previous,
		InstalledAt: s.opts.Now().UTC(),
		ActivateAt:  t.rel.ActivateAt,
	}
	if len(activateAt) > 0 {
		at := activateAt[0].UTC()
		m.ActivateAt = &at
	}
	err := manifest.Write(s.opts.Root, m)
	if errors.Is(err, syscall.ENOSPC) && os.Remove(filepath.Join(s.opts.Root, reserveFile)) == nil {
		// The disk filled after the version's files were written: the
		// reserve gives the few bytes the manifest needs.
		s.log.Warn("disk full: released the manifest reserve to write the manifest", zap.String(keyVersion, t.version))
		err = manifest.Write(s.opts.Root, m)
	}
	if err != nil {
		return failure(KindInstall, fmt.Errorf("syncer: %w", err))
	}
	s.ensureReserve()
	return nil
}

// reserveFile holds disk space for the manifest: a version whose files were
// written (their space is reserved before the download) must not then be
// stuck behind a disk filled by someone else meanwhile, unable to write the
// few hundred bytes that make it live (test/faults TestDiskFull).
const reserveFile = ".manifest-reserve"

// reserveSize is far more than a manifest (and its rename) needs.
const reserveSize = 64 << 10

// ensureReserve creates the reserve file if it is missing; a failure (a full
// disk) is retried at the next pass.
func (s *Syncer) ensureReserve() {
	p := filepath.Join(s.opts.Root, reserveFile)
	if fi, err := os.Stat(p); err == nil && fi.Size() == reserveSize {
		return
	}
	err := store.WriteFileAtomic(p, make([]byte, reserveSize), 0o600)
	if err != nil {
		os.Remove(p)
		s.log.Debug("manifest reserve", zap.Error(err))
	}
}

// syncTree fsyncs every file and directory under dir, directories after
// their contents.
func syncTree(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
	if err != nil {
		return fmt.Errorf("syncer: fsync %s: %w", dir, err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := store.SyncDir(dirs[i]); err != nil {
			return err
		}
	}
	return nil
}
