package tool

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batchkv/batchkv/internal/cli"
	"github.com/batchkv/batchkv/internal/gen"
)

// run runs batchkv in-process with the given environment.
func run(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &Env{Stdout: &out, Stderr: &errb, LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	err = New().Run(context.Background(), e, args)
	return out.String(), errb.String(), err
}

func TestBuildInspectGet(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(strings.Join([]string{
		`{"key":"counter","value":42}`,
		`{"key":"user:1","hash":{"name":"ann","age":"30"}}`,
		`{"key_b64":"` + base64.StdEncoding.EncodeToString([]byte("b\x00in")) + `","value":"binary key"}`,
	}, "\n")), 0o644)
	out := filepath.Join(dir, "v1")
	stdout, stderr, err := run(t, nil, "build", "--input", in, "--out", out, "--name", "demo", "--version", "v1")
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "dataset demo version v1, 3 keys (2 strings, 1 hashes)") || !strings.Contains(stderr, "build finished") {
		t.Fatalf("stdout %q\nstderr %q", stdout, stderr)
	}

	stdout, _, err = run(t, nil, "inspect", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"dataset:      demo", "version:      v1", "keys:         3 (2 strings, 1 hashes with 2 fields)", "in.jsonl (jsonl,", `"user:1" hash (2 fields)`, `"counter" string (2 bytes)`, "per key"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, stdout)
		}
	}
	stdout, _, err = run(t, nil, "inspect", "--json", out)
	if err != nil || !strings.Contains(stdout, `"keys": 3`) {
		t.Fatalf("inspect --json: %v\n%s", err, stdout)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"get", out, "counter"}, "42\n"},
		{[]string{"get", out, "user:1"}, "name\nann\nage\n30\n"},
		{[]string{"get", "--b64", out, base64.StdEncoding.EncodeToString([]byte("b\x00in"))}, "binary key\n"},
	} {
		stdout, _, err := run(t, nil, tt.args...)
		if err != nil || stdout != tt.want {
			t.Errorf("%v = %q, %v; want %q", tt.args, stdout, err, tt.want)
		}
	}
	_, _, err = run(t, nil, "get", out, "nope")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `(nil): key "nope" not found`) {
		t.Fatalf("missing key: %v", err)
	}

	// Building over an existing version is refused.
	_, _, err = run(t, nil, "build", "--input", in, "--out", out, "--quiet")
	if err == nil || !strings.Contains(err.Error(), "already exists") || errors.Is(err, cli.ErrUsage) {
		t.Fatalf("second build: %v", err)
	}
}

func TestEnvFlags(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.csv")
	b := filepath.Join(dir, "b.csv")
	os.WriteFile(a, []byte("k,first\n"), 0o644)
	os.WriteFile(b, []byte("k,second\n"), 0o644)
	out := filepath.Join(dir, "v")
	env := map[string]string{
		"BATCHKV_INPUT":        a + "," + b,
		"BATCHKV_OUT":          out,
		"BATCHKV_ON_DUPLICATE": "last",
		"BATCHKV_VERSION":      "from-env",
		"BATCHKV_MEMORY":       "64MiB",
		"BATCHKV_QUIET":        "true",
	}
	stdout, stderr, err := run(t, env, "build")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "version from-env, 1 keys") || stderr != "" {
		t.Fatalf("stdout %q stderr %q", stdout, stderr)
	}
	stdout, _, _ = run(t, nil, "get", out, "k")
	if stdout != "second\n" {
		t.Fatalf("get = %q", stdout)
	}
	// The command line wins over the environment.
	out2 := filepath.Join(dir, "v2")
	if _, _, err := run(t, env, "build", "--input", a, "--out", out2); err != nil {
		t.Fatal(err)
	}
	if stdout, _, _ = run(t, nil, "get", out2, "k"); stdout != "first\n" {
		t.Fatalf("get = %q", stdout)
	}
	// A bad value from the environment is a usage error naming the variable.
	_, _, err = run(t, map[string]string{"BATCHKV_MEMORY": "lots"}, "build", "--input", a, "--out", filepath.Join(dir, "v3"))
	if !errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), "$BATCHKV_MEMORY") {
		t.Fatalf("bad env: %v", err)
	}
}

func TestHelpAndUsage(t *testing.T) {
	stdout, _, err := run(t, nil, "--help")
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, c := range []string{"build", "inspect", "get", "gen", "version"} {
		if !strings.Contains(stdout, "\n  "+c+" ") {
			t.Errorf("--help does not list %s:\n%s", c, stdout)
		}
	}
	_, stderr, err := run(t, nil, "build", "--help")
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("build --help: %v", err)
	}
	for _, want := range []string{"--input", "$BATCHKV_INPUT", "--memory", "(default 1GiB)", "$BATCHKV_ON_DUPLICATE", "--csv-header"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("build --help lacks %q:\n%s", want, stderr)
		}
	}
	_, stderr, err = run(t, nil, "help", "get")
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr, "batchkv get DIR KEY") {
		t.Fatalf("help get: %v %s", err, stderr)
	}
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"build", "--out", "x"},
		{"build", "--input", "x", "--out", "y", "--format", "xml"},
		{"build", "--input", "x", "--out", "y", "--on-duplicate", "newest"},
		{"build", "--input", "x", "--out", "y", "--version", "a b"},
		{"build", "--input", "x", "--out", "y", "--memory", "lots"},
		{"get", "dir"},
		{"inspect"},
		{"gen", "--out", "x"},
		{"version", "extra"},
	} {
		if _, _, err := run(t, nil, args...); !errors.Is(err, cli.ErrUsage) {
			t.Errorf("%q: err = %v, want a usage error", args, err)
		}
	}
	stdout, _, err = run(t, nil, "version")
	if err != nil || !strings.HasPrefix(stdout, "batchkv ") {
		t.Fatalf("version: %q %v", stdout, err)
	}
}

func TestGenCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	stdout, _, err := run(t, nil, "gen", "--out", dir, "--keys", "1000", "--parts", "2", "--seed", "4", "--gzip")
	if err != nil || !strings.Contains(stdout, "generated 1000 records in 2 files") {
		t.Fatalf("gen: %q %v", stdout, err)
	}
	out := filepath.Join(filepath.Dir(dir), "v")
	if _, _, err := run(t, nil, "build", "--input", dir, "--out", out, "--quiet"); err != nil {
		t.Fatal(err)
	}
	r := gen.RecordAt(4, 999)
	stdout, _, err = run(t, nil, "get", out, r.Key)
	if err != nil {
		t.Fatal(err)
	}
	if r.Fields == nil && stdout != r.Value+"\n" || r.Fields != nil && !strings.HasPrefix(stdout, r.Fields[0].Name+"\n") {
		t.Fatalf("get %s = %q, want %+v", r.Key, stdout, r)
	}
}
