package cluster

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/redistest"
)

// ThroughputEnv enables TestClusterThroughput (make bench-cluster): it takes
// minutes and its figures are for docs/CLUSTER.md, not a pass/fail check.
const ThroughputEnv = "BATCHKV_CLUSTER_BENCH"

// TestClusterThroughput measures GET throughput of a 3-shard batchkv cluster
// (one server per shard) against one batchkv-server holding the same total
// data, in the same run, with redis-benchmark (--cluster for the cluster):
// the median of 3 alternating runs per configuration.
//
//	BATCHKV_CLUSTER_BENCH=1 [BATCHKV_CLUSTER_BENCH_KEYS=1000000] go test -run TestClusterThroughput -v ./test/cluster
func TestClusterThroughput(t *testing.T) {
	if os.Getenv(ThroughputEnv) == "" {
		t.Skipf("set %s=1 to measure (make bench-cluster)", ThroughputEnv)
	}
	keys := 1_000_000
	if s := os.Getenv("BATCHKV_CLUSTER_BENCH_KEYS"); s != "" {
		keys, _ = strconv.Atoi(s)
	}
	requests := 100_000
	// redis-benchmark's GET -r N reads key:%012d for random values below N:
	// every request hits.
	dir := t.TempDir()
	in := filepath.Join(dir, "input.jsonl")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	val := strings.Repeat("x", 32)
	for i := range keys {
		fmt.Fprintf(w, "{\"key\":\"key:%012d\",\"value\":\"%s\"}\n", i, val)
	}
	w.Flush()
	f.Close()
	build := func(out string, shards int) {
		args := []string{"build", "--input", in, "--out", out, "--version", "v1", "--quiet"}
		if shards > 0 {
			args = append(args, "--shards", strconv.Itoa(shards))
		}
		start := time.Now()
		if b, err := exec.Command(batchkvBinary(t), args...).CombinedOutput(); err != nil {
			t.Fatalf("batchkv %v: %v\n%s", args, err, b)
		}
		t.Logf("built %s (%d keys, %d shards) in %v", filepath.Base(out), keys, shards, time.Since(start).Round(time.Millisecond))
	}
	single, sharded := filepath.Join(dir, "single"), filepath.Join(dir, "sharded")
	build(single, 0)
	build(sharded, 3)
	cl := startDatasetCluster(t, sharded, 3, 1)
	solo := redistest.StartBatchkv(t, single, "--log-format", "console").Addr

	type cfg struct {
		name string
		args []string
	}
	var cfgs []cfg
	for _, pipe := range []int{1, 16} {
		common := []string{"-t", "get", "-n", strconv.Itoa(requests), "-r", strconv.Itoa(keys), "-c", "50", "-P", strconv.Itoa(pipe), "--csv"}
		h, p, _ := strings.Cut(solo, ":")
		cfgs = append(cfgs, cfg{fmt.Sprintf("one server, -P %d", pipe), append([]string{"-h", h, "-p", p}, common...)})
		h, p, _ = strings.Cut(cl.node(0, 0).addr, ":")
		cfgs = append(cfgs, cfg{fmt.Sprintf("3-shard cluster, -P %d", pipe), append([]string{"--cluster", "-h", h, "-p", p}, common...)})
	}
	results := map[string][]float64{}
	for run := range 3 {
		for _, c := range cfgs {
			rps := redisBenchmark(t, c.args)
			results[c.name] = append(results[c.name], rps)
			t.Logf("run %d %-24s %10.0f GET/s", run+1, c.name, rps)
		}
	}
	t.Logf("redis-benchmark %s", strings.Join(cfgs[1].args, " "))
	for _, c := range cfgs {
		r := slices.Clone(results[c.name])
		slices.Sort(r)
		t.Logf("MEDIAN %-24s %10.0f GET/s  (runs %v)", c.name, r[1], results[c.name])
	}
}

// redisBenchmark runs redis-benchmark and returns its requests per second.
func redisBenchmark(t *testing.T, args []string) float64 {
	t.Helper()
	out, err := exec.Command("redis-benchmark", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-benchmark %v: %v\n%s", args, err, out)
	}
	// --csv: a header row, then "GET","<rps>",...; cluster mode prints
	// its node list first.
	lines := strings.Split(string(out), "\n")
	for _, l := range lines {
		if !strings.HasPrefix(l, "\"GET\"") {
			continue
		}
		rec, err := csv.NewReader(strings.NewReader(l)).Read()
		if err != nil || len(rec) < 2 {
			break
		}
		rps, err := strconv.ParseFloat(rec[1], 64)
		if err == nil {
			return rps
		}
	}
	t.Fatalf("redis-benchmark %v: no GET result in\n%s", args, out)
	return 0
}
