package cli

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	env := map[string]string{
		"BATCHKV_ADDR":        "0.0.0.0:1",
		"BATCHKV_CACHE_BYTES": "77",
		"BATCHKV_TIMEOUT":     "3s",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name       string
		args       []string
		addr       string
		cache      int64
		timeout    time.Duration
		positional []string
	}{
		{"env fills unset flags", nil, "0.0.0.0:1", 77, 3 * time.Second, nil},
		{"command line wins", []string{"--addr", "x:2", "--cache-bytes=5"}, "x:2", 5, 3 * time.Second, nil},
		{"flags after positionals", []string{"dir", "--addr", "y:3", "key"}, "y:3", 77, 3 * time.Second, []string{"dir", "key"}},
		{"double dash ends flags", []string{"--", "--addr"}, "0.0.0.0:1", 77, 3 * time.Second, []string{"--addr"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := NewFlagSet("t", "t", &bytes.Buffer{})
			addr := fs.String("addr", "127.0.0.1:6379", "listen address")
			cache := fs.Int64("cache-bytes", 1, "cache size")
			timeout := fs.Duration("timeout", time.Second, "timeout")
			pos, err := Parse(fs, tt.args, lookup)
			if err != nil {
				t.Fatal(err)
			}
			if *addr != tt.addr || *cache != tt.cache || *timeout != tt.timeout || strings.Join(pos, " ") != strings.Join(tt.positional, " ") {
				t.Fatalf("got %s %d %s %q", *addr, *cache, *timeout, pos)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	fs := NewFlagSet("t", "t", &bytes.Buffer{})
	fs.Int("n", 0, "n")
	if _, err := Parse(fs, []string{"--bogus"}, func(string) (string, bool) { return "", false }); !errors.Is(err, ErrUsage) {
		t.Fatalf("unknown flag: %v", err)
	}
	fs = NewFlagSet("t", "t", &bytes.Buffer{})
	fs.Int("n", 0, "n")
	_, err := Parse(fs, nil, func(k string) (string, bool) { return "x", k == "BATCHKV_N" })
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "$BATCHKV_N") {
		t.Fatalf("bad env value: %v", err)
	}
	var out bytes.Buffer
	fs = NewFlagSet("t", "t DIR", &out)
	fs.String("s3-endpoint", "", "endpoint")
	if _, err := Parse(fs, []string{"--help"}, nil); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	if !strings.Contains(out.String(), "$BATCHKV_S3_ENDPOINT") {
		t.Fatalf("help does not name the env var:\n%s", out.String())
	}
}

func TestExitCode(t *testing.T) {
	var out bytes.Buffer
	for _, tt := range []struct {
		err  error
		want int
	}{
		{nil, 0}, {flag.ErrHelp, 0}, {UsageError("bad"), 2}, {errors.New("boom"), 1},
	} {
		if got := ExitCode("p", tt.err, &out); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	if !strings.Contains(out.String(), "p: boom") {
		t.Fatalf("stderr %q", out.String())
	}
}

func TestNewLogger(t *testing.T) {
	var out bytes.Buffer
	log, err := NewLogger("info", "json", &out)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("shown")
	if s := out.String(); strings.Contains(s, "hidden") || !strings.Contains(s, `"msg":"shown"`) {
		t.Fatalf("log output %q", s)
	}
	if _, err := NewLogger("loud", "json", &out); !errors.Is(err, ErrUsage) {
		t.Fatalf("bad level: %v", err)
	}
	if _, err := NewLogger("info", "xml", &out); !errors.Is(err, ErrUsage) {
		t.Fatalf("bad format: %v", err)
	}
}
