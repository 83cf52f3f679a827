package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExitCodes builds the binary and checks how errors map to exit codes.
func TestExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "batchkv")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(`{"key":"k","value":"v"}`+"\n"), 0o644)
	v := filepath.Join(dir, "v")
	for _, tt := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"version"}, 0, "batchkv ", ""},
		{[]string{"--help"}, 0, "Commands:", ""},
		{[]string{"build", "--help"}, 0, "", "$BATCHKV_INPUT"},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"build", "--input", in}, 2, "", "--input and --out are required"},
		{[]string{"build", "--input", in, "--out", v, "--quiet"}, 0, "1 keys", ""},
		{[]string{"get", v, "k"}, 0, "v\n", ""},
		{[]string{"get", v, "nope"}, 1, "", `(nil): key "nope" not found`},
		{[]string{"build", "--input", filepath.Join(dir, "missing.jsonl"), "--out", filepath.Join(dir, "w")}, 1, "", "no such file"},
	} {
		cmd := exec.Command(bin, tt.args...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tt.code || !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) {
			t.Errorf("batchkv %q: exit %d, stdout %q, stderr %q; want exit %d, %q, %q", tt.args, code, stdout.String(), stderr.String(), tt.code, tt.stdout, tt.stderr)
		}
	}
}
