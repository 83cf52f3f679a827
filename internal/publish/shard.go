package publish

// Sharded versions (docs/CLUSTER.md "Remote layout"):
//
//	<root>/versions/<v>/shard-<i>/…                    shard i's files
//	<root>/versions/<v>/shard-<i>/release.json         shard i's release, written last for that shard
//	<root>/versions/<v>/ready/shard-<i>/<node>.json    ready markers (see ready.go)
//
// A sharded version is complete when every shard 0..N-1 has its release,
// N from any of them (all must agree).

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/release"
)

// ShardDirPrefix starts the name of a shard's directory, locally (a sharded
// build) and remotely: shard-<i>, i in decimal without padding.
const ShardDirPrefix = "shard-"

// MaxShards bounds the shard count a release may claim (one per hash slot).
const MaxShards = 16384

// ErrShards reports shard releases of one version that disagree (count,
// index, dataset), or a version published both sharded and unsharded.
var ErrShards = errors.New("publish: inconsistent shards")

// ShardDir returns the name of shard i's directory.
func ShardDir(i int) string { return ShardDirPrefix + strconv.Itoa(i) }

// ParseShardDir returns i for a name "shard-<i>" (canonical decimal).
func ParseShardDir(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, ShardDirPrefix)
	if !ok || s == "" || len(s) > 5 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i >= MaxShards {
		return 0, false
	}
	return i, true
}

// ShardPrefix returns the prefix of shard i's objects in version v.
func ShardPrefix(v string, i int) string { return VersionPrefix(v) + ShardDir(i) + "/" }

// ShardReleaseKey returns the key of shard i's release file in version v.
func ShardReleaseKey(v string, i int) string { return ShardPrefix(v, i) + release.FileName }

// Set is what the store holds of one version: an unsharded release, or the
// releases of the shards published so far.
type Set struct {
	Version string
	// Release is the unsharded version's release (nil when sharded).
	Release *release.Release
	// Count is the shard count (0: unsharded).
	Count int
	// Shards[i] is shard i's release, nil while shard i is incomplete; len
	// Count.
	Shards []*release.Release
}

// Sharded reports whether the version is sharded.
func (s *Set) Sharded() bool { return s.Count > 0 }

// Published returns how many shards have their release.
func (s *Set) Published() int {
	n := 0
	for _, r := range s.Shards {
		if r != nil {
			n++
		}
	}
	return n
}

// Complete reports whether every file of the version is published: the
// unsharded release, or every shard's.
func (s *Set) Complete() bool {
	if !s.Sharded() {
		return s.Release != nil
	}
	return s.Published() == s.Count
}

// Missing lists the shards without a release.
func (s *Set) Missing() []int {
	var out []int
	for i, r := range s.Shards {
		if r == nil {
			out = append(out, i)
		}
	}
	return out
}

// ReadSet reads what version v holds. An unsharded release wins; otherwise
// every shard-<i>/ prefix is read. No release at all is ErrIncomplete; shard
// releases that disagree are ErrShards; an invalid release file wraps
// release.ErrInvalid. A partial sharded version is not an error: see
// Complete.
func ReadSet(ctx context.Context, src objstore.Store, v string) (*Set, error) {
	r, err := ReadRelease(ctx, src, v)
	if err == nil {
		if r.Meta.Shard != nil {
			return nil, fmt.Errorf("%w: %s/%s describes shard %d of %d but is stored as an unsharded version",
				ErrShards, src, ReleaseKey(v), r.Meta.Shard.Index, r.Meta.Shard.Count)
		}
		return &Set{Version: v, Release: r}, nil
	}
	if !errors.Is(err, ErrIncomplete) {
		return nil, err
	}
	names, lerr := src.ListPrefixes(ctx, VersionPrefix(v))
	if lerr != nil {
		return nil, fmt.Errorf("publish: %w", lerr)
	}
	var idx []int
	for _, n := range names {
		if i, ok := ParseShardDir(n); ok {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil, err // the unsharded ErrIncomplete
	}
	sort.Ints(idx)
	rels := make([]*release.Release, len(idx))
	err = forEach(ctx, 8, seq(len(idx)), func(ctx context.Context, k int) error {
		r, err := ReadShardRelease(ctx, src, v, idx[k])
		if errors.Is(err, ErrIncomplete) {
			return nil
		}
		rels[k] = r
		return err
	})
	if err != nil {
		return nil, err
	}
	set := &Set{Version: v}
	var first *release.Release
	for k, r := range rels {
		if r == nil {
			continue
		}
		sh := r.Meta.Shard
		if first == nil {
			first = r
			set.Count = sh.Count
			set.Shards = make([]*release.Release, sh.Count)
		}
		switch {
		case sh.Count != set.Count:
			return nil, fmt.Errorf("%w: version %s: shard %d says %d shards, shard %d says %d",
				ErrShards, v, first.Meta.Shard.Index, set.Count, sh.Index, sh.Count)
		case r.Dataset != first.Dataset:
			return nil, fmt.Errorf("%w: version %s: shard %d is dataset %q, shard %d is %q",
				ErrShards, v, first.Meta.Shard.Index, first.Dataset, sh.Index, r.Dataset)
		}
		set.Shards[idx[k]] = r
	}
	if first == nil {
		return nil, fmt.Errorf("%w: %s/%s: no shard has its %s yet", ErrIncomplete, src, VersionPrefix(v), release.FileName)
	}
	for _, i := range idx {
		if i >= set.Count {
			return nil, fmt.Errorf("%w: version %s has %s/ but its shards say %d shards", ErrShards, v, ShardDir(i), set.Count)
		}
	}
	return set, nil
}

// ReadShardRelease reads and validates shard i's release of version v: it
// must describe shard i of a sharded dataset. A missing release is
// ErrIncomplete.
func ReadShardRelease(ctx context.Context, src objstore.Store, v string, i int) (*release.Release, error) {
	if err := release.ValidName(v); err != nil {
		return nil, fmt.Errorf("publish: version: %v", err)
	}
	key := ShardReleaseKey(v, i)
	b, err := readAll(ctx, src, key, release.MaxBytes)
	if errors.Is(err, objstore.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s/%s has no %s", ErrIncomplete, src, ShardPrefix(v, i), release.FileName)
	}
	if errors.Is(err, errTooLarge) {
		return nil, fmt.Errorf("%w: %v", release.ErrInvalid, err)
	}
	if err != nil {
		return nil, err
	}
	r, err := release.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", src, key, err)
	}
	switch sh := r.Meta.Shard; {
	case r.Version != v:
		return nil, fmt.Errorf("%s/%s: %w: names version %q", src, key, release.ErrInvalid, r.Version)
	case sh == nil:
		return nil, fmt.Errorf("%s/%s: %w: %w: an unsharded release under %s/", src, key, ErrShards, release.ErrInvalid, ShardDir(i))
	case sh.Index != i:
		return nil, fmt.Errorf("%s/%s: %w: %w: describes shard %d", src, key, ErrShards, release.ErrInvalid, sh.Index)
	case sh.Count > MaxShards:
		return nil, fmt.Errorf("%s/%s: %w: %d shards", src, key, release.ErrInvalid, sh.Count)
	}
	return r, nil
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
