package syncer

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/batchkv/batchkv/internal/release"
	"github.com/batchkv/batchkv/internal/s3test"
	"github.com/batchkv/batchkv/internal/store"
)

// BenchmarkS3Download measures one whole pass (download, verify, install)
// of a synthetic version from a local versitygw with the default options:
//
//	BATCHKV_SYNCER_BENCH_BYTES=2147483648 go test -run '^$' -bench S3Download -benchtime 1x ./internal/syncer
//
// Size: $BATCHKV_SYNCER_BENCH_BYTES (default 256 MiB) in 8 files. With
// $BATCHKV_S5CMD naming an s5cmd binary, it also times `s5cmd cp` of the
// same objects from the same server, for comparison.
// $BATCHKV_SYNCER_BENCH_CONCURRENCY and _PART_SIZE override the options.
func BenchmarkS3Download(b *testing.B) {
	size := int64(256 << 20)
	if v := os.Getenv("BATCHKV_SYNCER_BENCH_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		size = n
	}
	srv := s3test.Start(b)
	local := b.TempDir()
	writeSyntheticVersion(b, local, "v1", size, 8)
	start := time.Now()
	upload(b, srv.Store(b, "ds"), local)
	b.Logf("uploaded %d bytes in %s", size, time.Since(start))
	os.RemoveAll(local)

	b.SetBytes(size)
	b.ResetTimer()
	for i := range b.N {
		root := filepath.Join(b.TempDir(), strconv.Itoa(i))
		s, err := New(Options{Source: srv.Store(b, "ds"), Root: root, Logger: benchLogger(b),
			Concurrency: envInt(b, "BATCHKV_SYNCER_BENCH_CONCURRENCY"), PartSize: int64(envInt(b, "BATCHKV_SYNCER_BENCH_PART_SIZE"))})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		res, err := s.SyncOnce(context.Background())
		if err != nil || res.Action != ActionInstalled {
			b.Fatalf("%+v %v", res, err)
		}
		took := time.Since(start)
		dl := s.Stats().Snapshot().DownloadDuration
		b.ReportMetric(float64(size)/1e6/took.Seconds(), "MB/s_pass")
		b.ReportMetric(float64(size)/1e6/dl.Seconds(), "MB/s_download")
		b.Logf("pass %s (download %s, verify+install %s): %.0f MB/s overall, %.0f MB/s download",
			took, dl, took-dl, float64(size)/1e6/took.Seconds(), float64(size)/1e6/dl.Seconds())
		b.StopTimer()
		os.RemoveAll(root)
		b.StartTimer()
	}
	b.StopTimer()
	if s5 := os.Getenv("BATCHKV_S5CMD"); s5 != "" {
		dst := b.TempDir()
		cmd := exec.Command(s5, "--endpoint-url", srv.Endpoint, "cp", "s3://"+srv.Bucket+"/ds/versions/v1/*", dst+"/")
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("s5cmd: %v\n%s", err, out)
		}
		took := time.Since(start)
		b.Logf("s5cmd cp (defaults: --numworkers 256, part size 50 MB): %s, %.0f MB/s (no fsync, no verification)", took, float64(size)/1e6/took.Seconds())
	}
}

// writeSyntheticVersion writes a version of random files (not a Pebble
// database: the syncer never opens one) with a valid dataset.json and
// release file under dir/versions/<v>/.
func writeSyntheticVersion(b testing.TB, dir, v string, size int64, files int) {
	vdir := filepath.Join(dir, "versions", v)
	if err := os.MkdirAll(filepath.Join(vdir, "db"), 0o755); err != nil {
		b.Fatal(err)
	}
	meta := &store.Meta{Format: store.FormatVersion, Name: "bench", Version: v}
	mb, _ := json.Marshal(meta)
	if err := os.WriteFile(filepath.Join(vdir, store.MetaFile), mb, 0o644); err != nil {
		b.Fatal(err)
	}
	ms := sha256.Sum256(mb)
	rel := &release.Release{Format: release.FormatVersion, Dataset: "bench", Version: v, Meta: meta,
		Files: []release.File{{Path: store.MetaFile, Size: int64(len(mb)), SHA256: hex.EncodeToString(ms[:])}}}
	rng := rand.NewChaCha8([32]byte{1})
	for i := range files {
		n := size / int64(files)
		if i == files-1 {
			n = size - n*int64(files-1)
		}
		name := fmt.Sprintf("db/%06d.sst", i+1)
		f, err := os.Create(filepath.Join(vdir, name))
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.New()
		w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
		if _, err := io.CopyN(w, rng, n); err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		rel.Files = append(rel.Files, release.File{Path: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
	}
	rb, err := rel.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vdir, release.FileName), rb, 0o644); err != nil {
		b.Fatal(err)
	}
}

// envInt reads an optional integer setting (0 when unset: the default).
func envInt(b *testing.B, name string) int {
	v := os.Getenv(name)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		b.Fatalf("$%s: %v", name, err)
	}
	return n
}

// benchLogger logs to the benchmark's output with $BATCHKV_SYNCER_BENCH_LOG set.
func benchLogger(b *testing.B) *zap.Logger {
	if os.Getenv("BATCHKV_SYNCER_BENCH_LOG") == "" {
		return zap.NewNop()
	}
	return zaptest.NewLogger(b)
}
