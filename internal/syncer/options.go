package syncer

import (
	"errors"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/release"
)

// Defaults of the Options fields.
const (
	DefaultInterval     = 30 * time.Second
	DefaultKeep         = 2
	DefaultConcurrency  = 8
	DefaultPartSize     = 32 << 20
	DefaultMinFreeBytes = 64 << 20
	DefaultMaxAttempts  = 6
	DefaultRetryBase    = 250 * time.Millisecond
	DefaultRetryMax     = 10 * time.Second

	// MinPartSize bounds --part-size from below: smaller parts only add
	// requests and fsyncs.
	MinPartSize = 64 << 10
	// DefaultProgressInterval is Options.ProgressInterval's default.
	DefaultProgressInterval = 10 * time.Second
	// MaxPartSize bounds it from above: a part is the most a crash loses.
	MaxPartSize = 1 << 30

	// DefaultReadyReplicas, DefaultActivateDelay and DefaultReadyPoll are
	// the coordinated activation's defaults (sharded datasets).
	DefaultReadyReplicas = 1
	DefaultActivateDelay = 5 * time.Second
	DefaultReadyPoll     = time.Second
)

// Options configure a Syncer. The zero value of every field but Source and
// Root means its default.
type Options struct {
	// Source is the remote dataset root (required): versions/<v>/… and an
	// optional pointer.
	Source objstore.Store
	// Root is the shared volume (required): manifest.json, versions/, staging/.
	Root string

	// Interval between polls in continuous mode; each wait is jittered by
	// ±10% so that a fleet of pods does not poll in lockstep. Default 30s.
	Interval time.Duration
	// Keep is how many installed versions to retain, the live one included:
	// the live version, the previous one (instant rollback), then the newest
	// others. Versions the server holds open are never deleted. Default 2.
	Keep int
	// Concurrency is the number of parts downloaded (and files verified) at
	// once. Default 8.
	Concurrency int
	// PartSize is the size of one ranged read, and the unit of resume after a
	// crash. Default 32 MiB (fewer, longer requests: the S3 server spends
	// less per byte); between MinPartSize and MaxPartSize.
	PartSize int64
	// Bandwidth limits the download to this many bytes per second, shared by
	// all workers. Default 0: unlimited.
	Bandwidth int64
	// MinFreeBytes is the free space that must remain on Root's filesystem
	// after the download, so that the server and the filesystem are not
	// starved. Default 64 MiB; a negative value means none.
	MinFreeBytes int64

	// MaxAttempts is how many times one part is tried before the pass fails
	// (the next poll resumes it). Default 6.
	MaxAttempts int
	// RetryBase and RetryMax bound the exponential backoff between attempts
	// (full jitter). Defaults 250ms and 10s.
	RetryBase, RetryMax time.Duration

	// ProgressInterval is how often a download in progress logs its bytes,
	// rate and ETA. Default 10s; negative: never.
	ProgressInterval time.Duration
	// OnDownload, if set, is called after each download (of the parts a
	// pass was missing, failed or not) with its wall time and bytes
	// received, for metrics.
	OnDownload func(d time.Duration, bytes int64, err error)

	// Sharded: the dataset is sharded and this syncer serves shard Shard
	// (downloading only versions/<v>/shard-<Shard>/ and installing it as
	// versions/<v>/). A sharded syncer refuses unsharded versions and an
	// unsharded one refuses sharded versions (KindShard).
	Sharded bool
	Shard   int
	// Shards, when positive, is the shard count this syncer expects:
	// versions with another count are refused. Default 0: any count above
	// Shard.
	Shards int
	// Node names this syncer in its ready markers (versions/<v>/ready/
	// shard-<i>/<Node>.json); unique per replica. Default: the hostname.
	Node string
	// ReadyReplicas is how many ready markers each shard needs before a
	// version activates. Default 1.
	ReadyReplicas int
	// ActivateDelay is added to the time the last shard became ready:
	// the other syncers' marker polls and the servers' open and warm-up
	// must fit in it. Default 5s.
	ActivateDelay time.Duration
	// ReadyPoll is how often a syncer whose version is installed lists the
	// ready markers while it waits for the other shards. Default 1s.
	ReadyPoll time.Duration

	// Logger receives the syncer's logs, under the name "syncer". Default: a
	// no-op logger.
	Logger *zap.Logger
	// Now returns the current time. Default time.Now; tests set it.
	Now func() time.Time
}

// ErrOptions reports invalid options.
var ErrOptions = errors.New("syncer: invalid options")

// EnsureDefaults fills the zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Keep == 0 {
		o.Keep = DefaultKeep
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = DefaultMinFreeBytes
	} else if o.MinFreeBytes < 0 {
		o.MinFreeBytes = 0
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.RetryBase == 0 {
		o.RetryBase = DefaultRetryBase
	}
	if o.RetryMax == 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.ProgressInterval == 0 {
		o.ProgressInterval = DefaultProgressInterval
	}
	if o.ReadyReplicas == 0 {
		o.ReadyReplicas = DefaultReadyReplicas
	}
	if o.ActivateDelay == 0 {
		o.ActivateDelay = DefaultActivateDelay
	}
	if o.ReadyPoll == 0 {
		o.ReadyPoll = DefaultReadyPoll
	}
	if o.Node == "" {
		o.Node, _ = os.Hostname()
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Validate reports the first invalid field.
func (o *Options) Validate() error {
	switch {
	case o.Source == nil:
		return fmt.Errorf("%w: no source", ErrOptions)
	case o.Root == "":
		return fmt.Errorf("%w: no root directory", ErrOptions)
	case o.Interval < 0:
		return fmt.Errorf("%w: interval %s is negative", ErrOptions, o.Interval)
	case o.Keep < 1:
		return fmt.Errorf("%w: keep %d, want at least 1 (the live version)", ErrOptions, o.Keep)
	case o.Concurrency < 1 || o.Concurrency > 256:
		return fmt.Errorf("%w: concurrency %d, want 1 to 256", ErrOptions, o.Concurrency)
	case o.PartSize < MinPartSize || o.PartSize > MaxPartSize:
		return fmt.Errorf("%w: part size %d, want %d to %d", ErrOptions, o.PartSize, MinPartSize, MaxPartSize)
	case o.Bandwidth < 0:
		return fmt.Errorf("%w: bandwidth %d is negative", ErrOptions, o.Bandwidth)
	case o.MaxAttempts < 1:
		return fmt.Errorf("%w: max attempts %d, want at least 1", ErrOptions, o.MaxAttempts)
	case o.RetryBase < 0 || o.RetryMax < o.RetryBase:
		return fmt.Errorf("%w: retry backoff %s..%s", ErrOptions, o.RetryBase, o.RetryMax)
	case o.Sharded && (o.Shard < 0 || o.Shard >= publish.MaxShards):
		return fmt.Errorf("%w: shard %d out of range", ErrOptions, o.Shard)
	case o.Sharded && o.Shards > 0 && o.Shard >= o.Shards:
		return fmt.Errorf("%w: shard %d of %d shards (want 0 to %d)", ErrOptions, o.Shard, o.Shards, o.Shards-1)
	case !o.Sharded && o.Shards > 0:
		return fmt.Errorf("%w: a shard count without a shard", ErrOptions)
	case o.ReadyReplicas < 1:
		return fmt.Errorf("%w: ready replicas %d, want at least 1", ErrOptions, o.ReadyReplicas)
	case o.ActivateDelay < 0 || o.ReadyPoll < 0:
		return fmt.Errorf("%w: negative activate delay or ready poll", ErrOptions)
	}
	if o.Sharded {
		if err := release.ValidName(o.Node); err != nil {
			return fmt.Errorf("%w: node name: %v (set --node-name)", ErrOptions, err)
		}
	}
	return nil
}
