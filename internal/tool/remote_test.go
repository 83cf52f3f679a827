package tool

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batchkv/batchkv/internal/cli"
	"github.com/batchkv/batchkv/internal/publish"
)

func buildVersion(t *testing.T, dir, version, value string) string {
	t.Helper()
	in := filepath.Join(dir, version+".jsonl")
	os.WriteFile(in, []byte(`{"key":"k","value":"`+value+`"}`+"\n"), 0o644)
	out := filepath.Join(dir, version)
	if _, stderr, err := run(t, nil, "build", "--quiet", "--input", in, "--out", out, "--name", "ds", "--version", version); err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	return out
}

func TestPublishVersionsPin(t *testing.T) {
	dir := t.TempDir()
	url := "file://" + filepath.Join(dir, "remote", "ds")
	v1 := buildVersion(t, dir, "v1", "one")
	v2 := buildVersion(t, dir, "v2", "two")

	stdout, stderr, err := run(t, nil, "publish", "--quiet", v1, url)
	if err != nil || !strings.Contains(stdout, "published ds version v1") {
		t.Fatalf("publish v1: %v\n%s%s", err, stdout, stderr)
	}
	// Publishing a complete version again is refused.
	if _, _, err := run(t, nil, "publish", "--quiet", v1, url); !errors.Is(err, publish.ErrExists) {
		t.Fatalf("re-publish: %v, want ErrExists", err)
	}
	// Without --quiet, progress goes to stderr.
	if _, stderr, err := run(t, nil, "publish", v2, url); err != nil || !strings.Contains(stderr, "uploaded") {
		t.Fatalf("publish v2: %v\n%s", err, stderr)
	}

	stdout, _, err = run(t, nil, "versions", url)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "v1 ") || !strings.Contains(lines[2], "target") || strings.Contains(lines[1], "target") {
		t.Fatalf("versions:\n%s", stdout)
	}

	if stdout, _, err = run(t, nil, "pin", url, "v1"); err != nil || !strings.Contains(stdout, "pinned") {
		t.Fatalf("pin v1: %v %s", err, stdout)
	}
	stdout, _, _ = run(t, nil, "versions", url)
	if !strings.Contains(strings.Split(stdout, "\n")[1], "target (pinned)") {
		t.Fatalf("versions after pin:\n%s", stdout)
	}
	if _, _, err = run(t, nil, "pin", url, "v9"); !errors.Is(err, publish.ErrNoVersion) {
		t.Fatalf("pin of a missing version: %v", err)
	}
	if stdout, _, err = run(t, nil, "pin", url, "--latest"); err != nil || !strings.Contains(stdout, "(v2)") {
		t.Fatalf("pin --latest: %v %s", err, stdout)
	}
	for _, args := range [][]string{{"pin", url}, {"pin", url, "v1", "--latest"}, {"publish", v1}, {"versions"}, {"versions", "relative/path"}} {
		if _, _, err := run(t, nil, args...); err == nil {
			t.Errorf("%q accepted", args)
		} else if len(args) < 3 && args[0] != "versions" && !errors.Is(err, cli.ErrUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}
