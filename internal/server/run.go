package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/batchkv/batchkv/internal/buildinfo"
	"github.com/batchkv/batchkv/internal/cli"
	"github.com/batchkv/batchkv/internal/metrics"
	"github.com/batchkv/batchkv/internal/store"
	"github.com/batchkv/batchkv/internal/swap"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// ShutdownTimeout bounds a graceful shutdown on SIGINT/SIGTERM.
const ShutdownTimeout = 10 * time.Second

// Run is batchkv-server's command line: it parses args (flags with BATCHKV_*
// environment fallback), opens the dataset, serves until ctx ends, and shuts
// down gracefully.
func Run(ctx context.Context, args []string, stderr io.Writer, lookup func(string) (string, bool)) error {
	fs := cli.NewFlagSet("batchkv-server", "batchkv-server --addr HOST:PORT (--root DIR | --dataset DIR) [flags]", stderr)
	var cfg Config
	var dataset, root, passFile, logLevel, logFormat string
	var pollInterval, drain time.Duration
	var metricsAddr string
	var pprof bool
	cacheBytes := int64(1 << 30)
	fs.StringVar(&cfg.Addr, "addr", DefaultAddr, "address to listen on (port 0 picks a free port; the log line \"listening\" has the actual one)")
	fs.StringVar(&root, "root", "", "shared volume the syncer installs versions into: serve the version its manifest names, and swap live when it changes")
	fs.DurationVar(&pollInterval, "poll-interval", time.Second, "with --root: how often to re-read the manifest besides fsnotify events")
	warmMax, warmShare := 10*time.Second, 0.2
	fs.DurationVar(&warmMax, "warm-max", warmMax, "with --root: longest warm-up of a new version's blocks into the cache before it goes live")
	fs.Float64Var(&warmShare, "warm-share", warmShare, "with --root: part of one CPU the warm-up of a new version may use (0-1)")
	fs.StringVar(&dataset, "dataset", "", "built dataset version directory to serve as it is (development, tests)")
	fs.IntVar(&cfg.MaxClients, "maxclients", DefaultMaxClients, "maximum number of client connections")
	fs.DurationVar(&cfg.IdleTimeout, "timeout", 0, "close a client idle this long (0: never)")
	fs.Int64Var(&cfg.ProtoMaxBulkLen, "proto-max-bulk-len", 512<<20, "longest request argument in bytes")
	fs.Int64Var(&cfg.ClientQueryBufferLimit, "client-query-buffer-limit", 1<<30, "largest pending request of one client in bytes")
	fs.Int64Var(&cfg.OutputBufferLimit, "client-output-buffer-limit", DefaultOutputBufferLimit, "most reply bytes pending for one client before it is disconnected")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", DefaultWriteTimeout, "disconnect a client that does not read its replies for this long")
	fs.StringVar(&cfg.RequirePass, "requirepass", "", "password clients must AUTH with (prefer --requirepass-file)")
	fs.StringVar(&passFile, "requirepass-file", "", "file holding the password clients must AUTH with")
	fs.IntVar(&cfg.MaxKeysReply, "max-keys-reply", DefaultMaxKeysReply, "most keys one KEYS command may return (beyond: an error; use SCAN)")
	fs.Int64Var(&cacheBytes, "cache-bytes", cacheBytes, "block cache size in bytes, shared by every open version")
	fs.StringVar(&metricsAddr, "metrics-addr", metrics.DefaultServerAddr, "HOST:PORT serving /metrics, /healthz and /readyz (empty: none)")
	fs.StringVar(&cfg.IO, "io", DefaultIO, "I/O engine: epoll (event loops, Linux, the default: less CPU per request; a long command runs off its loop) or goroutine (one goroutine per connection); TLS connections always use goroutines")
	fs.BoolVar(&pprof, "pprof", false, "also serve /debug/pprof/ on --metrics-addr")
	fs.DurationVar(&drain, "shutdown-drain", 5*time.Second, "on SIGTERM: fail /readyz at once and keep serving this long (so the pod leaves the Service's endpoints), then shut down")
	var clusterOpts clusterOptions
	clusterOpts.register(fs)
	var tlsOpts tlsOptions
	tlsOpts.register(fs)
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&logFormat, "log-format", "json", "log format: json or console")
	if _, err := cli.Parse(fs, args, lookup); err != nil {
		return err
	}
	if (dataset == "") == (root == "") {
		return cli.UsageError("give exactly one of --root and --dataset")
	}
	if drain < 0 {
		return cli.UsageError("--shutdown-drain must not be negative")
	}
	if pprof && metricsAddr == "" {
		return cli.UsageError("--pprof needs --metrics-addr")
	}
	if passFile != "" {
		b, err := os.ReadFile(passFile)
		if err != nil {
			return fmt.Errorf("server: --requirepass-file: %w", err)
		}
		cfg.RequirePass = strings.TrimRight(string(b), "\r\n")
	}
	checkMeta, err := clusterOpts.apply(&cfg, lookup)
	if err != nil {
		return err
	}
	log, err := cli.NewLogger(logLevel, logFormat, stderr)
	if err != nil {
		return err
	}
	defer log.Sync()
	log = log.Named("server")

	cache := store.NewCache(cacheBytes)
	defer cache.Close()
	cfg.Cache = cache.Stats
	setGCPercent(log)
	var cur swap.Current
	defer cur.Close()
	// The watcher's goroutine is owned here: cancelled and waited for before
	// the live version is closed.
	wctx, stopWatch := context.WithCancel(context.Background())
	watchDone := make(chan struct{})
	defer func() { stopWatch(); <-watchDone }()
	var reg *prometheus.Registry
	var m *metrics.Server
	if metricsAddr != "" {
		reg = metrics.NewRegistry()
		m = metrics.NewServer(reg)
		cfg.Metrics = m
	}
	var w *swap.Watcher
	if root != "" {
		// Keep 4096 of the keys clients read (one read in 64) to warm the
		// next version with what is hot now.
		cfg.Sampler = swap.NewSampler(4096, 64)
		opts := swap.Options{Root: root, Cache: cache, PollInterval: pollInterval, WarmMax: warmMax, WarmShare: warmShare, Sampler: cfg.Sampler, Logger: log, CheckMeta: checkMeta}
		if m != nil {
			opts.OnSwap = m.OnSwap
		}
		w = swap.NewWatcher(&cur, opts)
		cfg.Stats = func() SwapStats {
			st := w.Stats()
			// INFO's swaps count the versions made live after the first.
			return SwapStats{Swaps: max(st.Swaps-1, 0), SwapFailures: st.Failures, PreviousVersion: st.Previous, LoadedAt: st.LoadedAt}
		}
		log.Info("following the shared volume", zap.String("root", root), zap.String("batchkv_version", buildinfo.Version))
		go func() { defer close(watchDone); w.Run(wctx) }()
	} else {
		close(watchDone)
		db, err := store.Open(dataset, cache)
		if err != nil {
			return err
		}
		if checkMeta != nil {
			if err := checkMeta(*db.Meta()); err != nil {
				db.Close()
				return fmt.Errorf("server: --dataset %s: %w", dataset, err)
			}
		}
		cur.Swap(swap.NewVersion(db, func(v *swap.Version, err error) {
			if err != nil {
				log.Error("closing version", zap.String("dir", v.DB.Dir()), zap.Error(err))
			}
		}))
		m := db.Meta()
		log.Info("dataset open", zap.String("dir", dataset), zap.String("dataset", m.Name),
			zap.String("version", m.Version), zap.Int64("keys", m.Keys), zap.String("batchkv_version", buildinfo.Version))
	}

	srv, err := New(cfg, &cur, log)
	if err != nil {
		return err
	}
	// draining is set on SIGTERM: /readyz fails from then on.
	var draining atomic.Bool
	if m != nil {
		m.RegisterState(reg, metrics.ServerState{Conns: srv.ConnStats, Dataset: func() (metrics.Dataset, bool) {
			return liveDataset(&cur, w)
		}, Cache: func() metrics.Cache {
			cs := cache.Stats()
			return metrics.Cache{BlockBytes: cs.BlockBytes, BlockBudget: cs.BlockBudget, Blocks: int64(cs.Blocks),
				Loads: cs.Loads, Evictions: cs.Evictions, PebbleBytes: cs.PebbleBytes}
		}})
		ep, err := metrics.Serve(metrics.EndpointOptions{Addr: metricsAddr, Registry: reg, Pprof: pprof, Logger: log,
			Ready: func() error { return ready(&cur, w, &draining) }})
		if err != nil {
			return err
		}
		defer ep.Close()
	}
	ln, err := net.Listen("tcp", srv.Config().Addr)
	if err != nil {
		return fmt.Errorf("server: listen: %w", err)
	}
	if ln, err = tlsOpts.wrap(ln, log); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if drain > 0 {
		// Kubernetes removes the pod from the Service's endpoints only after
		// readiness fails: until then clients keep being routed here.
		draining.Store(true)
		log.Info("draining: /readyz fails, still serving", zap.Duration("drain", drain))
		t := time.NewTimer(drain)
		select {
		case <-t.C:
		case err := <-errc:
			t.Stop()
			return err
		}
	}
	log.Info("shutting down", zap.Duration("timeout", ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", zap.Error(err))
	}
	if err := <-errc; err != nil && !errors.Is(err, ErrServerClosed) {
		return err
	}
	return nil
}

// ready is the server's readiness: a version is live and no drain began.
func ready(cur *swap.Current, w *swap.Watcher, draining *atomic.Bool) error {
	if draining.Load() {
		return errors.New("draining: shutting down")
	}
	if !cur.Live() {
		if w != nil {
			if st := w.Stats(); st.LastError != "" {
				return fmt.Errorf("no version live yet: %s", st.LastError)
			}
		}
		return errors.New("no version live yet")
	}
	if w != nil {
		if err := w.Health(); err != nil { // the live version's files are damaged (swap/health.go)
			return err
		}
	}
	return nil
}

// liveDataset describes the live version for metrics.
func liveDataset(cur *swap.Current, w *swap.Watcher) (metrics.Dataset, bool) {
	var d metrics.Dataset
	v := cur.Acquire()
	if v != nil {
		defer v.Release()
		meta := v.DB.Meta()
		d = metrics.Dataset{Name: meta.Name, Version: meta.Version, BuiltAt: meta.BuiltAt, Keys: meta.Keys, Open: 1}
	}
	if w != nil {
		d.Open = len(w.Open())
	}
	return d, v != nil
}

// setGCPercent makes the collector run at 25% heap growth instead of 100%.
// The point-lookup cache's decoded blocks live on the Go heap and are nearly
// all of it; they allocate only on cache misses, so collections stay rare,
// and garbage (evicted blocks, when the working set exceeds --cache-bytes)
// then costs at most a quarter of the cache rather than all of it. No memory
// limit is set: a soft limit near the cache would make the collector burn CPU
// whenever connections legitimately hold more (large pipelines and replies);
// the pod's limit has room for those (docs/OPERATIONS.md). GOGC in the
// environment wins.
func setGCPercent(log *zap.Logger) {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	debug.SetGCPercent(25)
	log.Debug("GOGC 25")
}
