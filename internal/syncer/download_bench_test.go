package syncer

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/s3test"
)

// BenchmarkSyncerVsS5cmd is `make bench-syncer`: the syncer's full pass
// (list, download, SHA-256 verify, fsync, atomic install) of one version
// against `s5cmd cp` of the same objects from the same local versitygw, in
// the same run, alternating which goes first, and prints the medians and
// their ratio:
//
//	BATCHKV_S5CMD=.tools/s5cmd BATCHKV_SYNCER_BENCH_BYTES=2147483648 \
//	  go test -run '^$' -bench SyncerVsS5cmd -benchtime 1x ./internal/syncer
//
// $BATCHKV_SYNCER_BENCH_BYTES (default 256 MiB) in $BATCHKV_SYNCER_BENCH_FILES
// files (default 8); $BATCHKV_SYNCER_BENCH_REPEATS runs of each (default 3);
// $BATCHKV_SYNCER_BENCH_CONCURRENCY and _PART_SIZE override the options;
// $BATCHKV_SYNCER_BENCH_CPUPROFILE writes a CPU profile of the syncer passes
// only. Without $BATCHKV_S5CMD the benchmark fails: the ratio is its point.
func BenchmarkSyncerVsS5cmd(b *testing.B) {
	s5 := os.Getenv("BATCHKV_S5CMD")
	if s5 == "" {
		b.Fatal("$BATCHKV_S5CMD must name an s5cmd binary (make bench-syncer installs one into .tools)")
	}
	size := int64(256 << 20)
	if v := os.Getenv("BATCHKV_SYNCER_BENCH_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		size = n
	}
	files := max(envInt(b, "BATCHKV_SYNCER_BENCH_FILES"), 1)
	if os.Getenv("BATCHKV_SYNCER_BENCH_FILES") == "" {
		files = 8
	}
	repeats := envInt(b, "BATCHKV_SYNCER_BENCH_REPEATS")
	if repeats <= 0 {
		repeats = 3
	}
	srv := s3test.Start(b)
	local := b.TempDir()
	writeSyntheticVersion(b, local, "v1", size, files)
	start := time.Now()
	upload(b, srv.Store(b, "ds"), local)
	b.Logf("uploaded %d bytes in %d files in %s", size, files, time.Since(start).Round(time.Millisecond))
	os.RemoveAll(local)

	var prof *os.File
	if p := os.Getenv("BATCHKV_SYNCER_BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		prof = f
		defer f.Close()
	}

	work := b.TempDir()
	syncerPass := func(i int) time.Duration {
		root := filepath.Join(work, "root"+strconv.Itoa(i))
		s, err := New(Options{Source: srv.Store(b, "ds"), Root: root, Logger: benchLogger(b),
			Concurrency: envInt(b, "BATCHKV_SYNCER_BENCH_CONCURRENCY"), PartSize: int64(envInt(b, "BATCHKV_SYNCER_BENCH_PART_SIZE"))})
		if err != nil {
			b.Fatal(err)
		}
		if prof != nil {
			if err := pprof.StartCPUProfile(prof); err != nil {
				b.Fatal(err)
			}
		}
		start, cpu0, gw0 := time.Now(), selfCPU(b), childCPU(b, "versitygw")
		res, err := s.SyncOnce(context.Background())
		took := time.Since(start)
		cpu, gw := selfCPU(b)-cpu0, childCPU(b, "versitygw")-gw0
		if prof != nil {
			pprof.StopCPUProfile()
			prof = nil // one profile: the first pass
		}
		if err != nil || res.Action != ActionInstalled {
			b.Fatalf("syncer pass: %+v %v", res, err)
		}
		dl := s.Stats().Snapshot().DownloadDuration
		b.Logf("syncer pass %d: %s (download %s, verify+install %s) %.0f MB/s; CPU syncer %s, gateway %s", i, took.Round(time.Millisecond),
			dl.Round(time.Millisecond), (took - dl).Round(time.Millisecond), mbps(size, took), cpu.Round(time.Millisecond), gw.Round(time.Millisecond))
		os.RemoveAll(root)
		return took
	}
	s5Pass := func(i int) time.Duration {
		dst := filepath.Join(work, "s5cmd"+strconv.Itoa(i))
		cmd := exec.Command(s5, "--endpoint-url", srv.Endpoint, "cp", "s3://"+srv.Bucket+"/ds/versions/v1/*", dst+"/")
		start, gw0 := time.Now(), childCPU(b, "versitygw")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("s5cmd: %v\n%s", err, out)
		}
		took := time.Since(start)
		cpu, gw := cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime(), childCPU(b, "versitygw")-gw0
		if got := treeSize(b, dst); got < size {
			b.Fatalf("s5cmd copied %d bytes, want at least %d", got, size)
		}
		b.Logf("s5cmd cp %d: %s %.0f MB/s; CPU s5cmd %s, gateway %s", i, took.Round(time.Millisecond), mbps(size, took),
			cpu.Round(time.Millisecond), gw.Round(time.Millisecond))
		os.RemoveAll(dst)
		return took
	}

	b.SetBytes(size)
	b.ResetTimer()
	var syn, s5t []time.Duration
	for range b.N {
		for i := range repeats {
			if i%2 == 0 {
				s5t = append(s5t, s5Pass(i))
				syn = append(syn, syncerPass(i))
			} else {
				syn = append(syn, syncerPass(i))
				s5t = append(s5t, s5Pass(i))
			}
		}
	}
	b.StopTimer()
	ms, m5 := medianDuration(syn), medianDuration(s5t)
	b.ReportMetric(mbps(size, ms), "MB/s_syncer")
	b.ReportMetric(mbps(size, m5), "MB/s_s5cmd")
	b.ReportMetric(m5.Seconds()/ms.Seconds(), "ratio")
	fmt.Printf("syncer download of %d bytes (%d files), %d runs each, medians: syncer %s %.0f MB/s (full pass: download, SHA-256, fsync, install); s5cmd cp %s %.0f MB/s; ratio syncer/s5cmd %.2fx\n",
		size, files, len(syn), ms.Round(time.Millisecond), mbps(size, ms), m5.Round(time.Millisecond), mbps(size, m5), m5.Seconds()/ms.Seconds())
}

func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / max(d.Seconds(), 1e-9) }

// medianDuration is the median of ds (the mean of the middle two when even).
func medianDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// selfCPU is this process's user+system CPU time.
func selfCPU(b testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// childCPU is the user+system CPU time of this process's live children
// named comm (0 if there is none).
func childCPU(b testing.TB, comm string) time.Duration {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for _, e := range ents {
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15), counted after ')'.
		s := string(st)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open || s[open+1:end] != comm {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 13 || f[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		sy, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+sy) * time.Second / 100 // USER_HZ
	}
	return total
}

func treeSize(b testing.TB, dir string) int64 {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

func TestMedianDuration(t *testing.T) {
	for _, c := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{5}, 5},
		{[]time.Duration{9, 1, 5}, 5},
		{[]time.Duration{4, 1, 3, 2}, 2}, // (2+3)/2 in integer nanoseconds
		{[]time.Duration{10, 30}, 20},
	} {
		if got := medianDuration(c.in); got != c.want {
			t.Errorf("medianDuration(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
