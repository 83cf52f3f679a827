package tool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batchkv/batchkv/internal/cli"
	"github.com/batchkv/batchkv/internal/slot"
	"github.com/batchkv/batchkv/internal/store"
)

// TestShardedBuildInspectGet: build --shards, inspect and get on the
// sharded directory, and --shard jobs building shards one at a time.
func TestShardedBuildInspectGet(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	var b strings.Builder
	keys := map[string]string{}
	for i := range 200 {
		k := fmt.Sprintf("key:%d", i)
		if i%10 == 0 {
			k = fmt.Sprintf("{user%d}.%d", i%3, i)
		}
		keys[k] = fmt.Sprint(i)
		fmt.Fprintf(&b, `{"key":%q,"value":"%d"}`+"\n", k, i)
	}
	os.WriteFile(in, []byte(b.String()), 0o644)
	out := filepath.Join(dir, "sharded")
	stdout, stderr, err := run(t, nil, "build", "--input", in, "--out", out, "--name", "demo", "--version", "v1", "--shards", "3", "--quiet")
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	for i, want := range []string{"shard 0 of 3 (slots 0-5460)", "shard 1 of 3 (slots 5461-10922)", "shard 2 of 3 (slots 10923-16383)"} {
		if !strings.Contains(stdout, store.ShardDir(out, i)+": dataset demo version v1") || !strings.Contains(stdout, want) {
			t.Fatalf("build output lacks shard %d (%q):\n%s", i, want, stdout)
		}
	}
	stdout, _, err = run(t, nil, "inspect", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"dataset:      demo", "sharded:      3 shards, 3 in this directory", "shard 1: slots 5461-10922", "total:        200 keys"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, stdout)
		}
	}
	stdout, _, err = run(t, nil, "inspect", store.ShardDir(out, 2))
	if err != nil || !strings.Contains(stdout, "shard:        2 of 3, slots 10923-16383") {
		t.Fatalf("inspect shard-2: %v\n%s", err, stdout)
	}
	for k, v := range keys {
		stdout, _, err := run(t, nil, "get", out, k)
		if err != nil || stdout != v+"\n" {
			t.Fatalf("get %s = %q, %v; want %s", k, stdout, err, v)
		}
	}
	if _, _, err := run(t, nil, "get", out, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get nope: %v", err)
	}

	// One job per shard; get finds what the directory holds and names the
	// shard it does not.
	jobs := filepath.Join(dir, "jobs")
	if _, stderr, err := run(t, nil, "build", "--input", in, "--out", jobs, "--version", "v1", "--shards", "3", "--shard", "1", "--quiet"); err != nil {
		t.Fatalf("build --shard 1: %v\n%s", err, stderr)
	}
	if ents, _ := os.ReadDir(jobs); len(ents) != 1 || ents[0].Name() != "shard-1" {
		t.Fatalf("jobs holds %v", ents)
	}
	for k, v := range keys {
		stdout, _, err := run(t, nil, "get", jobs, k)
		s := slot.Of([]byte(k))
		if slot.Split(3)[1].Contains(s) {
			if err != nil || stdout != v+"\n" {
				t.Fatalf("get %s = %q, %v", k, stdout, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("in slot %d of shard", s)) {
			t.Fatalf("get %s (slot %d) from shard 1 only: %v", k, s, err)
		}
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--shard", "0"}, "--shard needs --shards"},
		{[]string{"--shards", "3", "--shard", "0"}, "--shard needs --version"},
		{[]string{"--shards", "3", "--shard", "3", "--version", "v"}, "--shard 3: want 0 to 2"},
		{[]string{"--shards", "16385"}, "--shards 16385"},
		{[]string{"--shards", "-2"}, "--shards -2"},
	} {
		args := append([]string{"build", "--input", in, "--out", filepath.Join(dir, "bad"), "--quiet"}, tt.args...)
		_, _, err := run(t, nil, args...)
		if !errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want usage error %q", tt.args, err, tt.want)
		}
	}
}

// TestBuildProfiles: --cpuprofile and --memprofile write pprof files (gzip).
func TestBuildProfiles(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(`{"key":"a","value":"1"}`+"\n"), 0o644)
	cpu, mem := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "mem.prof")
	if _, stderr, err := run(t, nil, "build", "--input", in, "--out", filepath.Join(dir, "v"), "--quiet", "--cpuprofile", cpu, "--memprofile", mem); err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	for _, p := range []string{cpu, mem} {
		b, err := os.ReadFile(p)
		if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Fatalf("%s: %d bytes, %v: not a gzipped pprof profile", p, len(b), err)
		}
	}
}
