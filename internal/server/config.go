package server

import (
	"errors"
	"fmt"
	"time"

	"github.com/batchkv/batchkv/internal/metrics"
	"github.com/batchkv/batchkv/internal/store"
	"github.com/batchkv/batchkv/internal/swap"

	"github.com/batchkv/batchkv/internal/resp"
)

// Config configures a Server. The zero value of each field means its default;
// EnsureDefaults fills them in and Validate checks the result.
type Config struct {
	// Addr is the address Run listens on. Default "127.0.0.1:6379".
	Addr string

	// MaxClients is Redis's maxclients: a connection beyond it gets
	// "-ERR max number of clients reached" and is closed. Default 10000.
	MaxClients int

	// IdleTimeout is Redis's timeout: a client idle this long is
	// disconnected. 0 (the default) disables it.
	IdleTimeout time.Duration

	// ProtoMaxBulkLen is proto-max-bulk-len, the longest argument accepted.
	// Default 512 MiB.
	ProtoMaxBulkLen int64

	// ClientQueryBufferLimit is client-query-buffer-limit: a client whose
	// pending request exceeds it is disconnected. Default 1 GiB.
	ClientQueryBufferLimit int64

	// OutputBufferLimit is the hard limit of reply bytes pending for one
	// client (Redis's client-output-buffer-limit for normal clients, which
	// Redis leaves unlimited; ours is bounded): a client whose single reply
	// or unsent replies exceed it is disconnected and logged. Default 64 MiB.
	OutputBufferLimit int64

	// OutputFlushSize is the soft size at which replies of a pipeline batch
	// are written out before the batch ends, so a huge pipeline of big values
	// does not accumulate. Default 256 KiB.
	OutputFlushSize int

	// WriteTimeout bounds each write to a client; a client that does not
	// read its replies for this long is disconnected. Default 30s.
	WriteTimeout time.Duration

	// RequirePass is Redis's requirepass: when set, clients must AUTH (or
	// HELLO ... AUTH default <pass>) before other commands. Default: none.
	RequirePass string

	// MaxKeysReply bounds the number of keys one KEYS command may return;
	// beyond it KEYS answers an error suggesting SCAN instead of building an
	// unbounded reply. Default 1,000,000.
	MaxKeysReply int

	// SlowlogSlowerThan is slowlog-log-slower-than: commands slower than this
	// are recorded for SLOWLOG GET. Default 10ms; negative disables.
	SlowlogSlowerThan time.Duration

	// SlowlogMaxLen is slowlog-max-len. Default 128.
	SlowlogMaxLen int

	// Sampler, if set, is offered a sample of the keys clients read, so that
	// the swap watcher can warm the next version with them. Default nil.
	Sampler *swap.Sampler

	// Stats reports live-swap statistics for INFO's Dataset section. Nil
	// (the default) reports zero swaps and no previous version.
	Stats func() SwapStats

	// Cache, if set, reports the block cache's use for INFO memory.
	Cache func() store.CacheStats

	// Cluster, if set, is the cluster topology this server serves one shard
	// of (Redis Cluster protocol); nil: standalone.
	Cluster *ClusterConfig

	// IO is the I/O engine: IOEpoll or IOGoroutine (see ioengine.go);
	// "" is epoll on Linux.
	IO string

	// Metrics, if set, receives per-command calls and latencies and error
	// replies (nil: no metrics, and no extra clock read per command).
	Metrics *metrics.Server
}

// SwapStats is what the swapper reports for INFO.
type SwapStats struct {
	// Swaps counts versions made live after the first; SwapFailures the
	// versions that failed to open or validate.
	Swaps        int64
	SwapFailures int64
	// PreviousVersion names the version live before the current one.
	PreviousVersion string
	// LoadedAt is when the live version went live (zero: unknown; INFO then
	// reports when this server first saw it live).
	LoadedAt time.Time
}

// Defaults.
const (
	DefaultAddr              = "127.0.0.1:6379"
	DefaultMaxClients        = 10000
	DefaultOutputBufferLimit = 64 << 20
	DefaultOutputFlushSize   = 256 << 10
	DefaultWriteTimeout      = 30 * time.Second
	DefaultMaxKeysReply      = 1_000_000
	DefaultSlowlogSlowerThan = 10 * time.Millisecond
	DefaultSlowlogMaxLen     = 128
)

// ErrInvalidConfig reports a Config that cannot be used.
var ErrInvalidConfig = errors.New("server: invalid config")

// EnsureDefaults sets every zero field to its default.
func (c *Config) EnsureDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.MaxClients == 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.ProtoMaxBulkLen == 0 {
		c.ProtoMaxBulkLen = resp.DefaultMaxBulkLen
	}
	if c.ClientQueryBufferLimit == 0 {
		c.ClientQueryBufferLimit = resp.DefaultQueryBufferLimit
	}
	if c.OutputBufferLimit == 0 {
		c.OutputBufferLimit = DefaultOutputBufferLimit
	}
	if c.OutputFlushSize == 0 {
		c.OutputFlushSize = DefaultOutputFlushSize
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MaxKeysReply == 0 {
		c.MaxKeysReply = DefaultMaxKeysReply
	}
	if c.SlowlogSlowerThan == 0 {
		c.SlowlogSlowerThan = DefaultSlowlogSlowerThan
	}
	if c.SlowlogMaxLen == 0 {
		c.SlowlogMaxLen = DefaultSlowlogMaxLen
	}
}

// Validate checks a Config after EnsureDefaults.
func (c *Config) Validate() error {
	switch {
	case c.MaxClients < 1:
		return fmt.Errorf("%w: maxclients %d < 1", ErrInvalidConfig, c.MaxClients)
	case c.IdleTimeout < 0:
		return fmt.Errorf("%w: timeout %v < 0", ErrInvalidConfig, c.IdleTimeout)
	case c.ProtoMaxBulkLen < 1024*1024:
		// Redis's own minimum for proto-max-bulk-len.
		return fmt.Errorf("%w: proto-max-bulk-len %d < 1MB", ErrInvalidConfig, c.ProtoMaxBulkLen)
	case c.ClientQueryBufferLimit < 1024*1024:
		return fmt.Errorf("%w: client-query-buffer-limit %d < 1MB", ErrInvalidConfig, c.ClientQueryBufferLimit)
	case c.OutputBufferLimit < int64(c.OutputFlushSize):
		return fmt.Errorf("%w: client-output-buffer-limit %d < flush size %d", ErrInvalidConfig, c.OutputBufferLimit, c.OutputFlushSize)
	case c.WriteTimeout < 0:
		return fmt.Errorf("%w: write timeout %v < 0", ErrInvalidConfig, c.WriteTimeout)
	case c.MaxKeysReply < 1:
		return fmt.Errorf("%w: max-keys-reply %d < 1", ErrInvalidConfig, c.MaxKeysReply)
	case c.SlowlogMaxLen < 0:
		return fmt.Errorf("%w: slowlog-max-len %d < 0", ErrInvalidConfig, c.SlowlogMaxLen)
	}
	return nil
}
