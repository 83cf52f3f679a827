package publish_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/objstore/file"
	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/release"
	"github.com/batchkv/batchkv/internal/slot"
	"github.com/batchkv/batchkv/internal/store"
)

// buildSharded writes a sharded build directory: dir/shard-<i>/ for each
// listed shard of n, keys routed by hash slot.
func buildSharded(t *testing.T, version string, n int, shards ...int) string {
	t.Helper()
	dir := t.TempDir()
	ranges := slot.Split(n)
	for _, i := range shards {
		var entries []store.Entry
		for j := range 200 {
			k := fmt.Sprintf("key:%d", j)
			if ranges[i].Contains(slot.Of([]byte(k))) {
				entries = append(entries, store.Entry{Key: []byte(k), Value: store.AppendString(nil, []byte(version))})
			}
		}
		meta := &store.Meta{Name: "users", Version: version, BuiltAt: time.Unix(1700000000, 0).UTC(),
			Shard: &store.Shard{Index: i, Count: n, SlotStart: ranges[i].Start, SlotEnd: ranges[i].End}}
		if err := store.WriteVersion(context.Background(), filepath.Join(dir, publish.ShardDir(i)), meta, entries); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestShardedPublish(t *testing.T) {
	backends(t, func(t *testing.T, newStore func() objstore.Store) {
		ctx := context.Background()
		st := newStore()
		const v = "20261122T000000Z"
		all := buildSharded(t, v, 3, 0, 1, 2)

		// One job publishes only its shard: a partial version.
		res, err := publish.Publish(ctx, filepath.Join(all, "shard-1"), st, publish.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(res.Shards) != "[1]" || res.Count != 3 {
			t.Fatalf("shards %v count %d", res.Shards, res.Count)
		}
		if _, err := st.Stat(ctx, "versions/"+v+"/shard-1/release.json"); err != nil {
			t.Fatalf("shard release: %v", err)
		}
		vs, err := publish.Versions(ctx, st)
		if err != nil || len(vs) != 1 || vs[0].Complete || vs[0].Shards != 3 || vs[0].ShardsPublished != 1 || vs[0].Target {
			t.Fatalf("Versions = %+v, %v; want partial 1/3", vs, err)
		}
		if _, err := publish.Resolve(ctx, st); !errors.Is(err, publish.ErrNoVersion) {
			t.Fatalf("Resolve of a partial version: %v, want ErrNoVersion", err)
		}
		if err := publish.Pin(ctx, st, v); !errors.Is(err, publish.ErrIncomplete) {
			t.Fatalf("Pin of a partial version: %v, want ErrIncomplete", err)
		}

		// The whole build: shard 1 is skipped (same build), 0 and 2 go up.
		res, err = publish.Publish(ctx, all, st, publish.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(res.Shards) != "[0 1 2]" || res.Skipped != 1 || res.Uploaded == 0 {
			t.Fatalf("second publish: %+v", res)
		}
		r, err := publish.Resolve(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Set.Sharded() || r.Set.Count != 3 || !r.Set.Complete() || r.Version() != v {
			t.Fatalf("Resolve = %+v", r.Set)
		}
		for i, rel := range r.Set.Shards {
			if rel.Meta.Shard.Index != i {
				t.Fatalf("shard %d's release describes shard %d", i, rel.Meta.Shard.Index)
			}
		}
		vs, err = publish.Versions(ctx, st)
		if err != nil || !vs[0].Complete || vs[0].ShardsPublished != 3 || !vs[0].Target || vs[0].Keys != 200 {
			t.Fatalf("Versions = %+v, %v; want complete, 200 keys", vs[0], err)
		}

		// A pin of a sharded version carries the coordinated activation time.
		now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
		p, err := publish.PinWith(ctx, st, v, publish.PinOptions{ActivateDelay: 40 * time.Second, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if p.ActivateAt == nil || !p.ActivateAt.Equal(now.Add(40*time.Second)) {
			t.Fatalf("pointer %+v", p)
		}
		// pin --latest on a sharded dataset: a "latest" pointer, coordinated.
		p, err = publish.UnpinWith(ctx, st, publish.PinOptions{})
		if err != nil || p == nil || !p.Latest || p.ActivateAt == nil {
			t.Fatalf("UnpinWith = %+v, %v", p, err)
		}
		if r, err := publish.Resolve(ctx, st); err != nil || r.Version() != v || r.Pointer == nil || !r.Pointer.Latest {
			t.Fatalf("Resolve with a latest pointer: %+v, %v", r, err)
		}
		if v, ok, err := publish.ReadPointer(ctx, st); ok || err != nil {
			t.Fatalf("ReadPointer of a latest pointer = %q, %v, %v; want no version", v, ok, err)
		}

		// Shard counts must agree.
		const v2 = "20261123T000000Z"
		if _, err := publish.Publish(ctx, buildSharded(t, v2, 3, 0), st, publish.Options{}); err != nil {
			t.Fatal(err)
		}
		_, err = publish.Publish(ctx, buildSharded(t, v2, 4, 1), st, publish.Options{})
		if !errors.Is(err, publish.ErrShards) {
			t.Fatalf("shard 1 of 4 onto a version of 3 shards: %v, want ErrShards", err)
		}
		// Sharded and unsharded cannot share a version name.
		if _, err := publish.Publish(ctx, buildVersion(t, v2, 10, 10), st, publish.Options{}); !errors.Is(err, publish.ErrShards) {
			t.Fatalf("unsharded onto a sharded version: %v, want ErrShards", err)
		}
		const v3 = "20261124T000000Z"
		if _, err := publish.Publish(ctx, buildVersion(t, v3, 10, 10), st, publish.Options{}); err != nil {
			t.Fatal(err)
		}
		if _, err := publish.Publish(ctx, buildSharded(t, v3, 3, 0), st, publish.Options{}); !errors.Is(err, publish.ErrShards) {
			t.Fatalf("a shard onto an unsharded version: %v, want ErrShards", err)
		}
		// A different build of a published shard is refused.
		other := buildSharded(t, v, 3, 2)
		if _, err := publish.Publish(ctx, buildVersionLike(t, other, v), st, publish.Options{}); !errors.Is(err, publish.ErrExists) {
			t.Fatalf("another build of a published shard: %v, want ErrExists", err)
		}
	})
}

// buildVersionLike rewrites shard 2 of dir with another build time (another
// build of the same shard) and returns its directory.
func buildVersionLike(t *testing.T, dir, v string) string {
	t.Helper()
	d := filepath.Join(dir, "shard-2")
	m, err := store.ReadMeta(d)
	if err != nil {
		t.Fatal(err)
	}
	m.BuiltAt = m.BuiltAt.Add(time.Hour)
	if err := store.WriteMeta(d, m); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestShardedPublishResumes interrupts a publish of a whole sharded build
// and runs it again: it completes, reusing what was uploaded.
func TestShardedPublishResumes(t *testing.T) {
	ctx := context.Background()
	st := file.New(t.TempDir())
	const v = "20261122T000000Z"
	all := buildSharded(t, v, 3, 0, 1, 2)
	rec := &recorder{Store: st, failAfter: 9}
	if _, err := publish.Publish(ctx, all, rec, publish.Options{Concurrency: 1}); !errors.Is(err, errInjected) {
		t.Fatalf("interrupted publish: %v", err)
	}
	if r, err := publish.ReadSet(ctx, st, v); err != nil || r.Complete() {
		t.Fatalf("after the interruption: %+v, %v; want incomplete", r, err)
	}
	res, err := publish.Publish(ctx, all, st, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed+res.Skipped == 0 {
		t.Fatalf("nothing reused: %+v", res)
	}
	if r, err := publish.ReadSet(ctx, st, v); err != nil || !r.Complete() {
		t.Fatalf("after the rerun: %+v, %v", r, err)
	}
}

// TestReadiness checks the activation time every syncer computes from the
// ready markers: the latest over shards of each shard's r-th earliest
// marker, unmoved by later markers, plus the delay, no earlier than a pin's.
func TestReadiness(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := file.New(dir)
	const v = "v1"
	set := &publish.Set{Version: v, Count: 2, Shards: make([]*release.Release, 2)}
	mark := func(shard int, node string) {
		t.Helper()
		wrote, err := publish.WriteReady(ctx, st, publish.Marker{Version: v, Shard: shard, Count: 2, Node: node, ReadyAt: time.Now()})
		if err != nil || !wrote {
			t.Fatalf("WriteReady: %v %v", wrote, err)
		}
		time.Sleep(20 * time.Millisecond) // distinct modification times
	}
	read := func() *publish.Readiness {
		t.Helper()
		rd, err := publish.ReadReadiness(ctx, st, v, 2)
		if err != nil {
			t.Fatal(err)
		}
		return rd
	}
	mark(0, "a")
	if rd := read(); fmt.Sprint(rd.Missing(1)) != "[1]" {
		t.Fatalf("missing %v", rd.Missing(1))
	}
	if _, ok := publish.ActivationTime(set, read(), 1, time.Second, nil); ok {
		t.Fatal("activation time with shard 1 missing")
	}
	mark(1, "b")
	mark(0, "c")
	rd := read()
	at1, ok := rd.ReadyAt(1)
	if !ok || !at1.Equal(rd.At[1][0]) {
		t.Fatalf("ReadyAt(1) = %v %v, want shard 1's marker %v", at1, ok, rd.At[1][0])
	}
	if _, ok := rd.ReadyAt(2); ok {
		t.Fatal("ReadyAt(2) with one marker in shard 1")
	}
	mark(1, "d")
	at2, ok := read().ReadyAt(2)
	if !ok || !at2.Equal(read().At[1][1]) {
		t.Fatalf("ReadyAt(2) = %v %v", at2, ok)
	}
	// A marker written again is not replaced (its time is part of the sum).
	if wrote, err := publish.WriteReady(ctx, st, publish.Marker{Version: v, Shard: 1, Count: 2, Node: "b"}); wrote || err != nil {
		t.Fatalf("second WriteReady = %v, %v", wrote, err)
	}
	// Later markers do not move ReadyAt(1).
	mark(1, "e")
	if at, _ := read().ReadyAt(1); !at.Equal(at1) {
		t.Fatalf("ReadyAt(1) moved from %v to %v", at1, at)
	}
	at, _ := publish.ActivationTime(set, read(), 1, 5*time.Second, nil)
	if !at.Equal(at1.Add(5 * time.Second).UTC()) {
		t.Fatalf("ActivationTime = %v, want %v", at, at1.Add(5*time.Second))
	}
	pinAt := at1.Add(time.Minute)
	p := &publish.Pointer{Version: v, PinnedAt: at1, ActivateAt: &pinAt}
	if at, _ := publish.ActivationTime(set, read(), 1, 5*time.Second, p); !at.Equal(pinAt.UTC()) {
		t.Fatalf("ActivationTime with a pin = %v, want the pointer's %v", at, pinAt)
	}
	other := &publish.Pointer{Version: "v0", PinnedAt: at1, ActivateAt: &pinAt}
	if at, _ := publish.ActivationTime(set, read(), 1, 5*time.Second, other); !at.Equal(at1.Add(5 * time.Second).UTC()) {
		t.Fatalf("a pointer naming another version moved the time to %v", at)
	}
}
