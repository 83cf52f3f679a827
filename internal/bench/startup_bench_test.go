package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/build"
	"github.com/batchkv/batchkv/internal/gen"
	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/s3test"
)

// BenchmarkStartup is `make bench-startup`: the benchmark dataset
// ($BATCHKV_STARTUP_KEYS, default 2 000 000) built and published to a local
// versitygw; then (b) a new pod, syncer and server started together on an
// empty volume, timed to the first correct GET, against the syncer's
// install; then (a) the server restarted $BATCHKV_STARTUP_REPEATS times
// (default 5) on that volume, timed from exec to the first correct GET.
// $BATCHKV_SERVER_BIN and $BATCHKV_SYNCER_BIN name the binaries.
func BenchmarkStartup(b *testing.B) {
	srvBin, synBin := os.Getenv("BATCHKV_SERVER_BIN"), os.Getenv("BATCHKV_SYNCER_BIN")
	if srvBin == "" || synBin == "" {
		b.Fatal("$BATCHKV_SERVER_BIN and $BATCHKV_SYNCER_BIN must name the binaries (make bench-startup builds them)")
	}
	keys, repeats := int64(2_000_000), 5
	if v := os.Getenv("BATCHKV_STARTUP_KEYS"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		keys = n
	}
	if v := os.Getenv("BATCHKV_STARTUP_REPEATS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		repeats = n
	}
	ctx := context.Background()
	srv := s3test.Start(b) // sets the AWS_* variables the syncer child reads
	work := b.TempDir()
	const version = "20261122T000001Z"
	t := time.Now()
	if _, err := gen.Generate(ctx, gen.Options{Dir: filepath.Join(work, "in"), Keys: keys, Parts: 2}); err != nil {
		b.Fatal(err)
	}
	meta, err := build.Build(ctx, build.Options{Inputs: []string{filepath.Join(work, "in")}, Out: filepath.Join(work, version), Name: "bench", Version: version})
	if err != nil {
		b.Fatal(err)
	}
	os.RemoveAll(filepath.Join(work, "in"))
	_, err = publish.Publish(ctx, filepath.Join(work, version), srv.Store(b, "ds"), publish.Options{})
	if err != nil {
		b.Fatal(err)
	}
	size, _ := dirSize(filepath.Join(work, version))
	fmt.Fprintf(os.Stderr, "startup: %d keys built and published (%d bytes) in %v\n", meta.Keys, size, time.Since(t).Round(time.Millisecond))
	key, want := StringRecord(0)
	srvArgs := []string{"--metrics-addr", "", "--log-level", "warn"}
	for range b.N {
		root := filepath.Join(b.TempDir(), "root")
		synArgs := []string{synBin, "--source", srv.URL("ds"), "--s3-endpoint", srv.Endpoint, "--s3-path-style",
			"--root", root, "--interval", "1s", "--metrics-addr", "", "--log-level", "warn"}
		pod, stop, err := StartPod(ctx, srvBin, srvArgs, synArgs, root, key, want, 10*time.Minute)
		stop()
		if err != nil {
			b.Fatal(err)
		}
		var restarts []time.Duration
		for range repeats {
			st, stop, err := StartPod(ctx, srvBin, srvArgs, nil, root, key, want, time.Minute)
			stop()
			if err != nil {
				b.Fatal(err)
			}
			restarts = append(restarts, st.Ready)
		}
		slowest := restarts[0]
		for _, d := range restarts {
			slowest = max(slowest, d)
		}
		fmt.Printf("start-up, %d keys (%.0f MB on disk):\n", meta.Keys, float64(size)/1e6)
		fmt.Printf("  (a) restart with the version on the volume: first correct GET after median %v, slowest %v (%d restarts: %v)\n",
			medianOf(restarts).Round(time.Millisecond), slowest.Round(time.Millisecond), len(restarts), restarts)
		fmt.Printf("  (b) new pod, empty volume, syncer and server started together: version installed after %v (download from the local S3 gateway, SHA-256, install), first correct GET after %v: %v after the install\n",
			pod.Installed.Round(time.Millisecond), pod.Ready.Round(time.Millisecond), pod.AfterInstall().Round(time.Millisecond))
		b.ReportMetric(medianOf(restarts).Seconds(), "s_restart")
		b.ReportMetric(pod.AfterInstall().Seconds(), "s_after_install")
	}
}
