package swap

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/batchkv/batchkv/internal/manifest"
	"github.com/batchkv/batchkv/internal/release"
	"github.com/batchkv/batchkv/internal/store"
	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// Options configures a Watcher. Zero fields take the defaults stated.
type Options struct {
	// Root is the shared volume the syncer installs versions into. Required.
	Root string
	// Cache is the block cache shared by every version the watcher opens
	// (nil: each version gets a private one, and no block warm-up).
	Cache *store.Cache
	// PollInterval is how often the manifest is re-read even without an
	// fsnotify event (some volumes never deliver one). Default 1s.
	PollInterval time.Duration
	// Debounce delays the check after an fsnotify event, so a burst of events
	// from one rename is handled once. Default 20ms.
	Debounce time.Duration
	// CloseWait bounds how long to wait for a replaced instance of the same
	// version to close before reopening it (Pebble refuses to open a directory
	// twice in one process). Default 30s.
	CloseWait time.Duration
	// Sampler, if set, supplies the keys clients read now, to warm new versions.
	Sampler *Sampler
	// WarmMax bounds the warm-up of a new version (its blocks read into the
	// cache before it goes live; a coordinated activate_at bounds it too).
	// Default 10 s.
	WarmMax time.Duration
	// WarmShare is the part of one CPU the warm-up may use, so that the live
	// version's clients keep theirs. Default 0.2: in make bench-swap, 0.5
	// doubled the p99 of the swap window, 0.2 kept it within 1.3x of steady
	// state (docs/BENCHMARKS.md).
	WarmShare float64
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// CheckMeta, if set, must accept a version's metadata before it is
	// swapped in (cluster mode: the version is this server's shard).
	CheckMeta func(store.Meta) error
	// OnSwap, if set, is called after each successful swap and each failure,
	// with the stats at that moment (for metrics).
	OnSwap func(Stats, time.Duration, error)
}

func (o *Options) ensureDefaults() {
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Debounce <= 0 {
		o.Debounce = 20 * time.Millisecond
	}
	if o.CloseWait <= 0 {
		o.CloseWait = 30 * time.Second
	}
	if o.WarmMax <= 0 {
		o.WarmMax = 10 * time.Second
	}
	if o.WarmShare <= 0 {
		o.WarmShare = 0.2
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// Stats describes the watcher's history, for INFO and metrics.
type Stats struct {
	Dataset  string
	Version  string
	Previous string
	LoadedAt time.Time
	Swaps    int64
	Failures int64
	// LastError is the last failure's message, cleared by a successful swap.
	LastError string
	// Warmup is how long the live version's warm-up took (part of the
	// swap's duration), for metrics.
	Warmup time.Duration
}

// Watcher follows the shared volume's manifest and makes the version it
// names live in a Current: open read-only, validate against the release,
// warm, swap. A version that fails is not swapped in, the live one keeps
// serving, and the failure is retried only when the manifest changes.
type Watcher struct {
	opts Options
	cur  *Current
	log  *zap.Logger

	mu       sync.Mutex
	stats    Stats
	draining map[string]*Version // replaced versions not closed yet, by directory

	// Only accessed from the goroutine running Run (or Check in tests).
	handled  string        // manifest content last acted on (success or failure)
	warmed   time.Duration // the last opened version's warm-up time
	retrying string        // manifest content whose transient failure was reported
	pending  *pendingSwap
	health   health // the live version's files (health.go)
}

type pendingSwap struct {
	v     *Version
	at    time.Time
	timer *time.Timer
	m     *manifest.Manifest
}

// NewWatcher returns a watcher that publishes into cur.
func NewWatcher(cur *Current, opts Options) *Watcher {
	opts.ensureDefaults()
	return &Watcher{
		opts:     opts,
		cur:      cur,
		log:      opts.Logger.Named("swap"),
		draining: map[string]*Version{},
	}
}

// Stats returns a snapshot of the watcher's stats.
func (w *Watcher) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Open holds the names of versions the watcher has open: the live one, any
// pending activation and replaced ones still draining.
func (w *Watcher) Open() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	if w.stats.Version != "" {
		out = append(out, w.stats.Version)
	}
	for dir := range w.draining {
		out = append(out, filepath.Base(dir))
	}
	return out
}

// Run follows the manifest until ctx is done. It checks once at start, so a
// restarted server serves the installed version at once.
func (w *Watcher) Run(ctx context.Context) error {
	events, closeWatch := w.watch()
	defer closeWatch()
	poll := time.NewTicker(w.opts.PollInterval)
	defer poll.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	defer w.dropPending()

	w.Check(ctx)
	for {
		var activate <-chan time.Time
		if w.pending != nil {
			activate = w.pending.timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil // watcher died: keep polling
				continue
			}
			if filepath.Base(ev.Name) == manifest.FileName {
				debounce.Reset(w.opts.Debounce)
			}
		case <-debounce.C:
			w.Check(ctx)
		case <-poll.C:
			if events == nil {
				events, closeWatch = w.rewatch(closeWatch)
			}
			w.Check(ctx)
			w.checkHealth(ctx)
		case <-activate:
			p := w.pending
			w.pending = nil
			w.publish(p.v, p.m, time.Now())
		}
	}
}

// watch starts an fsnotify watch on the root directory. Failing that (no
// inotify, root not created yet), the poll alone drives the watcher.
func (w *Watcher) watch() (<-chan fsnotify.Event, func()) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		w.log.Warn("fsnotify unavailable, polling only", zap.Error(err))
		return nil, func() {}
	}
	if err := fw.Add(w.opts.Root); err != nil {
		w.log.Debug("cannot watch root yet, polling", zap.String("root", w.opts.Root), zap.Error(err))
		fw.Close()
		return nil, func() {}
	}
	go func() {
		// Errors (queue overflow) are covered by the poll; drain them so the
		// watcher never blocks.
		for err := range fw.Errors {
			w.log.Debug("fsnotify error", zap.Error(err))
		}
	}()
	return fw.Events, func() { fw.Close() }
}

func (w *Watcher) rewatch(old func()) (<-chan fsnotify.Event, func()) {
	old()
	return w.watch()
}

// Check reads the manifest and acts on it if it changed since the last
// check. It is called by Run; tests call it directly.
func (w *Watcher) Check(ctx context.Context) {
	path := filepath.Join(w.opts.Root, manifest.FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) && w.handled != "\x00read-error" {
			w.handled = "\x00read-error"
			w.fail(fmt.Errorf("swap: read manifest: %w", err), "", 0)
		}
		return
	}
	if string(b) == w.handled {
		return
	}
	m, err := manifest.Parse(b)
	if err != nil {
		w.handled = string(b)
		w.fail(fmt.Errorf("swap: %s: %w", path, err), "", 0)
		return
	}
	start := time.Now()
	if w.pending != nil && w.pending.m.Version == m.Version {
		w.handled = string(b)
		return // already opened and waiting for its activation time
	}
	w.dropPending()
	if live := w.liveVersion(); live == m.Version {
		w.handled = string(b)
		return
	}
	dir := manifest.VersionDir(w.opts.Root, m.Version)
	if err := w.waitDrained(ctx, dir); err != nil {
		w.failTransient(string(b), err, m.Version, time.Since(start))
		return
	}
	db, err := w.openAndValidate(m, dir)
	if err != nil {
		if lockBusy(err) {
			// Another process (a server being replaced, during an
			// overlapping restart) still has the version open: that ends
			// by itself, so try again at the next poll.
			w.failTransient(string(b), err, m.Version, time.Since(start))
			return
		}
		w.handled = string(b)
		w.fail(err, m.Version, time.Since(start))
		return
	}
	w.handled, w.retrying = string(b), ""
	v := NewVersion(db, w.closed)
	if m.ActivateAt != nil && m.ActivateAt.After(time.Now()) {
		d := time.Until(*m.ActivateAt)
		w.log.Info("version ready, waiting for its activation time",
			zap.String("version", m.Version), zap.Time("activate_at", *m.ActivateAt))
		w.pending = &pendingSwap{v: v, at: *m.ActivateAt, timer: time.NewTimer(d), m: m}
		return
	}
	w.publish(v, m, start)
}

func (w *Watcher) liveVersion() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats.Version
}

// waitDrained waits for a replaced instance of dir to close, so that Pebble
// lets us open it again (a rollback to a version that is still draining).
func (w *Watcher) waitDrained(ctx context.Context, dir string) error {
	w.mu.Lock()
	old := w.draining[dir]
	w.mu.Unlock()
	if old == nil {
		return nil
	}
	t := time.NewTimer(w.opts.CloseWait)
	defer t.Stop()
	select {
	case <-old.Closed():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("swap: %s: the previous instance still has readers after %s", dir, w.opts.CloseWait)
	}
}

// openAndValidate opens the version and checks it against its release file
// and the manifest, then warms it.
func (w *Watcher) openAndValidate(m *manifest.Manifest, dir string) (*store.DB, error) {
	db, err := store.Open(dir, w.opts.Cache)
	if err != nil {
		return nil, fmt.Errorf("swap: open version %s: %w", m.Version, err)
	}
	if err := validate(db, m, dir); err != nil {
		db.Close()
		return nil, fmt.Errorf("swap: version %s: %w", m.Version, err)
	}
	if w.opts.CheckMeta != nil {
		if err := w.opts.CheckMeta(*db.Meta()); err != nil {
			db.Close()
			return nil, fmt.Errorf("swap: version %s: %w", m.Version, err)
		}
	}
	warmStart := time.Now()
	tables, err := db.WarmTables()
	if err == nil {
		err = db.WarmKeys(w.opts.Sampler.Keys())
	}
	var blocks int
	var blockBytes int64
	if err == nil && w.opts.Cache != nil && w.cur.Live() {
		// Then the rest of the version in key order, up to half the cache
		// (the live version keeps the other half meanwhile), within WarmMax
		// and before a coordinated activation time. Not for a first version:
		// with nothing live yet, serving at once beats serving warm (a
		// restart answers within the start-up target, docs/BENCHMARKS.md).
		deadline := warmStart.Add(w.opts.WarmMax)
		if m.ActivateAt != nil && m.ActivateAt.Add(-50*time.Millisecond).Before(deadline) {
			deadline = m.ActivateAt.Add(-50 * time.Millisecond)
		}
		blocks, blockBytes, err = db.WarmBlocks(deadline, w.opts.Cache.Stats().BlockBudget/2, w.opts.WarmShare)
	}
	w.warmed = time.Since(warmStart)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("swap: warm version %s: %w", m.Version, err)
	}
	w.log.Debug("version warmed", zap.String("version", m.Version), zap.Int("tables", tables),
		zap.Int("blocks", blocks), zap.Int64("block_bytes", blockBytes), zap.Duration("took", w.warmed))
	return db, nil
}

// validate checks an opened version against the manifest and against the
// release file the syncer installed beside it: same version and counts, and
// every listed file present with its listed size (the syncer verified the
// SHA-256 sums; sizes catch truncation and deletion since).
func validate(db *store.DB, m *manifest.Manifest, dir string) error {
	meta := db.Meta()
	if meta.Version != m.Version {
		return fmt.Errorf("metadata names version %q", meta.Version)
	}
	if m.Dataset != "" && meta.Name != m.Dataset {
		return fmt.Errorf("metadata names dataset %q, manifest %q", meta.Name, m.Dataset)
	}
	b, err := os.ReadFile(filepath.Join(dir, release.FileName))
	if err != nil {
		return fmt.Errorf("read release file: %w", err)
	}
	rel, err := release.Parse(b)
	if err != nil {
		return err
	}
	if rel.Version != m.Version || rel.Meta.Keys != meta.Keys || rel.Meta.Hashes != meta.Hashes || rel.Meta.Strings != meta.Strings {
		return fmt.Errorf("release file (version %s, %d keys) does not match the metadata (version %s, %d keys)",
			rel.Version, rel.Meta.Keys, meta.Version, meta.Keys)
	}
	return checkFiles(dir, rel)
}

// publish makes v live and records the swap.
func (w *Watcher) publish(v *Version, m *manifest.Manifest, start time.Time) {
	prev := w.cur.Swap(v)
	d := time.Since(start)
	w.mu.Lock()
	if prev != nil {
		// Swap released the live reference: with no reader holding prev it
		// is closed already, and closed() found nothing to delete. Under
		// w.mu this check and closed() cannot interleave.
		select {
		case <-prev.Closed():
		default:
			w.draining[prev.DB.Dir()] = prev
		}
	}
	old := w.stats.Version
	if old != "" {
		w.stats.Previous = old
	}
	// The health check follows the instance just published: a name seen
	// live before may be a fresh install of it now (a rollback after GC).
	w.health.mu.Lock()
	w.health.version, w.health.ino, w.health.err = m.Version, dirInode(manifest.VersionDir(w.opts.Root, m.Version)), nil
	w.health.mu.Unlock()
	w.stats.Version = m.Version
	w.stats.Dataset = v.DB.Meta().Name
	w.stats.LoadedAt = time.Now()
	w.stats.Swaps++
	w.stats.LastError = ""
	w.stats.Warmup = w.warmed
	st := w.stats
	w.mu.Unlock()
	w.log.Info("version live", zap.String("version", m.Version), zap.String("previous", old),
		zap.Int64("keys", v.DB.Meta().Keys), zap.Duration("duration", d))
	if w.opts.OnSwap != nil {
		w.opts.OnSwap(st, d, nil)
	}
}

// failTransient reports a failure that the next poll retries (the manifest
// is not marked handled), once per manifest content so that a long wait does
// not count a failure every poll.
func (w *Watcher) failTransient(manifestContent string, err error, version string, d time.Duration) {
	if w.retrying == manifestContent {
		w.log.Debug("still cannot open the version; retrying", zap.String("version", version), zap.Error(err))
		return
	}
	w.retrying = manifestContent
	w.fail(fmt.Errorf("%w (retrying every %s)", err, w.opts.PollInterval), version, d)
}

// lockBusy reports whether err says that another process holds the
// version's Pebble lock (fcntl F_SETLK fails with EAGAIN or EACCES).
func lockBusy(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES)
}

func (w *Watcher) fail(err error, version string, d time.Duration) {
	w.mu.Lock()
	w.stats.Failures++
	w.stats.LastError = err.Error()
	st := w.stats
	w.mu.Unlock()
	msg := "version not swapped in; the live version keeps serving"
	if !w.cur.Live() {
		msg = "version not swapped in; no version is live yet (data commands answer -LOADING)"
	}
	w.log.Error(msg, zap.String("version", version), zap.Error(err))
	if w.opts.OnSwap != nil {
		w.opts.OnSwap(st, d, err)
	}
}

// closed runs when a version's last reader leaves.
func (w *Watcher) closed(v *Version, err error) {
	w.mu.Lock()
	if w.draining[v.DB.Dir()] == v {
		delete(w.draining, v.DB.Dir())
	}
	w.mu.Unlock()
	if err != nil {
		w.log.Warn("closing a replaced version failed", zap.String("dir", v.DB.Dir()), zap.Error(err))
		return
	}
	w.log.Info("replaced version closed", zap.String("version", filepath.Base(v.DB.Dir())))
}

func (w *Watcher) dropPending() {
	if p := w.pending; p != nil {
		p.timer.Stop()
		p.v.Release()
		w.pending = nil
	}
}
