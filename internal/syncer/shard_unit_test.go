package syncer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/manifest"
	"github.com/batchkv/batchkv/internal/objstore/file"
	"github.com/batchkv/batchkv/internal/store"
)

// TestShardMismatch: sharded and unsharded syncers and versions that do not
// match fail the pass with KindShard and a message saying what to do, and
// install nothing.
func TestShardMismatch(t *testing.T) {
	ctx := context.Background()
	sharded := t.TempDir()
	publishShards(t, buildShards(t, "v1", 3, 100), file.New(sharded), 0, 1, 2)
	plain := t.TempDir()
	publishVersion(t, plain, "v1", 10, 10)

	for _, tc := range []struct {
		name, src string
		mod       func(*Options)
		want      string
	}{
		{"unsharded syncer, sharded version", sharded, nil, "is sharded (3 shards): run the syncer with --shard I or --shards 3"},
		{"sharded syncer, unsharded version", plain, func(o *Options) { o.Sharded, o.Shard, o.Node = true, 0, "n" }, "is not sharded"},
		{"shard count", sharded, func(o *Options) { o.Sharded, o.Shard, o.Shards, o.Node = true, 1, 4, "n" }, "has 3 shards, this syncer expects 4"},
		{"shard beyond count", sharded, func(o *Options) { o.Sharded, o.Shard, o.Node = true, 5, "n" }, "has 3 shards, this syncer serves shard 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			s := newTestSyncer(t, tc.src, root, tc.mod)
			_, err := s.SyncOnce(ctx)
			if !errors.Is(err, ErrShard) || KindOf(err) != KindShard || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v (kind %v), want ErrShard, KindShard, %q", err, KindOf(err), tc.want)
			}
			if s.Stats().Failures(KindShard) != 1 {
				t.Fatal("not counted as a shard failure")
			}
			if _, err := os.Stat(manifest.VersionDir(root, "v1")); err == nil {
				t.Fatal("installed despite the mismatch")
			}
		})
	}
}

// TestShardWaitKeepsPending: a shard installed and waiting for another
// shard keeps the old version live, reports the missing shard, and GC
// (keep 2, with live and previous on disk) does not delete the installed
// version that waits.
func TestShardWaitKeepsPending(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	st := file.New(src)
	root := t.TempDir()
	mod := func(o *Options) {
		o.Sharded, o.Shard, o.Node = true, 0, "n0"
		o.Interval, o.ReadyPoll, o.ActivateDelay = 300*time.Millisecond, 50*time.Millisecond, time.Second
	}
	s := newTestSyncer(t, src, root, mod)
	// Shard 1's syncer.
	other := newTestSyncer(t, src, t.TempDir(), func(o *Options) { mod(o); o.Shard, o.Node = 1, "n1" })
	for _, v := range []string{"v1", "v2"} {
		publishShards(t, buildShards(t, v, 2, 100), st, 0, 1)
		if _, err := s.SyncOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if res, err := other.SyncOnce(ctx); err != nil || res.Action != ActionInstalled {
			t.Fatalf("shard 1: %+v %v", res, err)
		}
	}
	// v2 went live after waiting for shard 1's marker? The first SyncOnce of
	// v2 ran before shard 1 was ready: it waited an interval, then gave up.
	for range 3 {
		if m := readManifest(t, root); m.Version == "v2" {
			break
		}
		if _, err := s.SyncOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	m := readManifest(t, root)
	if m.Version != "v2" || m.Previous != "v1" || m.ActivateAt == nil {
		t.Fatalf("manifest %+v, want v2 after v1 with an activation time", m)
	}

	// v3: shard 1 never gets ready.
	publishShards(t, buildShards(t, "v3", 2, 100), st, 0, 1)
	res, err := s.SyncOnce(ctx)
	if err != nil || res.Action != ActionWaiting || fmt.Sprint(res.Missing) != "[1]" {
		t.Fatalf("SyncOnce = %+v, %v; want waiting for shard 1", res, err)
	}
	if m := readManifest(t, root); m.Version != "v2" {
		t.Fatalf("live version %s while shard 1 is missing", m.Version)
	}
	st2 := s.Stats().Snapshot()
	if !st2.Waiting || fmt.Sprint(st2.Missing) != "[1]" || st2.WaitingSince.IsZero() {
		t.Fatalf("stats %+v", st2)
	}
	if got := fmt.Sprint(versionsOnDisk(t, root)); got != "[v1 v2 v3]" {
		t.Fatalf("on disk %s, want v1 (previous) v2 (live) v3 (waiting)", got)
	}
	if meta, err := store.ReadMeta(manifest.VersionDir(root, "v3")); err != nil || meta.Shard.Index != 0 {
		t.Fatalf("installed %+v %v", meta, err)
	}
}

// TestCommandShardFromHostname: --shards N alone takes the shard from the
// StatefulSet ordinal in $HOSTNAME, and the node name from $HOSTNAME too.
func TestCommandShardFromHostname(t *testing.T) {
	src := t.TempDir()
	publishShards(t, buildShards(t, "v1", 3, 100), file.New(src), 0, 1, 2)
	root := t.TempDir()
	env := map[string]string{"HOSTNAME": "batchkv-4"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var stderr bytes.Buffer
	err := Command(context.Background(), []string{"--source", "file://" + src, "--root", root, "--shards", "3", "--once",
		"--min-free-bytes", "0"}, &stderr, lookup)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	meta, err := store.ReadMeta(manifest.VersionDir(root, "v1"))
	if err != nil || meta.Shard == nil || meta.Shard.Index != 1 {
		t.Fatalf("installed %+v %v, want shard 1 (ordinal 4 mod 3)", meta, err)
	}
	if _, err := os.Stat(src + "/versions/v1/ready/shard-1/batchkv-4.json"); err != nil {
		t.Fatalf("ready marker: %v", err)
	}
	env["HOSTNAME"] = "no-ordinal-here"
	err = Command(context.Background(), []string{"--source", "file://" + src, "--root", t.TempDir(), "--shards", "3", "--once"}, &stderr, lookup)
	if err == nil || !strings.Contains(err.Error(), "not a StatefulSet pod name") {
		t.Fatalf("err = %v", err)
	}
}

// TestShardBootstrapEmptyVolume: a syncer with an empty volume, while the
// shards wait for a new version, installs the version they serve, not the
// one they wait for (it goes live at once); once every shard is ready it
// moves on like the others.
func TestShardBootstrapEmptyVolume(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	st := file.New(src)
	mod := func(shard int, node string) func(*Options) {
		return func(o *Options) {
			o.Sharded, o.Shard, o.Node = true, shard, node
			o.Interval, o.ReadyPoll, o.ActivateDelay = 200*time.Millisecond, 50*time.Millisecond, 100*time.Millisecond
		}
	}
	s0 := newTestSyncer(t, src, t.TempDir(), mod(0, "a"))
	s1 := newTestSyncer(t, src, t.TempDir(), mod(1, "b"))
	publishShards(t, buildShards(t, "v1", 2, 100), st, 0, 1)
	for _, s := range []*Syncer{s0, s1} {
		if _, err := s.SyncOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	publishShards(t, buildShards(t, "v2", 2, 100), st, 0, 1)
	if res, err := s0.SyncOnce(ctx); err != nil || res.Action != ActionWaiting {
		t.Fatalf("shard 0: %+v %v, want waiting for shard 1", res, err)
	}

	// A new replica of shard 0 (empty volume): v1, what shard 1 serves.
	root := t.TempDir()
	fresh := newTestSyncer(t, src, root, mod(0, "c"))
	res, err := fresh.SyncOnce(ctx)
	if err != nil || res.Version != "v1" || readManifest(t, root).Version != "v1" {
		t.Fatalf("fresh replica: %+v %v, want v1 live", res, err)
	}
	// Then v2, waiting with the others.
	if res, err := fresh.SyncOnce(ctx); err != nil || res.Action != ActionWaiting || readManifest(t, root).Version != "v1" {
		t.Fatalf("fresh replica, second pass: %+v %v", res, err)
	}
	// Shard 1 gets ready: everybody moves to v2 with one activation time.
	if _, err := s1.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Syncer{fresh, s0} {
		if _, err := s.SyncOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want := readManifest(t, s1.opts.Root)
	for _, s := range []*Syncer{fresh, s0} {
		m := readManifest(t, s.opts.Root)
		if m.Version != "v2" || m.ActivateAt == nil || !m.ActivateAt.Equal(*want.ActivateAt) {
			t.Fatalf("%s: %+v, want v2 at %v", s.opts.Node, m, want.ActivateAt)
		}
	}

	// A brand-new dataset (no version ready anywhere): the newest version.
	src2 := t.TempDir()
	publishShards(t, buildShards(t, "v1", 2, 100), file.New(src2), 0, 1)
	publishShards(t, buildShards(t, "v2", 2, 100), file.New(src2), 0, 1)
	root2 := t.TempDir()
	if res, err := newTestSyncer(t, src2, root2, mod(0, "d")).SyncOnce(ctx); err != nil || res.Version != "v2" {
		t.Fatalf("new dataset: %+v %v, want v2", res, err)
	}
}
