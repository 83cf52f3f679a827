package syncer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/batchkv/batchkv/internal/buildinfo"
	"github.com/batchkv/batchkv/internal/cli"
	"github.com/batchkv/batchkv/internal/manifest"
	"github.com/batchkv/batchkv/internal/metrics"
	"github.com/batchkv/batchkv/internal/remote"
)

// Command is batchkv-syncer's command line: it parses args (flags with
// BATCHKV_* environment fallback) and syncs until ctx ends, or once with
// --once (a nil error then means the target version is live).
func Command(ctx context.Context, args []string, stderr io.Writer, lookup func(string) (string, bool)) error {
	fs := cli.NewFlagSet("batchkv-syncer", "batchkv-syncer --source URL --root DIR [--once] [flags]", stderr)
	var (
		source, root, logLevel, logFormat string
		metricsAddr                       string
		once, pprof                       bool
		opts                              Options
		ro                                remote.Options
	)
	partSize, bandwidth, minFree := byteSize(DefaultPartSize), byteSize(0), byteSize(DefaultMinFreeBytes)
	fs.StringVar(&source, "source", "", "dataset to follow: s3://bucket/prefix/dataset or file:///path/dataset")
	fs.StringVar(&root, "root", "", "shared volume: manifest.json, versions/, staging/")
	fs.BoolVar(&once, "once", false, "sync once and exit: 0 when the target version is live")
	fs.DurationVar(&opts.Interval, "interval", DefaultInterval, "time between polls (jittered ±10%)")
	fs.IntVar(&opts.Keep, "keep", DefaultKeep, "installed versions to keep, the live one included (versions the server holds open are always kept)")
	fs.IntVar(&opts.Concurrency, "concurrency", DefaultConcurrency, "parts downloaded at once")
	fs.Var(&partSize, "part-size", "bytes per ranged read, and the unit of resume (suffixes K, M, G: KiB, MiB, GiB)")
	fs.Var(&bandwidth, "bandwidth", "download limit in bytes per second, shared by all parts (0: unlimited; suffixes K, M, G)")
	fs.Var(&minFree, "min-free-bytes", "free space to leave on the root filesystem after a download (suffixes K, M, G)")
	ro.AddFlags(fs)
	shard := fs.Int("shard", -1, "sharded dataset: the shard this syncer serves (0..N-1); -1: unsharded, or derived with --shards")
	fs.IntVar(&opts.Shards, "shards", 0, "sharded dataset: the shard count; alone, the shard is (ordinal of $HOSTNAME, the StatefulSet pod name NAME-o) mod N")
	fs.StringVar(&opts.Node, "node-name", "", "this syncer's name in the ready markers of sharded versions, unique per replica (default: $HOSTNAME, else the hostname)")
	fs.IntVar(&opts.ReadyReplicas, "ready-replicas", DefaultReadyReplicas, "sharded: ready markers every shard needs before a version goes live")
	fs.DurationVar(&opts.ActivateDelay, "activate-delay", DefaultActivateDelay, "sharded: time from the last shard ready to the coordinated swap (covers marker polls and the servers' open and warm-up)")
	fs.DurationVar(&opts.ReadyPoll, "ready-poll", DefaultReadyPoll, "sharded: how often a syncer waiting for other shards lists their ready markers")
	fs.StringVar(&metricsAddr, "metrics-addr", metrics.DefaultSyncerAddr, "HOST:PORT serving /metrics, /healthz and /readyz (empty: none; never with --once)")
	fs.BoolVar(&pprof, "pprof", false, "also serve /debug/pprof/ on --metrics-addr")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&logFormat, "log-format", "json", "log format: json or console")
	rest, err := cli.Parse(fs, args, lookup)
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return cli.UsageError("unexpected arguments %q", rest)
	case source == "":
		return cli.UsageError("--source is required")
	case root == "":
		return cli.UsageError("--root is required")
	}
	host, _ := lookupOr(lookup, "HOSTNAME")
	if opts.Node == "" {
		opts.Node = host
	}
	switch {
	case *shard >= 0:
		opts.Sharded, opts.Shard = true, *shard
	case *shard < -1:
		return cli.UsageError("--shard %d: want 0 or more", *shard)
	case opts.Shards > 0:
		o, err := Ordinal(host)
		if err != nil {
			return cli.UsageError("--shards %d without --shard: %v", opts.Shards, err)
		}
		opts.Sharded, opts.Shard = true, o%opts.Shards
	case opts.Shards < 0:
		return cli.UsageError("--shards %d: want 1 or more", opts.Shards)
	}
	opts.PartSize, opts.Bandwidth, opts.MinFreeBytes = int64(partSize), int64(bandwidth), int64(minFree)
	if opts.MinFreeBytes == 0 {
		opts.MinFreeBytes = -1 // explicitly none
	}
	log, err := cli.NewLogger(logLevel, logFormat, stderr)
	if err != nil {
		return err
	}
	defer log.Sync()
	opts.Logger = log
	opts.Root, err = filepath.Abs(root)
	if err != nil {
		return fmt.Errorf("syncer: --root: %w", err)
	}
	if _, err := remote.Parse(source); err != nil {
		return cli.UsageError("--source: %v", err)
	}
	opts.Source, err = remote.Open(ctx, source, ro)
	if err != nil {
		return err
	}
	var s *Syncer
	var reg *prometheus.Registry
	if metricsAddr != "" && !once {
		reg = metrics.NewRegistry()
		kinds := make([]string, 0, numKinds)
		for _, k := range Kinds() {
			kinds = append(kinds, k.String())
		}
		sm := metrics.NewSyncer(reg, kinds, func() metrics.SyncerState { return metricsState(s) })
		opts.OnDownload = sm.OnDownload
	}
	s, err = New(opts)
	if err != nil {
		return cli.UsageError("%v", err)
	}
	if reg != nil {
		ep, err := metrics.Serve(metrics.EndpointOptions{Addr: metricsAddr, Registry: reg, Pprof: pprof, Logger: log.Named("syncer"),
			Ready: func() error { return installed(opts.Root) }})
		if err != nil {
			return err
		}
		defer ep.Close()
	} else if pprof {
		return cli.UsageError("--pprof needs --metrics-addr (and is not served with --once)")
	}
	log.Info("batchkv-syncer", zap.String("batchkv_version", buildinfo.Version), zap.String("source", opts.Source.String()),
		zap.String("root", opts.Root), zap.Bool("once", once), zap.Bool("sharded", opts.Sharded), zap.Int("shard", opts.Shard),
		zap.String("node", s.opts.Node))
	if !once {
		return s.Run(ctx)
	}
	var res Result
	for {
		// A sharded version waits for the other shards: --once means "until
		// the target is live", so keep going (bounded by ctx).
		res, err = s.SyncOnce(ctx)
		if err != nil || res.Action != ActionWaiting {
			break
		}
	}
	st := s.Stats().Snapshot()
	log.Info("stats", zap.Int64("bytes_downloaded", st.BytesDownloaded), zap.Duration("download_duration", st.DownloadDuration),
		zap.Int64("files_verified", st.FilesVerified), zap.Int64("versions_deleted", st.VersionsDeleted),
		zap.Int64("free_bytes", st.FreeBytes), zap.Any("failures", st.Failures))
	return err
}

// lookupOr reads an environment variable through lookup, falling back to
// the process environment.
func lookupOr(lookup func(string) (string, bool), name string) (string, bool) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if v, ok := lookup(name); ok && v != "" {
		return v, true
	}
	if h, err := os.Hostname(); err == nil && name == "HOSTNAME" {
		return h, true
	}
	return "", false
}

// Ordinal returns the StatefulSet ordinal of a pod name: o in NAME-o.
func Ordinal(host string) (int, error) {
	i := strings.LastIndexByte(host, '-')
	if i < 0 || i == len(host)-1 {
		return 0, fmt.Errorf("hostname %q is not a StatefulSet pod name NAME-<ordinal>: set --shard", host)
	}
	o, err := strconv.Atoi(host[i+1:])
	if err != nil || o < 0 {
		return 0, fmt.Errorf("hostname %q is not a StatefulSet pod name NAME-<ordinal>: set --shard", host)
	}
	return o, nil
}

// metricsState reads s's stats and the live version for a scrape.
func metricsState(s *Syncer) metrics.SyncerState {
	st := s.Stats().Snapshot()
	out := metrics.SyncerState{VersionsSeen: st.VersionsSeen, Installs: st.Installs, BytesDownloaded: st.BytesDownloaded,
		FreeBytes: st.FreeBytes, LastSuccess: st.LastSuccess, Failures: st.Failures,
		Sharded: s.opts.Sharded, Waiting: st.Waiting, WaitingSince: st.WaitingSince, MissingShards: st.Missing,
		ActivateAt: st.ActivateAt, LateActivations: st.Late, Activations: st.Activations}
	if m, err := manifest.Read(s.opts.Root); err == nil {
		out.LiveVersion = m.Version
	}
	return out
}

// installed is the syncer's readiness: the manifest names a version and that
// version is installed. The server container starts once this passes.
func installed(root string) error {
	m, err := manifest.Read(root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errors.New("no version installed yet")
		}
		return err
	}
	if _, err := os.Stat(manifest.VersionDir(root, m.Version)); err != nil {
		return fmt.Errorf("manifest names version %s, not installed: %w", m.Version, err)
	}
	return nil
}

// byteSize is a flag of bytes with an optional binary suffix: 8M = 8 MiB.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(s string) error {
	t := strings.TrimSpace(strings.ToUpper(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q: want a byte count such as 8388608 or 8M", s)
	}
	*b = byteSize(n * mult)
	return nil
}
