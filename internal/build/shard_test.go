package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/gen"
	"github.com/batchkv/batchkv/internal/slot"
	"github.com/batchkv/batchkv/internal/store"
)

func TestPlan(t *testing.T) {
	tests := []struct {
		shards, only, partitions int
		wantParts                int // partitions in the plan
		wantShards               int // shards written
	}{
		{0, -1, 8, 8, 1},
		{0, -1, 1, 1, 1},
		{1, -1, 8, 8, 1},
		{3, -1, 8, 9, 3},    // 3 per shard
		{3, 1, 8, 8, 1},     // the one shard gets them all
		{16, -1, 8, 16, 16}, // at least one per shard
		{16384, -1, 8, 16384, 16384},
		{16384, 16383, 8, 1, 1}, // one slot: one partition
		{2, 0, 40000, 8192, 1},  // at most one partition per slot
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%d/%d", tt.shards, tt.only, tt.partitions), func(t *testing.T) {
			p, err := newPlan(tt.shards, tt.only, tt.partitions)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.parts) != tt.wantParts || len(p.shards) != tt.wantShards {
				t.Fatalf("%d partitions, %d shards; want %d, %d", len(p.parts), len(p.shards), tt.wantParts, tt.wantShards)
			}
			ranges := []slot.Range{{Start: 0, End: slot.Count - 1}}
			if tt.shards > 0 {
				ranges = slot.Split(tt.shards)
			}
			// Every slot of a shard written maps to a partition of that
			// shard; partitions are contiguous, in slot order; other
			// slots map to none.
			written := map[int]bool{}
			for si, sp := range p.shards {
				written[sp.index] = true
				if sp.slots != ranges[sp.index] {
					t.Fatalf("shard %d slots %v, want %v", sp.index, sp.slots, ranges[sp.index])
				}
				next := int(sp.slots.Start)
				for pi := sp.first; pi < sp.first+sp.n; pi++ {
					pp := p.parts[pi]
					if pp.shard != si || int(pp.slots.Start) != next || pp.slots.End < pp.slots.Start {
						t.Fatalf("partition %d = %+v, want shard %d from slot %d", pi, pp, si, next)
					}
					next = int(pp.slots.End) + 1
				}
				if next != int(sp.slots.End)+1 {
					t.Fatalf("shard %d partitions end at %d, want %d", sp.index, next-1, sp.slots.End)
				}
			}
			for s := range slot.Count {
				pi := p.part[s]
				shard := -1
				for i, r := range ranges {
					if r.Contains(uint16(s)) {
						shard = i
					}
				}
				if !written[shard] {
					if pi != -1 {
						t.Fatalf("slot %d of shard %d (not written) maps to partition %d", s, shard, pi)
					}
					continue
				}
				if pi < 0 || !p.parts[pi].slots.Contains(uint16(s)) || p.shards[p.parts[pi].shard].index != shard {
					t.Fatalf("slot %d maps to partition %d", s, pi)
				}
				if got := p.partitionOf(store.SlotOrder(uint16(s)) | 12345); got != int(pi) {
					t.Fatalf("partitionOf(slot %d) = %d, want %d", s, got, pi)
				}
			}
		})
	}
	for _, bad := range [][2]int{{0, 0}, {3, 3}, {-1, -1}, {16385, -1}} {
		if _, err := newPlan(bad[0], bad[1], 8); err == nil {
			t.Errorf("newPlan(%d, %d) accepted", bad[0], bad[1])
		}
	}
}

// shardInputs writes generated records plus keys exercising the hashtag
// rule (several sharing a slot, empty tags, unclosed braces, the empty key).
func shardInputs(t *testing.T, dir string, n int64) []string {
	t.Helper()
	if _, err := gen.Generate(context.Background(), gen.Options{Dir: filepath.Join(dir, "gen"), Keys: n, Seed: 21, Parts: 3}); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i, k := range []string{"", "{", "}", "{}", "{}{a}", "a{}", "{user1}.a", "{user1}.b", "{user1}", "user1", "x{user1}y", "foo{{bar}}zap", "{a{b}}"} {
		fmt.Fprintf(&b, `{"key":%q,"value":"%d"}`+"\n", k, i)
	}
	for i := range 300 {
		fmt.Fprintf(&b, `{"key":"{tag%d}:%d","hash":{"f":"%d"}}`+"\n", i%7, i, i)
	}
	return []string{filepath.Join(dir, "gen"), write(t, filepath.Join(dir, "tags.jsonl"), b.String())}
}

// checkShards checks the sharded build directory dir against the unsharded
// build whole: every key lies in exactly the shard of its slot (its stored
// order and its recomputed slot.Of), each shard's metadata is right, and the
// counts sum to whole's.
func checkShards(t *testing.T, dir string, n int, whole *store.DB) {
	t.Helper()
	ranges := slot.Split(n)
	var keys, strs, hashes, fields, kb, vb int64
	var all bytes.Buffer
	for i := range n {
		sd := store.ShardDir(dir, i)
		db := openDB(t, sd)
		m := db.Meta()
		if m.Shard == nil || *m.Shard != (store.Shard{Index: i, Count: n, SlotStart: ranges[i].Start, SlotEnd: ranges[i].End}) {
			t.Fatalf("shard %d meta.Shard = %+v, want %d of %d slots %v", i, m.Shard, i, n, ranges[i])
		}
		if m.Name != whole.Meta().Name || m.Version != whole.Meta().Version {
			t.Fatalf("shard %d is %s/%s, want %s/%s", i, m.Name, m.Version, whole.Meta().Name, whole.Meta().Version)
		}
		var count int64
		cursor := uint64(0)
		for {
			next, err := db.Scan(cursor, 1000, func(key []byte, v store.Value) error {
				count++
				if s := slot.Of(key); !ranges[i].Contains(s) {
					t.Errorf("key %q (slot %d) in shard %d (slots %v)", key, s, i, ranges[i])
				}
				if get(t, whole, key) != get(t, db, key) {
					t.Errorf("key %q differs from the unsharded build", key)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if next == 0 {
				break
			}
			cursor = next
		}
		if count != m.Keys {
			t.Fatalf("shard %d holds %d keys, its metadata says %d", i, count, m.Keys)
		}
		all.Write(dump(t, db))
		keys += m.Keys
		strs += m.Strings
		hashes += m.Hashes
		fields += m.HashFields
		kb += m.KeyBytes
		vb += m.ValueBytes
	}
	w := whole.Meta()
	if keys != w.Keys || strs != w.Strings || hashes != w.Hashes || fields != w.HashFields || kb != w.KeyBytes || vb != w.ValueBytes {
		t.Fatalf("shards sum to %d keys (%d strings, %d hashes, %d fields, %d/%d bytes), unsharded %+v", keys, strs, hashes, fields, kb, vb, w)
	}
	// Keys are stored in slot order, and shards are slot ranges in order:
	// the shards' contents one after the other are the unsharded build's.
	if !bytes.Equal(all.Bytes(), dump(t, whole)) {
		t.Fatal("the shards' contents in order differ from the unsharded build's")
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != n {
		t.Fatalf("%s holds %d entries (%v), want %d shards", dir, len(ents), err, n)
	}
}

func TestShardedBuild(t *testing.T) {
	dir := t.TempDir()
	inputs := shardInputs(t, dir, 20000)
	now := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	wholeDir := filepath.Join(dir, "out", "whole")
	if _, err := Build(context.Background(), Options{Inputs: inputs, Out: wholeDir, Name: "ds", Version: "v1", Now: now}); err != nil {
		t.Fatal(err)
	}
	whole := openDB(t, wholeDir)
	for _, n := range []int{1, 3, 16} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			out := filepath.Join(dir, "out", fmt.Sprintf("sharded-%d", n))
			total, err := Build(context.Background(), Options{Inputs: inputs, Out: out, Name: "ds", Version: "v1", Shards: n, Now: now, Memory: 4 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if total.Keys != whole.Meta().Keys || total.Shard != nil {
				t.Fatalf("Build returned %+v", total)
			}
			checkShards(t, out, n, whole)
		})
	}
}

// TestOneShard builds each shard of 3 by its own job into the same
// directory: each has the data of the same shard of a full build, and the
// directory ends up equal to the full build's.
func TestOneShard(t *testing.T) {
	dir := t.TempDir()
	inputs := shardInputs(t, dir, 20000)
	now := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	full := filepath.Join(dir, "full")
	fullMetas, err := BuildShards(context.Background(), Options{Inputs: inputs, Out: full, Name: "ds", Version: "v1", Shards: 3, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	jobs := filepath.Join(dir, "jobs")
	for _, i := range []int{2, 0, 1} {
		metas, err := BuildShards(context.Background(), Options{Inputs: inputs, Out: jobs, Name: "ds", Version: "v1", Shards: 3, OneShard: true, Shard: i, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if len(metas) != 1 {
			t.Fatalf("shard %d job returned %d metas", i, len(metas))
		}
		if !reflect.DeepEqual(metas[0], fullMetas[i]) {
			t.Fatalf("shard %d job's meta %+v, full build's %+v", i, metas[0], fullMetas[i])
		}
		a, err := store.Open(store.ShardDir(jobs, i), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := store.Open(store.ShardDir(full, i), nil)
		if err != nil {
			t.Fatal(err)
		}
		da, db := dump(t, a), dump(t, b)
		a.Close()
		b.Close()
		if !bytes.Equal(da, db) || len(da) == 0 {
			t.Fatalf("shard %d job's data (%d bytes of dump) differs from the full build's (%d)", i, len(da), len(db))
		}
		if i == 2 {
			if ents, _ := os.ReadDir(jobs); len(ents) != 1 {
				t.Fatalf("after one job %s holds %v", jobs, ents)
			}
		}
	}
	wholeDir := filepath.Join(dir, "whole")
	if _, err := Build(context.Background(), Options{Inputs: inputs, Out: wholeDir, Name: "ds", Version: "v1", Now: now}); err != nil {
		t.Fatal(err)
	}
	checkShards(t, jobs, 3, openDB(t, wholeDir))

	// A second job for a shard that is there already fails and leaves it.
	_, err = Build(context.Background(), Options{Inputs: inputs, Out: jobs, Version: "v1", Shards: 3, OneShard: true, Shard: 1})
	if err == nil || !strings.Contains(err.Error(), "shard-1 already exists") {
		t.Fatalf("err = %v", err)
	}
	for _, tt := range []struct {
		opts Options
		want string
	}{
		{Options{Shards: 3, OneShard: true, Shard: 0}, "--shard needs --version"},
		{Options{Shards: 3, OneShard: true, Shard: 3, Version: "v"}, "--shard 3: want 0 to 2"},
		{Options{OneShard: true, Version: "v"}, "--shard needs --shards"},
		{Options{Shards: 16385}, "--shards 16385"},
	} {
		tt.opts.Inputs, tt.opts.Out = inputs, filepath.Join(dir, "bad")
		if _, err := Build(context.Background(), tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err = %v, want %q", tt.opts, err, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bad")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused build left %v", err)
	}
}

// TestMoreShardsThanKeys: most shards are empty, and still complete,
// openable versions.
func TestMoreShardsThanKeys(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := range 40 {
		fmt.Fprintf(&b, `{"key":"k%d","value":"%d"}`+"\n", i, i)
	}
	in := write(t, filepath.Join(dir, "in.jsonl"), b.String())
	wholeDir := filepath.Join(dir, "whole")
	if _, err := Build(context.Background(), Options{Inputs: []string{in}, Out: wholeDir, Version: "v1", Name: "ds"}); err != nil {
		t.Fatal(err)
	}
	const n = 100
	out := filepath.Join(dir, "sharded")
	metas, err := BuildShards(context.Background(), Options{Inputs: []string{in}, Out: out, Version: "v1", Name: "ds", Shards: n})
	if err != nil {
		t.Fatal(err)
	}
	empty := 0
	for _, m := range metas {
		if m.Keys == 0 {
			empty++
		}
	}
	if len(metas) != n || empty < n-40 {
		t.Fatalf("%d metas, %d empty", len(metas), empty)
	}
	checkShards(t, out, n, openDB(t, wholeDir))
}

// TestOneSlotShards: with 16384 shards each shard is one slot; jobs for a
// few of them (--shard) hold exactly the keys of their slot.
func TestOneSlotShards(t *testing.T) {
	dir := t.TempDir()
	inputs := shardInputs(t, dir, 2000)
	wholeDir := filepath.Join(dir, "whole")
	if _, err := Build(context.Background(), Options{Inputs: inputs, Out: wholeDir, Name: "ds", Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	whole := openDB(t, wholeDir)
	out := filepath.Join(dir, "jobs")
	// The slot of the {user1} keys, of a {tagN} key, of the empty key (0),
	// the last slot, and one likely empty.
	for _, s := range []uint16{slot.Of([]byte("user1")), slot.Of([]byte("tag3")), 0, slot.Count - 1, 1} {
		metas, err := BuildShards(context.Background(), Options{Inputs: inputs, Out: out, Name: "ds", Version: "v1", Shards: slot.Count, OneShard: true, Shard: int(s)})
		if err != nil {
			t.Fatal(err)
		}
		m := metas[0]
		if *m.Shard != (store.Shard{Index: int(s), Count: slot.Count, SlotStart: s, SlotEnd: s}) {
			t.Fatalf("shard %+v", m.Shard)
		}
		var want bytes.Buffer
		wantKeys := 0
		if _, err := whole.Scan(store.SlotOrder(s), 1<<30, func(key []byte, v store.Value) error {
			if slot.Of(key) == s {
				fmt.Fprintf(&want, "%q %d %q\n", key, v.Type, v.Data)
				wantKeys++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if got := dump(t, openDB(t, store.ShardDir(out, int(s)))); !bytes.Equal(got, want.Bytes()) || m.Keys != int64(wantKeys) {
			t.Fatalf("slot %d: shard holds %d keys:\n%s\nwant %d:\n%s", s, m.Keys, got, wantKeys, want.Bytes())
		}
		if s == slot.Of([]byte("user1")) && wantKeys < 4 {
			t.Fatalf("slot %d of {user1} holds %d keys", s, wantKeys)
		}
	}
}
