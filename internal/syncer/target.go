package syncer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.uber.org/zap"

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
	return s.targetOf(r.Set, r.Pointer)
}

// targetOf checks set against the syncer's sharding and returns it as the
// target: its release, or this syncer's shard's.
func (s *Syncer) targetOf(set *publish.Set, pointer *publish.Pointer) (*target, error) {
	v, rel := set.Version, set.Release
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
	return &target{version: v, rel: rel, raw: raw, set: set, pointer: pointer}, nil
}

// maxBootstrapLookback bounds how many older versions bootstrapTarget reads.
const maxBootstrapLookback = 8

// bootstrapTarget chooses what a sharded syncer with an empty volume
// installs first. It goes live at once (there is nothing to be consistent
// with on this volume), so it must be what the other shards serve: t if
// every shard is ready for it (its activation time is known), else the
// newest older version whose every shard was ready (the dataset moved to it
// and no further), else t (a new dataset: nobody serves anything yet). A
// pinned target is the pin's.
func (s *Syncer) bootstrapTarget(ctx context.Context, t *target) (*target, error) {
	if t.pointer != nil && !t.pointer.Latest {
		return t, nil
	}
	ready := func(set *publish.Set) (bool, error) {
		rd, err := publish.ReadReadiness(ctx, s.src, set.Version, set.Count)
		if err != nil {
			return false, failure(KindSource, fmt.Errorf("syncer: %w", err))
		}
		_, ok := publish.ActivationTime(set, rd, s.opts.ReadyReplicas, s.opts.ActivateDelay, nil)
		return ok, nil
	}
	if ok, err := ready(t.set); ok || err != nil {
		return t, err
	}
	names, err := publish.VersionNames(ctx, s.src)
	if err != nil {
		return nil, failure(KindSource, fmt.Errorf("syncer: %w", err))
	}
	tried := 0
	for i := len(names) - 1; i >= 0 && tried < maxBootstrapLookback; i-- {
		if names[i] >= t.version {
			continue
		}
		tried++
		set, err := publish.ReadSet(ctx, s.src, names[i])
		if err != nil || !set.Complete() || set.Count != t.set.Count {
			continue
		}
		ok, err := ready(set)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		nt, err := s.targetOf(set, t.pointer)
		if err != nil {
			return nil, err
		}
		s.log.Info("empty volume: installing the version the other shards serve, not the one they still wait for",
			zap.String(keyVersion, set.Version), zap.String("waiting_version", t.version))
		return nt, nil
	}
	return t, nil
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
