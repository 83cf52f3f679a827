package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/redistest"
	"github.com/batchkv/batchkv/internal/slot"
	"github.com/redis/go-redis/v9"
)

const python = "/usr/bin/python3"

// TestCluster builds a 3-shard dataset with `batchkv build --shards 3`,
// serves it with 3 shards × 2 replicas of batchkv-server and reads it with
// real cluster clients; then compares a 3 × 1 batchkv cluster's replies with
// a real 3-master Redis Cluster holding the same data.
func TestCluster(t *testing.T) {
	t.Parallel() // mostly waiting on processes: overlaps the other cluster test
	data := testData(3000)
	build := buildSharded(t, data, 3, "v1")
	bk := startDatasetCluster(t, build, 3, 2)

	t.Run("topology", func(t *testing.T) { testTopology(t, bk, data, build) })
	t.Run("replicas without READONLY", func(t *testing.T) { testReplicaReads(t, bk, data) })
	t.Run("go-redis/RESP3", func(t *testing.T) { testGoRedis(t, bk, data, 3) })
	t.Run("go-redis/RESP2", func(t *testing.T) { testGoRedis(t, bk, data, 2) })
	t.Run("redis-py", func(t *testing.T) { testRedisPy(t, bk, data) })
	t.Run("redis-cli -c", func(t *testing.T) { testRedisCli(t, bk, data) })
	// Last: it stops a node.
	t.Run("replica reads with a master down", func(t *testing.T) { testMasterDown(t, bk, data) })
	t.Run("parity with Redis Cluster", func(t *testing.T) {
		rc := startRedisCluster(t, data)
		bk1 := startDatasetCluster(t, build, 3, 1)
		testParity(t, bk1, rc, data)
	})
}

func testTopology(t *testing.T, bk *bkCluster, data []entry, build string) {
	slots := string(do(t, bk.nodes[0].addr, "CLUSTER", "SLOTS"))
	ids := map[string]bool{}
	var total int64
	for _, n := range bk.nodes {
		// Every node describes the same cluster.
		if got := string(do(t, n.addr, "CLUSTER", "SLOTS")); got != slots {
			t.Errorf("%s: CLUSTER SLOTS differs from %s's:\n%q\n%q", n.addr, bk.nodes[0].addr, got, slots)
		}
		id := string(redistest.MustParse(do(t, n.addr, "CLUSTER", "MYID")).Text())
		if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(id) || ids[id] {
			t.Errorf("%s: CLUSTER MYID %q (not 40 hex, or not unique)", n.addr, id)
		}
		ids[id] = true
		if got := string(do(t, n.addr, "INFO", "cluster")); got != "$30\r\n# Cluster\r\ncluster_enabled:1\r\n\r\n" {
			t.Errorf("%s: INFO cluster = %q", n.addr, got)
		}
		if got := string(do(t, n.addr, "CONFIG", "GET", "cluster-enabled")); !strings.Contains(got, "yes") {
			t.Errorf("%s: CONFIG GET cluster-enabled = %q", n.addr, got)
		}
		dbsize := redistest.MustParse(do(t, n.addr, "DBSIZE")).Int
		if n.repl == 0 {
			total += dbsize
		}
		// SCAN, KEYS and RANDOMKEY are local to the shard, as on a Redis
		// Cluster node: every key they return hashes to this shard.
		r := slot.Split(3)[n.shard]
		keys := redistest.MustParse(do(t, n.addr, "KEYS", "*"))
		if int64(len(keys.Elems)) != dbsize {
			t.Errorf("%s: KEYS * has %d keys, DBSIZE %d", n.addr, len(keys.Elems), dbsize)
		}
		for _, k := range keys.Elems {
			if !r.Contains(slot.Of(k.Text())) {
				t.Errorf("%s: KEYS returned %q of slot %d, outside %v", n.addr, k.Text(), slot.Of(k.Text()), r)
				break
			}
		}
		rk := redistest.MustParse(do(t, n.addr, "RANDOMKEY")).Text()
		if !r.Contains(slot.Of(rk)) {
			t.Errorf("%s: RANDOMKEY %q is another shard's", n.addr, rk)
		}
		scan := redistest.MustParse(do(t, n.addr, "SCAN", "0", "COUNT", "50"))
		for _, k := range scan.Elems[1].Elems {
			if !r.Contains(slot.Of(k.Text())) {
				t.Errorf("%s: SCAN returned %q, another shard's", n.addr, k.Text())
			}
		}
	}
	if total != int64(len(data)) {
		t.Errorf("DBSIZE over the shards = %d, want %d", total, len(data))
	}
	// A server refuses a version built for another shard.
	bin, _ := redistest.ServerBinary()
	out, err := exec.Command(bin, "--addr", "127.0.0.1:0", "--dataset", filepath.Join(build, "shard-0"),
		"--cluster-shard", "1", "--cluster-nodes", "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3", "--cluster-announce", "127.0.0.1:2",
		"--metrics-addr", "").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is shard 0 of 3; this server is shard 1 of 3") {
		t.Errorf("serving shard 0's version as shard 1: %v\n%s", err, out)
	}
}

// testReplicaReads: every replica answers reads of its shard's keys with or
// without READONLY, and redirects the others to their shard's master.
func testReplicaReads(t *testing.T, bk *bkCluster, data []entry) {
	for i := range 3 {
		k := keyOnShard(t, data, i)
		other := keyOnShard(t, data, (i+1)%3)
		want := fmt.Sprintf("-MOVED %d %s\r\n", slot.Of([]byte(other)), bk.node((i+1)%3, 0).addr)
		n := bk.node(i, 1)
		c, err := redistest.Dial(n.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetTimeout(10 * time.Second)
		for _, cmd := range [][]string{{"GET", k}, {"READONLY"}, {"GET", k}, {"READWRITE"}, {"GET", k}, {"GET", other}} {
			got, err := c.DoString(cmd...)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case cmd[0] == "READONLY" || cmd[0] == "READWRITE":
				if string(got) != "+OK\r\n" {
					t.Errorf("%s %v = %q", n.addr, cmd, got)
				}
			case cmd[1] == other:
				if string(got) != want {
					t.Errorf("%s %v = %q, want %q", n.addr, cmd, got, want)
				}
			default:
				if !strings.HasPrefix(string(got), "$") || strings.HasPrefix(string(got), "$-1") {
					t.Errorf("replica %s %v = %q, want the value", n.addr, cmd, got)
				}
			}
		}
		c.Close()
	}
}

func wantValue(e entry) any {
	if e.isHash {
		m := map[string]string{}
		for _, f := range e.hash {
			m[f[0]] = f[1]
		}
		return m
	}
	return e.str
}

func testGoRedis(t *testing.T, bk *bkCluster, data []entry, proto int) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, mode := range []string{"masters", "replicas"} {
		opts := &redis.ClusterOptions{Addrs: bk.seeds(), Protocol: proto}
		if mode == "replicas" {
			opts.RouteRandomly = true // ReadOnly: reads go to any node of the shard
		}
		rdb := redis.NewClusterClient(opts)
		// Every key readable, in pipelines of 1,000 commands spanning all
		// shards (go-redis splits each by node and follows MOVED).
		for start := 0; start < len(data); start += 1000 {
			chunk := data[start:min(start+1000, len(data))]
			pipe := rdb.Pipeline()
			cmds := make([]redis.Cmder, len(chunk))
			for i, e := range chunk {
				if e.isHash {
					cmds[i] = pipe.HGetAll(ctx, e.key)
				} else {
					cmds[i] = pipe.Get(ctx, e.key)
				}
			}
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatalf("%s: pipeline of %d: %v", mode, len(chunk), err)
			}
			for i, e := range chunk {
				var got any
				switch c := cmds[i].(type) {
				case *redis.StringCmd:
					got = c.Val()
				case *redis.MapStringStringCmd:
					got = c.Val()
				}
				if fmt.Sprint(got) != fmt.Sprint(wantValue(e)) {
					t.Fatalf("%s: %s = %v, want %v", mode, e.key, got, wantValue(e))
				}
			}
		}
		// MGET within a hashtag: one slot, one node.
		for u := 1; u <= 9; u++ {
			tag := fmt.Sprintf("{user:%d}", u)
			got, err := rdb.MGet(ctx, tag+":name", tag+":email", tag+":plan", tag+":missing").Result()
			want := []any{fmt.Sprintf("name-%d", u), fmt.Sprintf("email-%d", u), fmt.Sprintf("plan-%d", u), nil}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: MGET %s… = %v, %v; want %v", mode, tag, got, err, want)
			}
		}
		// MGET across slots: Redis's CROSSSLOT.
		k0, k1 := keyOnShard(t, data, 0), keyOnShard(t, data, 1)
		if err := rdb.MGet(ctx, k0, k1).Err(); err == nil || err.Error() != "CROSSSLOT Keys in request don't hash to the same slot" {
			t.Errorf("%s: MGET across shards: %v", mode, err)
		}
		// A write is refused (go-redis retries READONLY; a context bounds it).
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		if err := rdb.Set(wctx, k0, "x", 0).Err(); err == nil || (!strings.HasPrefix(err.Error(), "READONLY") && !strings.Contains(err.Error(), "deadline")) {
			t.Errorf("%s: SET = %v, want READONLY", mode, err)
		}
		wcancel()
		rdb.Close()
	}
	if t.Failed() {
		return
	}
	// With RouteRandomly every replica served some reads.
	for _, n := range bk.nodes {
		if n.repl == 0 {
			continue
		}
		info := string(do(t, n.addr, "INFO", "stats"))
		m := regexp.MustCompile(`total_commands_processed:(\d+)`).FindStringSubmatch(info)
		if m == nil {
			t.Fatalf("INFO stats: %s", info)
		}
		if c, _ := strconv.Atoi(m[1]); c < 100 {
			t.Errorf("replica %s processed %d commands: RouteRandomly did not read from it", n.addr, c)
		}
	}
}

func testRedisPy(t *testing.T, bk *bkCluster, data []entry) {
	if err := exec.Command(python, "-c", "import redis.cluster").Run(); err != nil {
		t.Fatalf("%s cannot import redis.cluster (%v): install Debian's python3-redis (.ci/run does)", python, err)
	}
	host, port, _ := strings.Cut(bk.nodes[0].addr, ":")
	n := 0
	for _, e := range data {
		if strings.HasPrefix(e.key, "key:") {
			n++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	script, _ := filepath.Abs(filepath.Join("testdata", "redispy_cluster.py"))
	cmd := exec.CommandContext(ctx, python, script, host, port, strconv.Itoa(n), keyOnShard(t, data, 0))
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), "PASS\n") {
		t.Errorf("redis-py RedisCluster: %v\n%s", err, out)
	}
}

func testRedisCli(t *testing.T, bk *bkCluster, data []entry) {
	// Asked at shard 0's replica, keys of every shard: redis-cli -c follows
	// the MOVED redirects.
	host, port, _ := strings.Cut(bk.node(0, 1).addr, ":")
	for i := range 3 {
		k := keyOnShard(t, data, i)
		out, err := exec.Command("redis-cli", "-c", "-h", host, "-p", port, "GET", k).CombinedOutput()
		want := "v" + strings.TrimPrefix(k, "key:") + "\n"
		if err != nil || string(out) != want {
			t.Errorf("redis-cli -c GET %s (shard %d) = %q, %v; want %q", k, i, out, err, want)
		}
	}
	out, err := exec.Command("redis-cli", "-c", "-h", host, "-p", port, "HGET", "h:7", "name").CombinedOutput()
	if err != nil || string(out) != "n7\n" {
		t.Errorf("redis-cli -c HGET h:7 name = %q, %v", out, err)
	}
	out, err = exec.Command("redis-cli", "-h", host, "-p", port, "CLUSTER", "INFO").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "cluster_state:ok\r\n") || !strings.Contains(string(out), "cluster_known_nodes:6\r\n") {
		t.Errorf("redis-cli CLUSTER INFO = %q, %v", out, err)
	}
}

// normalizer replaces each cluster's node addresses, ports and IDs by the
// same placeholders of the same length (ports of both are 5-digit
// ephemeral ports), so that replies of the two clusters compare byte for
// byte.
type normalizer struct{ old, new []string }

func newNormalizer(addrs, ids []string) *normalizer {
	n := &normalizer{}
	for i, a := range addrs {
		_, port, _ := strings.Cut(a, ":")
		n.old = append(n.old, a, ":"+port+"\r\n", ids[i])
		n.new = append(n.new, fmt.Sprintf("127.0.0.1:1000%d", i), fmt.Sprintf(":1000%d\r\n", i), fmt.Sprintf("%040d", i))
	}
	return n
}

func (n *normalizer) apply(b []byte) string {
	s := string(b)
	for i := range n.old {
		s = strings.ReplaceAll(s, n.old[i], n.new[i])
	}
	return s
}

func testParity(t *testing.T, bk *bkCluster, rc *redisCluster, data []entry) {
	var bkIDs []string
	var bkAddrs []string
	for i := range 3 {
		a := bk.node(i, 0).addr
		bkAddrs = append(bkAddrs, a)
		bkIDs = append(bkIDs, string(redistest.MustParse(do(t, a, "CLUSTER", "MYID")).Text()))
		if len(rc.addrs[i]) != len(a) {
			t.Fatalf("addresses %s and %s differ in length: the byte comparison needs equal lengths", rc.addrs[i], a)
		}
	}
	nbk, nrc := newNormalizer(bkAddrs, bkIDs), newNormalizer(rc.addrs, rc.ids)

	k0 := keyOnShard(t, data, 0)
	k0b := keyOnShard(t, data, 0, slot.Of([]byte(k0)))
	k1, k2 := keyOnShard(t, data, 1), keyOnShard(t, data, 2)
	s0 := strconv.Itoa(int(slot.Of([]byte(k0))))
	var h1 string
	for _, e := range data {
		if e.isHash && slot.Split(3)[1].Contains(slot.Of([]byte(e.key))) {
			h1 = e.key
			break
		}
	}
	// Sequences run on one connection to shard 0's master of each cluster.
	seqs := [][][]string{
		{{"GET", k1}, {"GET", k2}, {"GET", k0}, {"HGETALL", h1}, {"TYPE", k2}, {"SET", k1, "x"}, {"DEL", k2}},
		{{"MGET", k0, k1}, {"MGET", k0, k0b}, {"MGET", k0, k0}, {"EXISTS", k0, k0b}, {"EXISTS", k1, k1}, {"MGET", k1, k2}},
		{{"MGET", "{user:1}:name", "{user:1}:email"}, {"MGET", "{user:2}:name", "{user:2}:plan"}, {"MGET", "{user:3}:name", "{user:4}:name"}},
		{{"MULTI"}, {"GET", k0}, {"GET", k0b}, {"EXEC"}},
		{{"MULTI"}, {"GET", k1}, {"GET", k0}, {"EXEC"}},
		{{"MULTI"}, {"GET", k0}, {"MGET", k0, k0}, {"EXEC"}},
		{{"MULTI"}, {"MGET", k0, k1}, {"EXEC"}},
		{{"MULTI"}, {"PING"}, {"EXEC"}},
		{{"WATCH", k1}, {"WATCH", k0, k0b}, {"EXEC"}},
		{{"CLUSTER", "KEYSLOT"}, {"CLUSTER", "KEYSLOT", "a", "b"}, {"CLUSTER", "KEYSLOT", "{user:1000}.following"}, {"CLUSTER", "KEYSLOT", ""}},
		{{"CLUSTER", "COUNTKEYSINSLOT", "x"}, {"CLUSTER", "COUNTKEYSINSLOT", "-1"}, {"CLUSTER", "COUNTKEYSINSLOT", "16384"},
			{"CLUSTER", "COUNTKEYSINSLOT", s0}, {"CLUSTER", "COUNTKEYSINSLOT", "1", "2"}, {"CLUSTER", "COUNTKEYSINSLOT", "99999999999999999999"}},
		{{"CLUSTER", "GETKEYSINSLOT", "1", "x"}, {"CLUSTER", "GETKEYSINSLOT", "1", "-1"}, {"CLUSTER", "GETKEYSINSLOT", "99999", "1"},
			{"CLUSTER", "GETKEYSINSLOT", "x", "1"}, {"CLUSTER", "GETKEYSINSLOT", s0, "0"}, {"CLUSTER", "GETKEYSINSLOT", s0, "10"},
			{"CLUSTER", "GETKEYSINSLOT", s0}},
		{{"CLUSTER", "FOO"}, {"CLUSTER"}, {"CLUSTER", "MYID", "x"}, {"CLUSTER", "SLOTS", "x"}, {"CLUSTER", "INFO", "x"}, {"CLUSTER", "HELP"}, {"cluster", "help", "x"}},
		{{"READONLY"}, {"READWRITE"}, {"ASKING"}, {"READONLY", "x"}, {"ASKING", "x"}},
		{{"CLUSTER", "SLOTS"}, {"CLUSTER", "MYID"}, {"INFO", "cluster"}, {"DBSIZE"}},
		{{"HELLO", "3"}, {"CLUSTER", "SLOTS"}, {"GET", k1}, {"MGET", k0, k1}, {"CLUSTER", "KEYSLOT", k0}},
	}
	for _, seq := range seqs {
		a, b := runSeq(t, rc.addrs[0], seq), runSeq(t, bk.node(0, 0).addr, seq)
		for i := range seq {
			want, got := nrc.apply(a[i]), nbk.apply(b[i])
			if seq[i][0] == "HELLO" {
				continue // server name, version, id differ by design
			}
			if got != want {
				t.Errorf("%q (after %q):\nredis   %q\nbatchkv %q", seq[i], seq[:i], want, got)
			}
		}
	}
	// CLUSTER SHARDS: Redis lists the shards in hashtable order; compare
	// them as a set.
	for _, proto := range []string{"2", "3"} {
		a := runSeq(t, rc.addrs[0], [][]string{{"HELLO", proto}, {"CLUSTER", "SHARDS"}})[1]
		b := runSeq(t, bk.node(0, 0).addr, [][]string{{"HELLO", proto}, {"CLUSTER", "SHARDS"}})[1]
		if x, y := shardSet(t, nrc.apply(a)), shardSet(t, nbk.apply(b)); x != y {
			t.Errorf("RESP%s CLUSTER SHARDS:\nredis   %s\nbatchkv %s", proto, x, y)
		}
	}
	// CLUSTER INFO: the same fields and values, except the bus message
	// counters (no bus here).
	for _, proto := range []string{"2", "3"} {
		a := runSeq(t, rc.addrs[0], [][]string{{"HELLO", proto}, {"CLUSTER", "INFO"}})[1]
		b := runSeq(t, bk.node(0, 0).addr, [][]string{{"HELLO", proto}, {"CLUSTER", "INFO"}})[1]
		if x, y := infoFields(t, a), infoFields(t, b); x != y {
			t.Errorf("RESP%s CLUSTER INFO:\nredis   %s\nbatchkv %s", proto, x, y)
		}
		if a[0] != b[0] {
			t.Errorf("RESP%s CLUSTER INFO type %q, redis %q", proto, b[0], a[0])
		}
	}
	// CLUSTER NODES: Redis's line format; pings, epochs and bus ports
	// are the bus's and differ.
	line := regexp.MustCompile(`^[0-9a-f]{40} 127\.0\.0\.1:\d+@\d+ (myself,)?master - \d+ \d+ \d+ connected \d+-\d+$`)
	for _, addr := range []string{rc.addrs[0], bk.node(0, 0).addr} {
		nodes := string(redistest.MustParse(do(t, addr, "CLUSTER", "NODES")).Text())
		lines := strings.Split(strings.TrimSuffix(nodes, "\n"), "\n")
		if len(lines) != 3 || !strings.HasSuffix(nodes, "\n") {
			t.Errorf("%s CLUSTER NODES: %q", addr, nodes)
		}
		for _, l := range lines {
			if !line.MatchString(l) {
				t.Errorf("%s CLUSTER NODES line %q", addr, l)
			}
		}
	}
}

func runSeq(t *testing.T, addr string, seq [][]string) [][]byte {
	t.Helper()
	c, err := redistest.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetTimeout(10 * time.Second)
	var out [][]byte
	for _, cmd := range seq {
		got, err := c.DoString(cmd...)
		if err != nil {
			t.Fatalf("%s %q: %v", addr, cmd, err)
		}
		out = append(out, got)
	}
	return out
}

func shardSet(t *testing.T, raw string) string {
	r := redistest.MustParse([]byte(raw))
	var shards []string
	for _, e := range r.Elems {
		shards = append(shards, e.String())
	}
	slices.Sort(shards)
	return strings.Join(shards, "\n")
}

func infoFields(t *testing.T, raw []byte) string {
	text := string(redistest.MustParse(raw).Text())
	var keep []string
	for _, l := range strings.Split(text, "\r\n") {
		if !strings.HasPrefix(l, "cluster_stats_messages_") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "|")
}

// testMasterDown stops shard 0's first endpoint (the one CLUSTER SLOTS
// reports as its master; the topology is static, so it stays reported):
// a go-redis ClusterClient reading from replicas (RouteRandomly) still reads
// every key of shard 0 from the shard's other node, as docs/CLUSTER.md says.
func testMasterDown(t *testing.T, bk *bkCluster, data []entry) {
	bk.node(0, 0).p.Stop(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: bk.seeds(), RouteRandomly: true})
	defer rdb.Close()
	r := slot.Split(3)[0]
	n, failed := 0, 0
	var firstErr error
	for _, e := range data {
		if e.isHash || !r.Contains(slot.Of([]byte(e.key))) {
			continue
		}
		n++
		got, err := rdb.Get(ctx, e.key).Result()
		if err != nil || got != e.str {
			if failed++; firstErr == nil {
				firstErr = fmt.Errorf("GET %s = %q, %v", e.key, got, err)
			}
		}
	}
	if failed != 0 {
		t.Errorf("with shard 0's master down, %d of %d reads of shard 0 failed; first: %v", failed, n, firstErr)
	}
	t.Logf("shard 0's master down: %d reads of shard 0 through RouteRandomly, %d failed", n, failed)
}
