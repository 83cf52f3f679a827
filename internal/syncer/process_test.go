package syncer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/manifest"
	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/s3test"
)

// buildSyncer builds cmd/syncer once per test binary run; TestMain removes it.
var buildSyncer = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "batchkv-syncer-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "batchkv-syncer")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/batchkv/batchkv/cmd/syncer").CombinedOutput()
	if err != nil {
		return "", errors.New(string(out))
	}
	return bin, nil
})

func syncerBinary(t *testing.T) string {
	t.Helper()
	bin, err := buildSyncer()
	if err != nil {
		t.Fatalf("build cmd/syncer: %v", err)
	}
	return bin
}

// logLines decodes the JSON log lines of a syncer process.
func logLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// durableBytes returns how many bytes of the staged version a resumed
// syncer may keep: the parts its journals record, and complete files.
func durableBytes(t *testing.T, root string, p *published, partSize int64) int64 {
	t.Helper()
	var n int64
	for _, f := range p.rel.Files {
		jp := filepath.Join(journalDir(root, p.rel.Version), filepath.FromSlash(f.Path))
		dp := filepath.Join(stagingDir(root, p.rel.Version), filepath.FromSlash(f.Path))
		b, err := os.ReadFile(jp)
		if err == nil {
			h := journalHeader{Size: f.Size, PartSize: partSize}
			copy(h.SHA256[:], mustHex(t, f.SHA256))
			done, _, err := parseJournal(b, h)
			if err != nil {
				// Being created (or, after a kill, cut short before its
				// header was whole): the syncer starts such a file over.
				continue
			}
			for i, ok := range done {
				if ok {
					n += min(partSize, f.Size-int64(i)*partSize)
				}
			}
			continue
		}
		if fi, err := os.Stat(dp); err == nil && fi.Size() == f.Size {
			n += f.Size
		}
	}
	return n
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCrashResume SIGKILLs a real syncer process mid-download and restarts
// it: the second run fetches exactly what the first had not made durable,
// and installs a correct version; from a directory and from a real S3 server.
func TestCrashResume(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		src := t.TempDir()
		p := publishVersion(t, src, "20261122T000000Z", 2000, 10000) // ~20 MB
		crashResume(t, p, "file://"+src)
	})
	t.Run("s3", func(t *testing.T) {
		srv := s3test.Start(t) // its AWS_* credentials reach the child
		p := publishVersion(t, t.TempDir(), "20261122T000000Z", 2000, 10000)
		if _, err := publish.Publish(context.Background(), p.build, srv.Store(t, "ds"), publish.Options{}); err != nil {
			t.Fatal(err)
		}
		crashResume(t, p, srv.URL("ds"), "--s3-endpoint", srv.Endpoint, "--s3-path-style")
	})
}

func crashResume(t *testing.T, p *published, source string, extra ...string) {
	bin := syncerBinary(t)
	root := t.TempDir()
	total := p.rel.TotalSize()
	const partSize = 1 << 20
	args := append([]string{"--once", "--source", source, "--root", root, "--part-size", "1M", "--concurrency", "4", "--min-free-bytes", "0"}, extra...)

	var log1 bytes.Buffer
	cmd := exec.Command(bin, append(args, "--bandwidth", "5M")...)
	cmd.Stderr = &log1
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once a good part of the version is durable, but well before
	// the end (at 5 MB/s the whole takes ~4 s).
	deadline := time.Now().Add(20 * time.Second)
	for durableBytes(t, root, p, partSize) < total/4 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no progress in 20s; log:\n%s", log1.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if _, err := os.Stat(filepath.Join(root, manifest.FileName)); !os.IsNotExist(err) {
		t.Fatalf("killed early, yet a manifest exists: %v\n%s", err, log1.String())
	}
	kept := durableBytes(t, root, p, partSize)
	if kept <= 0 || kept >= total {
		t.Fatalf("durable after kill: %d of %d", kept, total)
	}

	var log2 bytes.Buffer
	cmd = exec.Command(bin, args...)
	cmd.Stderr = &log2
	if err := cmd.Run(); err != nil {
		t.Fatalf("resumed run: %v\n%s", err, log2.String())
	}
	var got float64 = -1
	for _, l := range logLines(t, log2.Bytes()) {
		if l["msg"] == "in sync" {
			got = l["bytes_downloaded"].(float64)
		}
	}
	if int64(got) != total-kept {
		t.Fatalf("resumed run downloaded %v bytes, want %d (%d total, %d kept)\n%s", got, total-kept, total, kept, log2.String())
	}
	t.Logf("killed with %d of %d bytes durable; resumed run fetched %d", kept, total, int64(got))
	if m := readManifest(t, root); m.Version != p.rel.Version {
		t.Fatalf("manifest %+v", m)
	}
	checkInstalled(t, root, p)
}

func TestCommandExitCodes(t *testing.T) {
	bin := syncerBinary(t)
	tests := []struct {
		name string
		args []string
		env  []string
		code int
		want string
	}{
		{"no complete version", []string{"--once", "--source", "file://" + t.TempDir(), "--root", t.TempDir()}, nil, 1, "no complete version"},
		{"missing source", []string{"--once", "--root", t.TempDir()}, nil, 2, "--source is required"},
		{"bad part size", []string{"--once", "--source", "file:///x", "--root", t.TempDir(), "--part-size", "1K"}, nil, 2, "part size"},
		{"bad size syntax", []string{"--once", "--part-size", "lots"}, nil, 2, "byte count"},
		{"env fallback", []string{"--once"}, []string{"BATCHKV_SOURCE=file://" + t.TempDir(), "BATCHKV_ROOT=" + t.TempDir()}, 1, "no complete version"},
		{"bad scheme", []string{"--once", "--source", "http://x/y", "--root", t.TempDir()}, nil, 2, "unsupported scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			cmd.Env = append(os.Environ(), tt.env...)
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || !strings.Contains(string(out), tt.want) {
				t.Fatalf("exit %d, want %d; output:\n%s", code, tt.code, out)
			}
		})
	}
}

// TestCommandContinuous runs the syncer as a daemon: it installs what is
// published while it runs and exits 0 on SIGTERM.
func TestCommandContinuous(t *testing.T) {
	bin := syncerBinary(t)
	src, root := t.TempDir(), t.TempDir()
	publishVersion(t, src, "v1", 20, 100)
	cmd := exec.Command(bin, "--source", "file://"+src, "--root", root, "--interval", "50ms", "--metrics-addr", "127.0.0.1:0")
	var log bytes.Buffer
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor(t, func() bool { m, err := manifest.Read(root); return err == nil && m.Version == "v1" })
	publishVersion(t, src, "v2", 20, 100)
	waitFor(t, func() bool {
		m, err := manifest.Read(root)
		return err == nil && m.Version == "v2" && m.Previous == "v1"
	})
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, log.String())
	}
	var stopped bool
	for _, l := range logLines(t, log.Bytes()) {
		if l["component"] == "syncer" && l["msg"] == "syncer stopped" {
			stopped = true
		}
	}
	if !stopped {
		t.Fatalf("no clean stop logged:\n%s", log.String())
	}
}
