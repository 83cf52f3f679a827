package cluster

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/slot"

	"github.com/batchkv/batchkv/internal/redistest"
)

// ThroughputEnv enables TestClusterThroughput (make bench-cluster): it takes
// minutes and its figures are for docs/CLUSTER.md, not a pass/fail check.
const ThroughputEnv = "BATCHKV_CLUSTER_BENCH"

// TestClusterThroughput measures GET throughput of a 3-shard batchkv cluster
// (one server per shard) against one batchkv-server holding the same total
// data, in the same run and with the same load generator (in this process):
// the median of 3 alternating runs of 5 s per configuration.
//
// Not redis-benchmark: in --cluster mode it rewrites keys to
// key:{tag}:<n>, so its GETs miss on a prebuilt dataset while the plain
// run's hit.
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
	single, sharded, one := filepath.Join(dir, "single"), filepath.Join(dir, "sharded"), filepath.Join(dir, "one")
	build(single, 0)
	build(sharded, 3)
	build(one, 1)
	cl := startDatasetCluster(t, sharded, 3, 1)
	// The same data as one shard of a 1-shard cluster: the cost of cluster
	// mode's per-command slot check on one server.
	cl1 := startDatasetCluster(t, one, 1, 1)
	solo := redistest.StartBatchkv(t, single, "--log-format", "console").Addr

	// The load: raw RESP GETs of random existing keys (every reply a hit,
	// checked), conns connections in all, pipelines of depth P, for a fixed
	// time. Against the cluster each connection talks to one shard's server
	// and asks only that shard's keys, as a cluster client routes by slot;
	// the same number of connections go to the one server.
	const conns = 48
	dur := 5 * time.Second
	shardKeys := make([][]string, 3)
	var all []string
	for i := range keys {
		k := fmt.Sprintf("key:%012d", i)
		all = append(all, k)
		for s, r := range slot.Split(3) {
			if r.Contains(slot.Of([]byte(k))) {
				shardKeys[s] = append(shardKeys[s], k)
			}
		}
	}
	type target struct {
		addr string
		keys []string
	}
	oneTargets := []target{{solo, all}}
	var clusterTargets []target
	for s := range 3 {
		clusterTargets = append(clusterTargets, target{cl.node(s, 0).addr, shardKeys[s]})
	}
	results := map[string][]float64{}
	var names []string
	for run := range 3 {
		for _, pipe := range []int{1, 16} {
			for _, c := range []struct {
				name    string
				targets []target
			}{{"one server", oneTargets}, {"1-shard cluster", []target{{cl1.node(0, 0).addr, all}}}, {"3-shard cluster", clusterTargets}} {
				name := fmt.Sprintf("%s, P=%d", c.name, pipe)
				if run == 0 {
					names = append(names, name)
				}
				var ops atomic.Int64
				var wg sync.WaitGroup
				start := time.Now()
				for i := range conns {
					tg := c.targets[i%len(c.targets)]
					wg.Go(func() {
						if err := getLoop(tg.addr, tg.keys, pipe, start.Add(dur), uint64(i+run*1000), &ops); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
				rps := float64(ops.Load()) / time.Since(start).Seconds()
				results[name] = append(results[name], rps)
				t.Logf("run %d %-26s %10.0f GET/s", run+1, name, rps)
			}
		}
	}
	for _, name := range names {
		r := slices.Clone(results[name])
		slices.Sort(r)
		t.Logf("MEDIAN %-26s %10.0f GET/s  (runs %.0f)", name, r[1], results[name])
	}
}

// getLoop sends pipelines of p GETs of random keys on one connection until
// end, checking that every reply is a hit of the key's value.
func getLoop(addr string, keys []string, p int, end time.Time, seed uint64, ops *atomic.Int64) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(end.Add(30 * time.Second))
	rd := bufio.NewReaderSize(c, 64<<10)
	rng := rand.New(rand.NewPCG(seed, 7))
	var req []byte
	for n := 0; time.Now().Before(end) && n < 50_000_000; n += p {
		req = req[:0]
		for range p {
			k := keys[rng.IntN(len(keys))]
			req = fmt.Appendf(req, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(k), k)
		}
		if _, err := c.Write(req); err != nil {
			return err
		}
		for range p {
			line, err := rd.ReadSlice('\n')
			if err != nil {
				return err
			}
			if len(line) < 4 || line[0] != '$' || line[1] == '-' {
				return fmt.Errorf("%s: GET answered %q, want a value", addr, line)
			}
			n, _ := strconv.Atoi(string(line[1 : len(line)-2]))
			if _, err := rd.Discard(n + 2); err != nil {
				return err
			}
		}
		ops.Add(int64(p))
	}
	return nil
}
