package tool

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batchkv/batchkv/internal/publish"
)

// TestShardedPublishVersionsPin drives the sharded data path through the
// command line: build --shards, publish one shard (partial 1/3), pin
// refused, publish the rest (complete), pin with a coordinated activation.
func TestShardedPublishVersionsPin(t *testing.T) {
	dir := t.TempDir()
	url := "file://" + filepath.Join(dir, "remote", "ds")
	in := filepath.Join(dir, "in.jsonl")
	var b strings.Builder
	for i := range 100 {
		b.WriteString(`{"key":"k` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `","value":"v"}` + "\n")
	}
	os.WriteFile(in, []byte(b.String()), 0o644)
	out := filepath.Join(dir, "out")
	if _, stderr, err := run(t, nil, "build", "--quiet", "--input", in, "--out", out, "--name", "ds", "--version", "v1",
		"--shards", "3", "--on-duplicate", "last"); err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	stdout, stderr, err := run(t, nil, "publish", "--quiet", filepath.Join(out, "shard-2"), url)
	if err != nil || !strings.Contains(stdout, "shards [2] of 3") {
		t.Fatalf("publish shard 2: %v\n%s%s", err, stdout, stderr)
	}
	stdout, _, err = run(t, nil, "versions", url)
	if err != nil || !strings.Contains(stdout, "partial 1/3") {
		t.Fatalf("versions: %v\n%s", err, stdout)
	}
	if _, _, err := run(t, nil, "pin", url, "v1"); !errors.Is(err, publish.ErrIncomplete) || !strings.Contains(err.Error(), "[0 1]") {
		t.Fatalf("pin of a partial version: %v", err)
	}
	stdout, _, err = run(t, nil, "publish", "--quiet", out, url)
	if err != nil || !strings.Contains(stdout, "shards [0 1 2] of 3") || !strings.Contains(stdout, "1 shards already published") {
		t.Fatalf("publish all: %v\n%s", err, stdout)
	}
	stdout, _, _ = run(t, nil, "versions", url)
	if !strings.Contains(stdout, "complete (3 shards)") || !strings.Contains(stdout, "target") {
		t.Fatalf("versions:\n%s", stdout)
	}
	stdout, _, err = run(t, nil, "pin", "--activate-delay", "90s", url, "v1")
	if err != nil || !strings.Contains(stdout, "every shard moves at") {
		t.Fatalf("pin: %v %s", err, stdout)
	}
}
