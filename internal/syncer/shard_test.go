package syncer

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/manifest"
	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/objstore/file"
	"github.com/batchkv/batchkv/internal/proc"
	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/s3test"
	"github.com/batchkv/batchkv/internal/slot"
	"github.com/batchkv/batchkv/internal/store"
)

// buildShards builds version v of a dataset of n shards as a sharded build
// directory (dir/shard-<i>/, each a real version whose metadata names its
// shard and slot range), keys routed by hash slot as the builder does. Key
// "k<j>" holds "<v>:k<j>".
func buildShards(t testing.TB, v string, n, keys int) string {
	t.Helper()
	return buildShardsSized(t, v, n, keys, 0)
}

// buildShardsSized is buildShards with values padded to valueSize bytes
// (pseudo-random, so that they do not compress away).
func buildShardsSized(t testing.TB, v string, n, keys, valueSize int) string {
	t.Helper()
	dir := t.TempDir()
	ranges := slot.Split(n)
	entries := make([][]store.Entry, n)
	for j := range keys {
		k := fmt.Sprintf("k%d", j)
		s := slot.Of([]byte(k))
		for i, r := range ranges {
			if r.Contains(s) {
				val := []byte(v + ":" + k)
				if valueSize > 0 {
					pad := make([]byte, valueSize)
					r := rand.New(rand.NewPCG(uint64(j), uint64(len(v))))
					for x := range pad {
						pad[x] = byte(r.UintN(256))
					}
					val = append(val, pad...)
				}
				entries[i] = append(entries[i], store.Entry{Key: []byte(k), Value: store.AppendString(nil, val)})
			}
		}
	}
	for i, r := range ranges {
		meta := &store.Meta{Name: "testds", Version: v, BuiltAt: time.Unix(1700000000, 0).UTC(),
			Shard: &store.Shard{Index: i, Count: n, SlotStart: r.Start, SlotEnd: r.End}}
		if err := store.WriteVersion(context.Background(), filepath.Join(dir, publish.ShardDir(i)), meta, entries[i]); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// publishShards publishes the listed shards of a sharded build directory
// (each shard directory on its own, as one job of a sharded build would).
func publishShards(t testing.TB, dir string, dst objstore.Store, shards ...int) {
	t.Helper()
	for _, i := range shards {
		res, err := publish.Publish(context.Background(), filepath.Join(dir, publish.ShardDir(i)), dst, publish.Options{})
		if err != nil {
			t.Fatalf("publish shard %d: %v", i, err)
		}
		if len(res.Shards) != 1 || res.Shards[0] != i {
			t.Fatalf("publish shard %d: published shards %v", i, res.Shards)
		}
	}
}

// shardSyncer is one batchkv-syncer process serving one shard.
type shardSyncer struct {
	name  string
	shard int
	root  string
	args  []string
	p     *proc.Process
}

func (s *shardSyncer) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(syncerBinary(t), s.args...)
	cmd.Env = os.Environ()
	p, err := proc.Start(s.name, cmd, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.p = p
	t.Cleanup(func() { p.Stop(5 * time.Second) })
}

func (s *shardSyncer) stop() { s.p.Stop(5 * time.Second) }

// logs returns the syncer's log lines whose msg contains msg.
func (s *shardSyncer) logs(t *testing.T, msg string) []map[string]any {
	var out []map[string]any
	for _, l := range logLines(t, []byte(s.p.Output())) {
		if m, _ := l["msg"].(string); strings.Contains(m, msg) {
			out = append(out, l)
		}
	}
	return out
}

var metricsAddrRE = regexp.MustCompile(`"msg":"metrics listening","addr":"([^"]+)"`)

// metrics scrapes the syncer's /metrics.
func (s *shardSyncer) metrics(t *testing.T) string {
	t.Helper()
	m := metricsAddrRE.FindStringSubmatch(s.p.Output())
	if m == nil {
		t.Fatalf("%s: no metrics address in its log:\n%s", s.name, s.p.Output())
	}
	resp, err := http.Get("http://" + m[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitUntil polls cond every 100 ms until it holds or the timeout passes.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool, show ...*shardSyncer) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			for _, s := range show {
				t.Logf("%s:\n%s", s.name, s.p.Output())
			}
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func manifestOf(root string) *manifest.Manifest {
	m, err := manifest.Read(root)
	if err != nil {
		return nil
	}
	return m
}

// TestShardedCoordinatedActivation runs 3 shards × (2, 2, 1) real syncer
// processes, each on its own root, against a directory and a real S3
// server: they install only their shard, all activate a new version with
// the same activate_at, a shard withheld keeps everybody on the old version
// (and the log and metric say which shard), a syncer back after the
// activation installs at once (late), and a pin back to the old version is
// coordinated too.
func TestShardedCoordinatedActivation(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		src := t.TempDir()
		shardedCoordination(t, "file://"+src, storeFor(t, src))
	})
	t.Run("s3", func(t *testing.T) { // not parallel: s3test sets the environment
		srv := s3test.Start(t) // its AWS_* credentials reach the children
		shardedCoordination(t, srv.URL("sharded"), srv.Store(t, "sharded"), "--s3-endpoint", srv.Endpoint, "--s3-path-style")
	})
}

func storeFor(t *testing.T, dir string) objstore.Store {
	t.Helper()
	return file.New(dir)
}

func shardedCoordination(t *testing.T, url string, dst objstore.Store, extra ...string) {
	const n = 3
	const delay = 3 * time.Second
	b1 := buildShards(t, "v1", n, 600)
	publishShards(t, b1, dst, 0, 1, 2)

	var syncers []*shardSyncer
	for _, sp := range []struct {
		name  string
		shard int
	}{{"n0a", 0}, {"n0b", 0}, {"n1a", 1}, {"n1b", 1}, {"n2a", 2}} {
		s := &shardSyncer{name: sp.name, shard: sp.shard, root: t.TempDir()}
		s.args = append([]string{"--source", url, "--root", s.root, "--shard", fmt.Sprint(sp.shard), "--node-name", sp.name,
			"--interval", "1s", "--ready-poll", "200ms", "--activate-delay", delay.String(), "--metrics-addr", "127.0.0.1:0",
			"--part-size", "64K"}, extra...)
		s.start(t)
		syncers = append(syncers, s)
	}
	allOn := func(v string, ss []*shardSyncer) func() bool {
		return func() bool {
			for _, s := range ss {
				if m := manifestOf(s.root); m == nil || m.Version != v {
					return false
				}
			}
			return true
		}
	}
	waitUntil(t, "every syncer on v1", 60*time.Second, allOn("v1", syncers))
	for _, s := range syncers {
		// Only its shard: the installed version is shard s.shard.
		meta, err := store.ReadMeta(manifest.VersionDir(s.root, "v1"))
		if err != nil {
			t.Fatal(err)
		}
		if meta.Shard == nil || meta.Shard.Index != s.shard || meta.Shard.Count != n {
			t.Fatalf("%s installed %+v, want shard %d of %d", s.name, meta.Shard, s.shard, n)
		}
	}

	// n0b stops before v2: it comes back after the activation (late).
	// n2a, shard 2's only syncer, stops too: shard 2 is withheld.
	late, withheld := syncers[1], syncers[4]
	late.stop()
	withheld.stop()
	running := []*shardSyncer{syncers[0], syncers[2], syncers[3], syncers[4]}

	// v2 published partly: not a target.
	b2 := buildShards(t, "v2", n, 600)
	publishShards(t, b2, dst, 0, 1)
	if vs, err := publish.Versions(context.Background(), dst); err != nil || len(vs) != 2 || vs[1].ShardsPublished != 2 || vs[1].Shards != 3 || vs[1].Complete {
		t.Fatalf("Versions: %+v %v, want v2 partial 2/3", vs, err)
	}
	time.Sleep(2 * time.Second) // two polls
	for _, s := range running[:3] {
		if _, err := os.Stat(manifest.VersionDir(s.root, "v2")); err == nil {
			t.Fatalf("%s installed the partial v2", s.name)
		}
	}

	// v2 complete, but shard 2's syncer is down: shards 0 and 1 install it
	// and wait, naming shard 2.
	publishShards(t, b2, dst, 2)
	waitUntil(t, "shards 0 and 1 waiting for shard 2", 60*time.Second, func() bool {
		for _, s := range running[:3] {
			ok := false
			for _, l := range s.logs(t, "waiting for other shards") {
				if fmt.Sprint(l["missing_shards"]) == "[2]" && l["version"] == "v2" {
					ok = true
				}
			}
			if !ok {
				return false
			}
		}
		return true
	}, running[:3]...)
	for _, s := range running[:3] {
		if _, err := os.Stat(manifest.VersionDir(s.root, "v2")); err != nil {
			t.Fatalf("%s: v2 not installed while waiting: %v", s.name, err)
		}
		met := s.metrics(t)
		for _, want := range []string{`batchkv_syncer_activation_missing_shard{shard="2"} 1`, "batchkv_syncer_activation_waiting 1"} {
			if !strings.Contains(met, want) {
				t.Fatalf("%s: /metrics lacks %q:\n%s", s.name, want, met)
			}
		}
	}
	time.Sleep(delay + time.Second) // longer than any activation would take
	for _, s := range running[:3] {
		if m := manifestOf(s.root); m.Version != "v1" {
			t.Fatalf("%s moved to %s with shard 2 missing", s.name, m.Version)
		}
	}

	// Shard 2's syncer is back: everybody activates v2 at the same time.
	withheld.start(t)
	waitUntil(t, "every running syncer on v2", 60*time.Second, allOn("v2", running))
	at := manifestOf(running[0].root).ActivateAt
	if at == nil {
		t.Fatal("manifest without activate_at")
	}
	for _, s := range running {
		m := manifestOf(s.root)
		if m.ActivateAt == nil || !m.ActivateAt.Equal(*at) {
			t.Fatalf("%s: activate_at %v, %s has %v", s.name, m.ActivateAt, running[0].name, *at)
		}
		if m.Previous != "v1" {
			t.Fatalf("%s: previous %q", s.name, m.Previous)
		}
	}
	for _, s := range running {
		if n := len(s.logs(t, "late")); n != 0 {
			t.Fatalf("%s: logged itself late (%d lines); the activation delay was not enough here", s.name, n)
		}
	}
	t.Logf("v2 activate_at %s", at.Format(time.RFC3339Nano))

	// n0b comes back after the activation time: it installs v2 at once.
	waitUntil(t, "activate_at passed", 2*delay, func() bool { return time.Now().After(*at) })
	late.start(t)
	waitUntil(t, "late syncer on v2", 60*time.Second, allOn("v2", []*shardSyncer{late}))
	if m := manifestOf(late.root); m.ActivateAt == nil || !m.ActivateAt.Equal(*at) {
		t.Fatalf("late syncer: activate_at %v, want %v", m.ActivateAt, *at)
	}
	// The log line may reach the test's pipe after the manifest is on disk.
	waitUntil(t, "late syncer logged itself late", 10*time.Second, func() bool {
		return len(late.logs(t, "late: the shards' activation time has passed")) >= 1
	})
	if n := len(late.logs(t, "late: the shards' activation time has passed")); n != 1 {
		t.Fatalf("late syncer logged itself late %d times, want once:\n%s", n, late.p.Output())
	}
	waitUntil(t, "late counted", 10*time.Second, func() bool {
		return strings.Contains(late.metrics(t), "batchkv_syncer_late_activations_total 1")
	})

	// Roll back to v1: coordinated by the pointer's activation time.
	p, err := publish.PinWith(context.Background(), dst, "v1", publish.PinOptions{ActivateDelay: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if p.ActivateAt == nil {
		t.Fatal("pin of a sharded version without activate_at")
	}
	waitUntil(t, "every syncer back on v1", 30*time.Second, allOn("v1", syncers))
	for _, s := range syncers {
		m := manifestOf(s.root)
		if m.ActivateAt == nil || !m.ActivateAt.Equal(*p.ActivateAt) {
			t.Fatalf("%s: rollback activate_at %v, want the pointer's %v", s.name, m.ActivateAt, *p.ActivateAt)
		}
	}
	if time.Now().After(*p.ActivateAt) {
		t.Fatalf("syncers reached v1 only after the pointer's activation time %v: the test did not check a scheduled rollback", *p.ActivateAt)
	}
}
