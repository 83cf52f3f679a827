package syncer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/release"
)

// ErrNoTarget reports a source with no complete version to serve.
var ErrNoTarget = errors.New("syncer: no complete version at the source")

// ErrShard reports a version whose sharding does not match the syncer's:
// a sharded version for an unsharded syncer, an unsharded one for a sharded
// syncer, another shard count, or a shard index beyond the count.
var ErrShard = errors.New("syncer: shard mismatch")

// target is the version the source says to serve, with its release file
// (for a sharded version, this syncer's shard's).
type target struct {
	version string
	rel     *release.Release
	raw     []byte // the release file, copied into the installed version
	// set is everything the store holds of the version (every shard's
	// release); pointer is pointer.json, nil without one.
	set     *publish.Set
	pointer *publish.Pointer
}

// resolveTarget finds the version to serve (publish.Resolve: the pinned
// version if there is a pointer, else the greatest complete version) and its
// validated release, checks it against the syncer's sharding, and
// classifies failures.
func (s *Syncer) resolveTarget(ctx context.Context) (*target, error) {
	r, err := publish.Resolve(ctx, s.src)
	switch {
	case err == nil:
	case errors.Is(err, publish.ErrNoVersion), errors.Is(err, publish.ErrIncomplete):
		return nil, failure(KindNoTarget, fmt.Errorf("%w: %w", ErrNoTarget, err))
	case errors.Is(err, publish.ErrShards):
		return nil, failure(KindShard, fmt.Errorf("syncer: %w", err))
	case errors.Is(err, release.ErrInvalid):
		return nil, failure(KindRelease, fmt.Errorf("syncer: %w", err))
	default:
		return nil, failure(KindSource, fmt.Errorf("syncer: resolve target: %w", err))
	}
	set, v := r.Set, r.Set.Version
	rel := set.Release
	switch o := s.opts; {
	case !o.Sharded && set.Sharded():
		return nil, failure(KindShard, fmt.Errorf("%w: version %s at %s is sharded (%d shards): run the syncer with --shard I or --shards %d",
			ErrShard, v, s.src, set.Count, set.Count))
	case o.Sharded && !set.Sharded():
		return nil, failure(KindShard, fmt.Errorf("%w: version %s at %s is not sharded, this syncer serves shard %d: run it without --shard/--shards",
			ErrShard, v, s.src, o.Shard))
	case o.Sharded && o.Shards > 0 && set.Count != o.Shards:
		return nil, failure(KindShard, fmt.Errorf("%w: version %s has %d shards, this syncer expects %d (--shards)", ErrShard, v, set.Count, o.Shards))
	case o.Sharded && o.Shard >= set.Count:
		return nil, failure(KindShard, fmt.Errorf("%w: version %s has %d shards, this syncer serves shard %d", ErrShard, v, set.Count, o.Shard))
	case o.Sharded:
		rel = set.Shards[o.Shard]
	}
	// Re-encoded rather than copied byte for byte: what is installed is
	// exactly what was validated.
	raw, err := rel.Marshal()
	if err != nil {
		return nil, failure(KindRelease, fmt.Errorf("syncer: %w", err))
	}
	return &target{version: v, rel: rel, raw: raw, set: set, pointer: r.Pointer}, nil
}

// shardView is the source seen by the download of one shard: a version's
// file "versions/<v>/<path>" is read from "versions/<v>/shard-<i>/<path>",
// so that a shard downloads and installs like an ordinary version.
type shardView struct {
	objstore.Store
	shard int
}

func (s shardView) key(k string) string {
	rest, ok := strings.CutPrefix(k, publish.VersionsDir)
	if !ok {
		return k
	}
	v, file, ok := strings.Cut(rest, "/")
	if !ok {
		return k
	}
	return publish.ShardPrefix(v, s.shard) + file
}

func (s shardView) ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	return s.Store.ReadRange(ctx, s.key(key), off, n)
}

func (s shardView) Stat(ctx context.Context, key string) (objstore.Object, error) {
	return s.Store.Stat(ctx, s.key(key))
}

func (s shardView) List(ctx context.Context, prefix string) ([]objstore.Object, error) {
	objs, err := s.Store.List(ctx, s.key(prefix))
	if err != nil || s.key(prefix) == prefix {
		return objs, err
	}
	from, to := s.key(prefix), prefix
	for i := range objs {
		objs[i].Key = to + strings.TrimPrefix(objs[i].Key, from)
	}
	return objs, nil
}

func (s shardView) String() string { return fmt.Sprintf("%s (shard %d)", s.Store, s.shard) }
