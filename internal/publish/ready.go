package publish

// Ready markers of the coordinated swap (docs/CLUSTER.md "Coordinated
// swap"): the syncer of shard i on node n, once it has installed version v,
// writes versions/<v>/ready/shard-<i>/<n>.json. Every syncer of the dataset
// reads the same markers and derives the same activation time from them.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/release"
)

// ReadyDir is the directory of a version's ready markers.
const ReadyDir = "ready"

// ReadyPrefix returns the prefix of version v's ready markers.
func ReadyPrefix(v string) string { return VersionPrefix(v) + ReadyDir + "/" }

// ReadyKey returns the key of node's ready marker for shard i of version v.
func ReadyKey(v string, i int, node string) string {
	return ReadyPrefix(v) + ShardDir(i) + "/" + node + ".json"
}

// Marker is the body of a ready marker, for people and tools; the
// activation time is computed from the store's own modification times (see
// Readiness), not from ReadyAt, so that the writers' clocks do not matter.
type Marker struct {
	Version string    `json:"version"`
	Shard   int       `json:"shard"`
	Count   int       `json:"count"`
	Node    string    `json:"node"`
	ReadyAt time.Time `json:"ready_at"`
}

// WriteReady writes node's marker for shard i of v unless it exists: a
// marker is written once and never replaced, because its modification time
// is part of every syncer's activation time. It reports whether it wrote.
func WriteReady(ctx context.Context, dst objstore.Store, m Marker) (bool, error) {
	if err := release.ValidName(m.Node); err != nil {
		return false, fmt.Errorf("publish: ready marker: node: %v", err)
	}
	key := ReadyKey(m.Version, m.Shard, m.Node)
	switch _, err := dst.Stat(ctx, key); {
	case err == nil:
		return false, nil
	case !errors.Is(err, objstore.ErrNotExist):
		return false, fmt.Errorf("publish: ready marker: %w", err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return false, fmt.Errorf("publish: ready marker: %w", err)
	}
	b = append(b, '\n')
	if err := dst.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
		return false, fmt.Errorf("publish: write ready marker: %w", err)
	}
	return true, nil
}

// Readiness is what one listing of a version's ready markers says.
type Readiness struct {
	// Count is the shard count.
	Count int
	// At[i] are the modification times (the store's clock) of shard i's
	// markers, earliest first; Nodes[i] the nodes in the same order.
	At    [][]time.Time
	Nodes [][]string
}

// ReadReadiness lists version v's markers (one List request) for a dataset
// of count shards. Markers of shards outside 0..count-1 and malformed names
// are ignored.
func ReadReadiness(ctx context.Context, src objstore.Store, v string, count int) (*Readiness, error) {
	prefix := ReadyPrefix(v)
	objs, err := src.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("publish: ready markers: %w", err)
	}
	rd := &Readiness{Count: count, At: make([][]time.Time, count), Nodes: make([][]string, count)}
	type mk struct {
		at   time.Time
		node string
	}
	by := make([][]mk, count)
	for _, o := range objs {
		dir, file, ok := strings.Cut(strings.TrimPrefix(o.Key, prefix), "/")
		if !ok {
			continue
		}
		i, ok := ParseShardDir(dir)
		node, isJSON := strings.CutSuffix(file, ".json")
		if !ok || !isJSON || i >= count || release.ValidName(node) != nil {
			continue
		}
		by[i] = append(by[i], mk{o.ModTime, node})
	}
	for i, ms := range by {
		slices.SortFunc(ms, func(a, b mk) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			return strings.Compare(a.node, b.node)
		})
		for _, m := range ms {
			rd.At[i] = append(rd.At[i], m.at)
			rd.Nodes[i] = append(rd.Nodes[i], m.node)
		}
	}
	return rd, nil
}

// Missing lists the shards with fewer than r markers.
func (rd *Readiness) Missing(r int) []int {
	var out []int
	for i, at := range rd.At {
		if len(at) < r {
			out = append(out, i)
		}
	}
	return out
}

// ReadyAt is when the version became ready everywhere: the latest, over
// the shards, of the r-th earliest marker of each shard. ok is false while
// a shard has fewer than r markers. Markers added later do not move it (a
// new marker is never earlier than the r-th), so every syncer that lists
// the markers after they were complete computes the same time.
func (rd *Readiness) ReadyAt(r int) (at time.Time, ok bool) {
	if rd.Count == 0 || len(rd.Missing(r)) > 0 {
		return time.Time{}, false
	}
	for _, ts := range rd.At {
		if t := ts[r-1]; t.After(at) {
			at = t
		}
	}
	return at, true
}

// ActivationTime is the time every syncer of a sharded version makes it
// live: ReadyAt(r) plus delay, no earlier than the release's own activate_at
// (any shard's), nor than the pointer's activation time when the pointer
// names v (a pin or rollback: PointerActivation). ok is false while not
// every shard is ready.
func ActivationTime(set *Set, rd *Readiness, r int, delay time.Duration, p *Pointer) (time.Time, bool) {
	ready, ok := rd.ReadyAt(r)
	if !ok {
		return time.Time{}, false
	}
	at := ready.Add(delay)
	for _, rel := range set.Shards {
		if rel != nil && rel.ActivateAt != nil && rel.ActivateAt.After(at) {
			at = *rel.ActivateAt
		}
	}
	if p != nil && (p.Latest || p.Version == set.Version) {
		if pa := p.Activation(delay); pa.After(at) {
			at = pa
		}
	}
	return at.UTC(), true
}
