package syncer

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/batchkv/batchkv/internal/buildinfo"
	"github.com/batchkv/batchkv/internal/cli"
	"github.com/batchkv/batchkv/internal/remote"
)

// Command is batchkv-syncer's command line: it parses args (flags with
// BATCHKV_* environment fallback) and syncs until ctx ends, or once with
// --once (a nil error then means the target version is live).
func Command(ctx context.Context, args []string, stderr io.Writer, lookup func(string) (string, bool)) error {
	fs := cli.NewFlagSet("batchkv-syncer", "batchkv-syncer --source URL --root DIR [--once] [flags]", stderr)
	var (
		source, root, logLevel, logFormat string
		once                              bool
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
	s, err := New(opts)
	if err != nil {
		return cli.UsageError("%v", err)
	}
	log.Info("batchkv-syncer", zap.String("batchkv_version", buildinfo.Version), zap.String("source", opts.Source.String()),
		zap.String("root", opts.Root), zap.Bool("once", once))
	if !once {
		return s.Run(ctx)
	}
	_, err = s.SyncOnce(ctx)
	st := s.Stats().Snapshot()
	log.Info("stats", zap.Int64("bytes_downloaded", st.BytesDownloaded), zap.Duration("download_duration", st.DownloadDuration),
		zap.Int64("files_verified", st.FilesVerified), zap.Int64("versions_deleted", st.VersionsDeleted),
		zap.Int64("free_bytes", st.FreeBytes), zap.Any("failures", st.Failures))
	return err
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
