// Package cluster tests batchkv-server's cluster mode with real processes:
// a dataset built by `batchkv build --shards 3`, 3 shards × 2 replicas of
// batchkv-server on 127.0.0.1, real cluster clients (go-redis ClusterClient,
// redis-py RedisCluster, redis-cli -c), and the error replies compared
// byte for byte with a real 3-node Redis Cluster started from Debian's
// redis-server.
package cluster

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/proc"
	"github.com/batchkv/batchkv/internal/redistest"
	"github.com/batchkv/batchkv/internal/slot"
	"github.com/batchkv/batchkv/internal/store"
)

func TestMain(m *testing.M) {
	// Build batchkv-server and batchkv concurrently before the tests.
	var wg sync.WaitGroup
	wg.Go(func() { redistest.ServerBinary() })
	wg.Go(func() { redistest.Binary("batchkv") })
	wg.Wait()
	redistest.Main(m)
}

// entry is one key of the test data: a string or a hash.
type entry struct {
	key    string
	str    string
	hash   [][2]string
	isHash bool
}

func (e entry) store() store.Entry {
	if !e.isHash {
		return store.Entry{Key: []byte(e.key), Value: store.AppendString(nil, []byte(e.str))}
	}
	v := store.AppendHashHeader(nil, len(e.hash))
	for _, f := range e.hash {
		v = store.AppendHashField(v, []byte(f[0]), []byte(f[1]))
	}
	return store.Entry{Key: []byte(e.key), Value: v}
}

// testData is n string keys key:<i>, hashes h:<i>, and keys sharing the
// hashtags {user:1}..{user:9} (for MGET within a slot).
func testData(n int) []entry {
	var out []entry
	for i := range n {
		out = append(out, entry{key: "key:" + strconv.Itoa(i), str: "v" + strconv.Itoa(i)})
	}
	for i := range n / 10 {
		out = append(out, entry{key: "h:" + strconv.Itoa(i), isHash: true,
			hash: [][2]string{{"name", "n" + strconv.Itoa(i)}, {"score", strconv.Itoa(i * 3)}}})
	}
	for u := 1; u <= 9; u++ {
		for _, f := range []string{"name", "email", "plan"} {
			out = append(out, entry{key: fmt.Sprintf("{user:%d}:%s", u, f), str: fmt.Sprintf("%s-%d", f, u)})
		}
	}
	return out
}

// batchkvBinary is ./cmd/batchkv built once per test process.
func batchkvBinary(t testing.TB) string {
	t.Helper()
	bin, err := redistest.Binary("batchkv")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// buildSharded writes data as JSON Lines and runs `batchkv build --shards n`,
// returning the directory holding shard-0..shard-(n-1).
func buildSharded(t testing.TB, data []entry, shards int, version string) string {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "input.jsonl")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, e := range data {
		rec := map[string]any{"key": e.key}
		if e.isHash {
			h := map[string]string{}
			for _, fv := range e.hash {
				h[fv[0]] = fv[1]
			}
			rec["hash"] = h
		} else {
			rec["value"] = e.str
		}
		if err := enc.Encode(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out := filepath.Join(dir, "build")
	args := []string{"build", "--input", in, "--out", out, "--version", version, "--quiet"}
	if shards > 0 {
		args = append(args, "--shards", strconv.Itoa(shards))
	}
	cmd := exec.Command(batchkvBinary(t), args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("batchkv %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return out
}

// copyDir copies a version directory (each server opens its own copy: Pebble
// locks its directory).
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", src, dst, err, out)
	}
}

// freePorts returns n distinct ports of 127.0.0.1 that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// node is one batchkv-server of a test cluster.
type node struct {
	addr         string
	shard, repl  int
	p            *proc.Process
	dir, metrics string
}

// bkCluster is a batchkv cluster of real processes.
type bkCluster struct {
	shards, replicas int
	nodes            []*node // shard-major: nodes[i*replicas+r]
	nodesFlag        string
}

func (c *bkCluster) node(shard, replica int) *node { return c.nodes[shard*c.replicas+replica] }

// seeds are every node's address (what a cluster client is given).
func (c *bkCluster) seeds() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.addr)
	}
	return out
}

// startCluster starts shards × replicas batchkv-servers; argsFor returns a
// node's data arguments (--dataset DIR or --root DIR ...).
func startCluster(t testing.TB, shards, replicas int, argsFor func(shard, replica int) []string) *bkCluster {
	t.Helper()
	bin, err := redistest.ServerBinary()
	if err != nil {
		t.Fatal(err)
	}
	c := &bkCluster{shards: shards, replicas: replicas}
	ports := freePorts(t, shards*replicas)
	var specs []string
	for i := range shards {
		var eps []string
		for r := range replicas {
			eps = append(eps, "127.0.0.1:"+strconv.Itoa(ports[i*replicas+r]))
		}
		specs = append(specs, strings.Join(eps, "+"))
	}
	c.nodesFlag = strings.Join(specs, ",")
	for i := range shards {
		for r := range replicas {
			n := &node{addr: "127.0.0.1:" + strconv.Itoa(ports[i*replicas+r]), shard: i, repl: r}
			args := []string{"--addr", n.addr, "--cluster-shard", strconv.Itoa(i), "--cluster-nodes", c.nodesFlag,
				"--metrics-addr", "", "--shutdown-drain", "0", "--log-format", "console"}
			args = append(args, argsFor(i, r)...)
			p, err := proc.Start(fmt.Sprintf("batchkv-server shard %d replica %d", i, r), exec.Command(bin, args...), 0)
			if err != nil {
				t.Fatal(err)
			}
			n.p = p
			t.Cleanup(func() {
				p.Stop(5 * time.Second)
				if t.Failed() {
					t.Logf("--- %s (%s) output ---\n%s", p.Name, n.addr, p.Output())
				}
			})
			c.nodes = append(c.nodes, n)
		}
	}
	for _, n := range c.nodes {
		waitPing(t, n)
	}
	return c
}

// waitPing waits until the node answers PING (20 s at most).
func waitPing(t testing.TB, n *node) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if exited, err := n.p.Exited(); exited {
			t.Fatalf("%s exited: %v\n%s", n.p.Name, err, n.p.Output())
		}
		if c, err := redistest.Dial(n.addr); err == nil {
			c.SetTimeout(2 * time.Second)
			got, err := c.DoString("PING")
			c.Close()
			if err == nil && string(got) == "+PONG\r\n" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s at %s does not answer PING\n%s", n.p.Name, n.addr, n.p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startDatasetCluster serves the shards built under buildDir, one copy of
// each shard per replica.
func startDatasetCluster(t testing.TB, buildDir string, shards, replicas int) *bkCluster {
	t.Helper()
	copies := t.TempDir()
	return startCluster(t, shards, replicas, func(i, r int) []string {
		src := filepath.Join(buildDir, "shard-"+strconv.Itoa(i))
		dst := filepath.Join(copies, fmt.Sprintf("shard-%d-replica-%d", i, r))
		copyDir(t, src, dst)
		return []string{"--dataset", dst}
	})
}

// redisCluster is a real Redis Cluster of 3 masters.
type redisCluster struct {
	addrs []string // by shard: the master holding slot.Split(3)[i]
	ids   []string
}

// startRedisCluster starts 3 redis-servers with cluster-enabled, joins them
// with redis-cli --cluster create, waits for cluster_state:ok and loads data
// into the node owning each key's slot.
func startRedisCluster(t testing.TB, data []entry) *redisCluster {
	t.Helper()
	var nodes []*redistest.Redis
	for range 3 {
		bus := freePorts(t, 1)[0]
		nodes = append(nodes, redistest.StartRedis(t, "--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
			"--cluster-node-timeout", "5000"))
	}
	args := []string{"--cluster", "create"}
	for _, n := range nodes {
		args = append(args, n.Addr)
	}
	args = append(args, "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range nodes {
		for {
			info := string(do(t, n.Addr, "CLUSTER", "INFO"))
			if strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redis cluster not ok after 20s: %s", info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Which node holds which range: redis-cli assigns them in the order
	// given, but ask rather than assume.
	rc := &redisCluster{addrs: make([]string, 3), ids: make([]string, 3)}
	ranges := slot.Split(3)
	for _, n := range nodes {
		id := strings.TrimSpace(string(redistest.MustParse(do(t, n.Addr, "CLUSTER", "MYID")).Text()))
		slots := redistest.MustParse(do(t, n.Addr, "CLUSTER", "SLOTS"))
		for _, e := range slots.Elems {
			start := int(e.Elems[0].Int)
			if string(e.Elems[2].Elems[2].Text()) != id {
				continue
			}
			for i, r := range ranges {
				if int(r.Start) == start {
					rc.addrs[i], rc.ids[i] = n.Addr, id
				}
			}
		}
	}
	for i := range rc.addrs {
		if rc.addrs[i] == "" {
			t.Fatalf("no redis node holds slots %v", ranges[i])
		}
	}
	parts := make([][]store.Entry, 3)
	for _, e := range data {
		s := slot.Of([]byte(e.key))
		for i, r := range ranges {
			if r.Contains(s) {
				parts[i] = append(parts[i], e.store())
			}
		}
	}
	for i, addr := range rc.addrs {
		redistest.Load(t, addr, parts[i])
	}
	return rc
}

// do sends one command on a new connection and returns the raw reply.
func do(t testing.TB, addr string, args ...string) []byte {
	t.Helper()
	c, err := redistest.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetTimeout(10 * time.Second)
	got, err := c.DoString(args...)
	if err != nil {
		t.Fatalf("%s %v: %v", addr, args, err)
	}
	return got
}

// keyOnShard returns a key of data whose slot shard i holds, other than
// those in skip; it fails the test if there is none.
func keyOnShard(t testing.TB, data []entry, i int, skipSlots ...uint16) string {
	t.Helper()
	r := slot.Split(3)[i]
next:
	for _, e := range data {
		if e.isHash {
			continue
		}
		s := slot.Of([]byte(e.key))
		if !r.Contains(s) {
			continue
		}
		for _, sk := range skipSlots {
			if s == sk {
				continue next
			}
		}
		return e.key
	}
	t.Fatalf("no key on shard %d", i)
	return ""
}
