// Package build turns input files into a dataset version directory (see
// package store): it reads the records in parallel, sorts them by Pebble key
// within a memory budget (an external sort: sorted runs spilled to disk, then
// merged), writes sstables directly and ingests them into a fresh Pebble
// database, so no byte passes through an LSM write path.
//
// The work is cut two ways to use every core: one parse worker per input file
// (up to Workers at once), each with its own share of the budget, and P
// partitions, disjoint ranges of the key's order prefix (and so of hash
// slots), merged and written in parallel, one sstable (or more, if huge) each.
//
// The output appears only complete: everything is built in a temporary
// sibling of the output directory, renamed into place at the very end.
package build

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batchkv/batchkv/internal/buildinfo"
	"github.com/batchkv/batchkv/internal/input"
	"github.com/batchkv/batchkv/internal/slot"
	"github.com/batchkv/batchkv/internal/store"
	"go.uber.org/zap"
)

// Duplicate says what to do with a key given more than once.
type Duplicate string

const (
	// DuplicateError fails the build, naming the key and both places.
	DuplicateFail Duplicate = "error"
	// DuplicateFirst keeps the first record in input order.
	DuplicateFirst Duplicate = "first"
	// DuplicateLast keeps the last record in input order.
	DuplicateLast Duplicate = "last"
)

// ParseDuplicate validates an --on-duplicate value.
func ParseDuplicate(s string) (Duplicate, error) {
	switch d := Duplicate(s); d {
	case DuplicateFail, DuplicateFirst, DuplicateLast:
		return d, nil
	}
	return "", fmt.Errorf("unknown duplicate policy %q (want error, first or last)", s)
}

// DefaultMemory is the default memory budget.
const DefaultMemory = 1 << 30

// VersionLayout is the default version name: the build's UTC time, which
// sorts lexicographically in time order.
const VersionLayout = "20060102T150405Z"

// Options configure a build.
type Options struct {
	// Inputs are files and directories, in input order (which decides
	// --on-duplicate first/last). Required.
	Inputs []string
	// Out is the version directory to create; it must not exist. Required.
	Out string
	// Format of the inputs; default input.FormatAuto (by file name, then content).
	Format input.Format
	// CSVHeader: default input.HeaderAuto.
	CSVHeader input.CSVHeader
	// Name of the dataset; default the base name of Out.
	Name string
	// Version name; default the build's start time in VersionLayout.
	// Only [A-Za-z0-9._-] are allowed.
	Version string
	// Memory is the budget in bytes for the whole build process; default
	// DefaultMemory. Five eighths go to sort buffers (encoded records and
	// their index); the rest covers readers' and writers' buffers, Parquet
	// pages, sstable writers and the garbage collector's headroom. The Go
	// runtime's soft memory limit is set to seven eighths of Memory, less the
	// sort buffers' record chunks where those live outside the Go heap (an
	// arena on Linux), and at least a quarter of Memory, so that garbage is
	// collected before the process grows past the budget.
	Memory int64
	// OnDuplicate: default DuplicateFail.
	OnDuplicate Duplicate
	// Workers is the number of parse workers and of partitions merged at once;
	// default GOMAXPROCS.
	Workers int
	// Partitions is about the number of key ranges (contiguous hash slot
	// ranges) merged and written separately; default 4 × Workers. A sharded
	// build splits them among the shards it writes, at least one each.
	Partitions int
	// Shards, when positive, partitions the dataset by Redis Cluster hash slot
	// into that many shards (docs/CLUSTER.md): shard i holds the slots
	// slot.Split(Shards)[i] and is the complete version directory
	// Out/shard-<i>, its Meta.Shard set. At most slot.Count.
	Shards int
	// OneShard builds only shard Shard of Shards, into Out/shard-<Shard>
	// (Out may exist; that shard must not): records of other slots are read
	// and dropped. Version is then required, since the jobs building the
	// other shards must agree on it.
	OneShard bool
	Shard    int
	// SplitBytes is the size above which an uncompressed JSON Lines file is
	// parsed in ranges of this size by several workers at once; default
	// 64 MiB. (Compressed files and CSV cannot be entered midway.)
	SplitBytes int64
	// TableBytes is the size after which a partition starts a new sstable;
	// default 1 GiB.
	TableBytes int64
	// MaxLine bounds one JSON Lines line; default input.DefaultMaxLine.
	MaxLine int
	// Logger receives progress; default none.
	Logger *zap.Logger
	// ProgressEvery is the interval of progress log lines; default 10s.
	ProgressEvery time.Duration
	// Progress, if set, is called about four times a second and once at
	// the end of each phase: phase "read" counts input bytes of the files
	// (or file ranges) finished, of their total; phase "merge" counts
	// partitions written, of all partitions. Calls never overlap.
	Progress func(phase string, done, total int64)
	// Now returns the current time; default time.Now.
	Now func() time.Time

	versionGiven bool
}

func (o *Options) ensureDefaults() {
	if o.Format == "" {
		o.Format = input.FormatAuto
	}
	if o.CSVHeader == "" {
		o.CSVHeader = input.HeaderAuto
	}
	if o.Memory <= 0 {
		o.Memory = DefaultMemory
	}
	if o.OnDuplicate == "" {
		o.OnDuplicate = DuplicateFail
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Partitions <= 0 {
		o.Partitions = 4 * o.Workers
	}
	if o.SplitBytes <= 0 {
		o.SplitBytes = 64 << 20
	}
	if o.TableBytes <= 0 {
		o.TableBytes = 1 << 30
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// ValidateVersion checks a version name: non-empty, at most 128 bytes of
// [A-Za-z0-9._-], not "." or "..". (That it sorts after earlier versions is
// the caller's promise: the default, a UTC timestamp, does.)
func ValidateVersion(v string) error {
	if v == "" || v == "." || v == ".." || len(v) > 128 {
		return fmt.Errorf("invalid version %q: want 1-128 characters of A-Z a-z 0-9 . _ -", v)
	}
	for _, c := range []byte(v) {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("invalid version %q: character %q not allowed (want A-Z a-z 0-9 . _ -)", v, c)
		}
	}
	return nil
}

func (o *Options) validate() error {
	if len(o.Inputs) == 0 {
		return errors.New("build: no --input given")
	}
	if o.Out == "" {
		return errors.New("build: no --out given")
	}
	if err := ValidateVersion(o.Version); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	if _, err := ParseDuplicate(string(o.OnDuplicate)); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	if o.Shards < 0 || o.Shards > slot.Count {
		return fmt.Errorf("build: --shards %d: want 1 to %d", o.Shards, slot.Count)
	}
	if o.OneShard {
		switch {
		case o.Shards == 0:
			return errors.New("build: --shard needs --shards")
		case o.Shard < 0 || o.Shard >= o.Shards:
			return fmt.Errorf("build: --shard %d: want 0 to %d (of --shards %d)", o.Shard, o.Shards-1, o.Shards)
		case !o.versionGiven:
			return errors.New("build: --shard needs --version (the jobs building the other shards must use the same version name)")
		}
	}
	if o.Memory < 1<<20 {
		return fmt.Errorf("build: memory budget %d bytes is below the minimum of 1MiB", o.Memory)
	}
	return nil
}

// builder is the state of one build.
type builder struct {
	opts      Options
	files     []input.File
	records   []atomic.Int64 // per file
	tmp       string         // the temporary sibling of Out
	runsDir   string
	tablesDir string
	plan      *plan

	mu      sync.Mutex
	runs    []*run
	nspills int

	read atomic.Int64 // records read so far
	// readBytes is the input size of the parse jobs finished, of
	// totalBytes; merged counts the partitions written.
	readBytes, totalBytes, merged atomic.Int64
	progressMu                    sync.Mutex // serializes Options.Progress calls
}

// Build builds the dataset version opts.Out and returns its metadata. For a
// sharded build (Options.Shards) it returns the totals of the shards written,
// with no Shard set; BuildShards returns each shard's.
func Build(ctx context.Context, opts Options) (*store.Meta, error) {
	total, _, err := build(ctx, opts)
	return total, err
}

// BuildShards is Build returning the metadata of every version directory
// written: one per shard (in shard order), or the one of an unsharded build.
func BuildShards(ctx context.Context, opts Options) ([]*store.Meta, error) {
	_, metas, err := build(ctx, opts)
	return metas, err
}

func build(ctx context.Context, opts Options) (total *store.Meta, metas []*store.Meta, err error) {
	opts.ensureDefaults()
	start := opts.Now()
	opts.versionGiven = opts.Version != ""
	if opts.Version == "" {
		opts.Version = start.UTC().Format(VersionLayout)
	}
	if err := opts.validate(); err != nil {
		return nil, nil, err
	}
	only := -1
	if opts.OneShard {
		only = opts.Shard
	}
	pl, err := newPlan(opts.Shards, only, opts.Partitions)
	if err != nil {
		return nil, nil, err
	}
	dir := filepath.Clean(opts.Out)
	if opts.Name == "" {
		opts.Name = filepath.Base(dir)
	}
	// out is what appears at the end, renamed from the temporary directory:
	// the version directory, the directory of all shards, or one shard's.
	out := dir
	if opts.OneShard {
		out = store.ShardDir(dir, opts.Shard)
	}
	if _, err := os.Lstat(out); err == nil {
		return nil, nil, fmt.Errorf("build: %s already exists", out)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("build: %w", err)
	}
	files, err := input.Expand(opts.Inputs, opts.Format)
	if err != nil {
		return nil, nil, fmt.Errorf("build: %w", err)
	}

	parent, base := filepath.Dir(out), filepath.Base(out)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, nil, fmt.Errorf("build: %w", err)
	}
	removeStale(parent, base, opts.Logger)
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err != nil {
		return nil, nil, fmt.Errorf("build: %w", err)
	}
	bl := &builder{
		opts:      opts,
		files:     files,
		records:   make([]atomic.Int64, len(files)),
		tmp:       tmp,
		runsDir:   filepath.Join(tmp, "runs"),
		tablesDir: filepath.Join(tmp, "tables"),
		plan:      pl,
	}
	defer func() {
		bl.closeRuns()
		if rerr := os.RemoveAll(tmp); rerr != nil && err == nil {
			err = fmt.Errorf("build: remove temporary directory: %w", rerr)
		}
	}()
	for _, d := range []string{bl.runsDir, bl.tablesDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, nil, fmt.Errorf("build: %w", err)
		}
	}
	// The budget is the process's too: tell the garbage collector, so that it
	// collects harder instead of letting the heap double past it.
	// (Not below 64 MiB: the runtime alone needs some, and a limit it cannot
	// meet makes the collector run without pause.)
	// The sort buffers' chunks live outside the Go heap where arenas are
	// supported: the heap's limit is then what is left of the budget.
	limit := opts.Memory / 8 * 7
	if arenaOffHeap {
		limit = max(limit-sortBudget(opts.Memory), opts.Memory/4)
	}
	prev := debug.SetMemoryLimit(max(limit, 64<<20))
	defer debug.SetMemoryLimit(prev)

	log := opts.Logger
	log.Info("build started", zap.String("out", out), zap.Int("files", len(files)),
		zap.Int64("memory", opts.Memory), zap.Int("workers", opts.Workers), zap.Int("partitions", len(pl.parts)),
		zap.Int("shards", opts.Shards), zap.Int("shards_written", len(pl.shards)))

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopProgress := bl.progress(ctx, start)
	err = bl.parse(ctx, cancel)
	parsed := opts.Now()
	var stats []partStats
	if err == nil {
		bl.reportProgress() // the read phase's final state
		log.Info("input read and sorted", zap.Int64("records", bl.read.Load()), zap.Int("spilled_runs", bl.nspills),
			zap.Duration("elapsed", parsed.Sub(start)))
		stats, err = bl.merge(ctx, cancel)
	}
	stopProgress()
	if err != nil {
		return nil, nil, err
	}
	bl.closeRuns()
	if err := os.RemoveAll(bl.runsDir); err != nil {
		return nil, nil, fmt.Errorf("build: %w", err)
	}

	newMeta := func(st partStats) *store.Meta {
		m := &store.Meta{
			Format:      store.FormatVersion,
			Name:        opts.Name,
			Version:     opts.Version,
			Keys:        st.strings + st.hashes,
			Strings:     st.strings,
			Hashes:      st.hashes,
			HashFields:  st.fields,
			KeyBytes:    st.keyBytes,
			ValueBytes:  st.valueBytes,
			BuiltAt:     start.UTC(),
			ToolVersion: buildinfo.Version,
		}
		for i, f := range files {
			m.Inputs = append(m.Inputs, store.Input{
				Path: f.Path, Format: string(f.Format), Compression: string(f.Compression),
				Bytes: f.Size, Records: bl.records[i].Load(),
			})
		}
		return m
	}
	// One version directory per shard written, Workers at a time.
	version := filepath.Join(tmp, "version")
	var sum partStats
	metas = make([]*store.Meta, len(pl.shards))
	tables := make([][]string, len(pl.shards))
	for si, sp := range pl.shards {
		var st partStats
		for p := sp.first; p < sp.first+sp.n; p++ {
			st.add(stats[p])
		}
		sum.add(st)
		tables[si] = st.tables
		metas[si] = newMeta(st)
		if pl.sharded {
			metas[si].Shard = &store.Shard{Index: sp.index, Count: pl.count, SlotStart: sp.slots.Start, SlotEnd: sp.slots.End}
		}
	}
	if pl.sharded && !opts.OneShard {
		if err := os.Mkdir(version, 0o755); err != nil {
			return nil, nil, fmt.Errorf("build: %w", err)
		}
	}
	err = parallel(ctx, opts.Workers, len(pl.shards), func(si int) error {
		d := version
		if pl.sharded && !opts.OneShard {
			d = store.ShardDir(version, pl.shards[si].index)
		}
		return store.CreateVersion(ctx, d, metas[si], tables[si])
	})
	if err != nil {
		return nil, nil, fmt.Errorf("build: %w", err)
	}
	if pl.sharded && !opts.OneShard {
		if err := store.SyncDir(version); err != nil {
			return nil, nil, fmt.Errorf("build: %w", err)
		}
	}
	if _, err := os.Lstat(out); err == nil {
		return nil, nil, fmt.Errorf("build: %s appeared during the build; not replacing it", out)
	}
	if err := os.Rename(version, out); err != nil {
		return nil, nil, fmt.Errorf("build: %w", err)
	}
	if err := store.SyncDir(parent); err != nil {
		return nil, nil, fmt.Errorf("build: %w", err)
	}
	total = newMeta(sum)
	el := opts.Now().Sub(start)
	log.Info("build finished", zap.String("out", out), zap.String("version", total.Version), zap.Int64("keys", total.Keys),
		zap.Int64("records", bl.read.Load()), zap.Duration("elapsed", el),
		zap.Float64("records_per_sec", float64(bl.read.Load())/max(el.Seconds(), 1e-9)))
	return total, metas, nil
}

// parallel runs fn(0..n-1), workers at a time, and returns the first error;
// after an error or cancellation no new call starts.
func parallel(ctx context.Context, workers, n int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return context.Cause(ctx)
}

// removeStale removes temporary directories a crashed build of the same
// output left behind.
func removeStale(parent, base string, log *zap.Logger) {
	stale, _ := filepath.Glob(filepath.Join(parent, "."+globEscape(base)+".tmp-*"))
	for _, d := range stale {
		log.Info("removing a crashed build's temporary directory", zap.String("dir", d))
		os.RemoveAll(d)
	}
}

func globEscape(s string) string {
	var b []byte
	for _, c := range []byte(s) {
		switch c {
		case '*', '?', '[', '\\':
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return string(b)
}

func (bl *builder) closeRuns() {
	bl.mu.Lock()
	defer bl.mu.Unlock()
	for _, r := range bl.runs {
		if r != nil && r.file != nil {
			r.file.Close()
			r.file = nil
		}
		if r != nil && r.mem != nil {
			r.mem.free()
			r.mem = nil
		}
	}
}

// progress logs the records read per second until the returned stop is called.
func (bl *builder) progress(ctx context.Context, start time.Time) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(bl.opts.ProgressEvery)
		defer t.Stop()
		var report <-chan time.Time
		if bl.opts.Progress != nil {
			rt := time.NewTicker(250 * time.Millisecond)
			defer rt.Stop()
			report = rt.C
			defer bl.reportProgress() // the final state of the last phase
		}
		last, lastT := int64(0), start
		for {
			select {
			case <-ctx.Done():
				return
			case <-report:
				bl.reportProgress()
			case now := <-t.C:
				n := bl.read.Load()
				bl.opts.Logger.Info("progress", zap.Int64("records", n),
					zap.Float64("records_per_sec", float64(n-last)/now.Sub(lastT).Seconds()),
					zap.Int("spilled_runs", bl.spills()))
				last, lastT = n, now
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// reportProgress calls Options.Progress with the running phase: reading
// until every parse job finished, then merging.
func (bl *builder) reportProgress() {
	if bl.opts.Progress == nil {
		return
	}
	bl.progressMu.Lock()
	defer bl.progressMu.Unlock()
	if done, total := bl.readBytes.Load(), bl.totalBytes.Load(); done < total || bl.merged.Load() == 0 {
		bl.opts.Progress("read", done, total)
		return
	}
	bl.opts.Progress("merge", bl.merged.Load(), int64(len(bl.plan.parts)))
}

func (bl *builder) spills() int {
	bl.mu.Lock()
	defer bl.mu.Unlock()
	return bl.nspills
}

// sortBudget is the part of the memory budget for the parse workers' sort
// buffers.
func sortBudget(memory int64) int64 { return memory / 8 * 5 }

// parse reads every input with Workers workers, each encoding records into
// its own batch and spilling sorted runs when its share of the budget is full.
func (bl *builder) parse(ctx context.Context, cancel context.CancelCauseFunc) error {
	// A job is a file, or a range of a large splittable one. Largest first,
	// so the workers finish together. The order of work does not matter
	// for --on-duplicate: records carry their position in input order.
	var jobs []job
	for i, f := range bl.files {
		if !input.Splittable(f) || f.Size <= bl.opts.SplitBytes {
			jobs = append(jobs, job{file: i, start: 0, end: -1, size: f.Size})
			continue
		}
		for seg, start := 0, int64(0); start < f.Size; seg, start = seg+1, start+bl.opts.SplitBytes {
			jobs = append(jobs, job{file: i, seg: uint32(seg), start: start, end: start + bl.opts.SplitBytes, size: min(bl.opts.SplitBytes, f.Size-start)})
		}
	}
	for _, jb := range jobs {
		bl.totalBytes.Add(jb.size)
	}
	slices.SortStableFunc(jobs, func(a, b job) int { return cmp.Compare(b.size, a.size) })
	workers := min(bl.opts.Workers, len(jobs))
	perWorker := sortBudget(bl.opts.Memory) / int64(workers)
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := newBatch(perWorker)
			kept := false
			defer func() {
				if !kept {
					b.free()
				}
			}()
			for {
				j := int(next.Add(1) - 1)
				if j >= len(jobs) || ctx.Err() != nil {
					break
				}
				if err := bl.parseFile(ctx, jobs[j], b); err != nil {
					cancel(err)
					return
				}
			}
			if !b.empty() && ctx.Err() == nil {
				bl.addRun(b.keep(bl.plan))
				kept = true
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if bl.read.Load() == 0 {
		return fmt.Errorf("build: the inputs hold no records (%d files)", len(bl.files))
	}
	return nil
}

func (bl *builder) addRun(r *run) {
	bl.mu.Lock()
	defer bl.mu.Unlock()
	bl.runs = append(bl.runs, r)
	if r.file != nil {
		bl.nspills++
	}
}

// job is one unit of parsing: a whole file (end < 0) or the lines of a
// splittable file that start in [start, end), its range number seg.
type job struct {
	file       int
	seg        uint32
	start, end int64
	size       int64
}

// segShift places a range number above the line number within the range in
// a record's position, so positions still sort in input order.
const segShift = 40

// pos formats a record position (see segShift) as file:line. For a range
// past the first it counts the lines before the range, reading the file:
// positions are formatted only for errors.
func (bl *builder) pos(file uint32, line int64) string {
	f := bl.files[file]
	seg, rel := line>>segShift, line&(1<<segShift-1)
	if seg > 0 {
		base, err := input.LineBase(f, seg*bl.opts.SplitBytes)
		if err != nil {
			return fmt.Sprintf("%s: range %d line %d", f.Path, seg, rel)
		}
		rel += base
	}
	return f.Pos(rel)
}

func (bl *builder) parseFile(ctx context.Context, jb job, b *batch) (err error) {
	f := bl.files[jb.file]
	opts := input.Options{CSVHeader: bl.opts.CSVHeader, MaxLine: bl.opts.MaxLine}
	var rd input.Reader
	if jb.end < 0 {
		rd, err = input.Open(f, opts)
	} else {
		rd, err = input.OpenRange(f, jb.start, jb.end, opts)
	}
	if err != nil {
		return err
	}
	defer func() {
		if cerr := rd.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("build: %s: %w", f.Path, cerr)
		}
	}()
	var rec input.Record
	var n int64
	for {
		if err := rd.Next(&rec); err != nil {
			if err == io.EOF {
				break
			}
			var ie *input.Error
			if jb.seg > 0 && errors.As(err, &ie) && ie.Line > 0 {
				// Number the line within the file, not the range.
				if base, berr := input.LineBase(f, jb.start); berr == nil {
					ie.Line += base
				}
			}
			return err
		}
		n++
		if n&0x3ff == 0 {
			bl.read.Add(0x400)
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
		}
		if rec.Line >= 1<<segShift {
			return fmt.Errorf("build: %s: more than 2^%d lines in one input", f.Path, segShift)
		}
		rec.Line |= int64(jb.seg) << segShift
		s := slot.Of(rec.Key)
		if bl.plan.part[s] < 0 {
			continue // another shard's key
		}
		for {
			ok, err := b.add(&rec, uint32(jb.file), s)
			if err != nil {
				return fmt.Errorf("build: %s: %w", bl.pos(uint32(jb.file), rec.Line), err)
			}
			if ok {
				break
			}
			bl.mu.Lock()
			seq := len(bl.runs)
			bl.runs = append(bl.runs, nil) // reserve the sequence number
			bl.mu.Unlock()
			r, err := b.spill(bl.runsDir, seq, bl.plan)
			if err != nil {
				return err
			}
			bl.mu.Lock()
			bl.runs[seq] = r
			bl.nspills++
			bl.mu.Unlock()
		}
	}
	bl.read.Add(n & 0x3ff)
	bl.records[jb.file].Add(n)
	bl.readBytes.Add(jb.size)
	return nil
}

// merge merges every partition, Workers at a time, and returns each one's stats.
func (bl *builder) merge(ctx context.Context, cancel context.CancelCauseFunc) ([]partStats, error) {
	bl.runs = slices.DeleteFunc(bl.runs, func(r *run) bool { return r == nil })
	results := make([]partStats, len(bl.plan.parts))
	err := parallel(ctx, bl.opts.Workers, len(results), func(p int) error {
		st, err := bl.mergePartition(ctx, p)
		if err != nil {
			cancel(err)
			return err
		}
		results[p] = st
		bl.merged.Add(1)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}
