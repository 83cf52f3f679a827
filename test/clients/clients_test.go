// Package clients runs real Redis clients — go-redis v9, redis-cli,
// redis-benchmark and redis-py — against batchkv-server, and the same checks
// against a real redis-server holding the same data (a read-only replica),
// so that a check that is wrong about Redis fails there first.
package clients

import (
	"context"
	"errors"
	"fmt"
	"maps"
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
	"github.com/batchkv/batchkv/internal/store"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// benchKeys is how many key:%012d strings redis-benchmark -r reads.
const benchKeys = 1000

// dataset is the clients' data: text keys (redis-cli prints one per line),
// one binary key, hashes like a feature store, and the benchmark's keys.
type dataset struct {
	strs   map[string]string
	hashes map[string][][2]string // fields in order
}

func newDataset() *dataset {
	d := &dataset{strs: map[string]string{}, hashes: map[string][][2]string{}}
	d.strs["user:1:name"] = "alice"
	d.strs["user:2:name"] = "bob"
	d.strs["ctr:1"] = "42"
	d.strs["empty"] = ""
	d.strs["bin:\x00\xff"] = "\x00\r\n\xff"
	d.hashes["feat:{user:1}"] = [][2]string{{"clicks", "10"}, {"views", "200"}, {"score", "-3"}}
	d.hashes["feat:{user:2}"] = [][2]string{{"a", "1"}}
	var wide [][2]string
	for i := 0; i < 600; i++ { // a hashtable in redis: order differs
		wide = append(wide, [2]string{fmt.Sprintf("f%d", i), strconv.Itoa(i * i)})
	}
	d.hashes["wide"] = wide
	for i := 0; i < benchKeys; i++ {
		d.strs[fmt.Sprintf("key:%012d", i)] = "bench-" + strconv.Itoa(i)
	}
	for i := 0; i < 300; i++ {
		d.strs[fmt.Sprintf("{tag%d}:x", i%7)+strconv.Itoa(i)] = strconv.Itoa(i)
	}
	return d
}

func (d *dataset) entries() []store.Entry {
	var out []store.Entry
	for _, k := range slices.Sorted(maps.Keys(d.strs)) {
		out = append(out, store.Entry{Key: []byte(k), Value: store.AppendString(nil, []byte(d.strs[k]))})
	}
	for _, k := range slices.Sorted(maps.Keys(d.hashes)) {
		fs := d.hashes[k]
		v := store.AppendHashHeader(nil, len(fs))
		for _, f := range fs {
			v = store.AppendHashField(v, []byte(f[0]), []byte(f[1]))
		}
		out = append(out, store.Entry{Key: []byte(k), Value: v})
	}
	return out
}

func (d *dataset) keys() []string {
	keys := slices.Collect(maps.Keys(d.strs))
	keys = append(keys, slices.Collect(maps.Keys(d.hashes))...)
	slices.Sort(keys)
	return keys
}

// servers starts both servers on d and returns their addresses by name.
func servers(t *testing.T, d *dataset) map[string]string {
	t.Helper()
	r := redistest.StartRedis(t)
	redistest.Load(t, r.Addr, d.entries())
	redistest.MakeReadOnlyReplica(t, r.Addr)
	dir := filepath.Join(t.TempDir(), "v1")
	if err := store.WriteVersion(context.Background(), dir, &store.Meta{Name: "clients", Version: "v1"}, d.entries()); err != nil {
		t.Fatal(err)
	}
	s := redistest.StartBatchkv(t, dir)
	return map[string]string{"redis": r.Addr, "batchkv": s.Addr}
}

// forEach runs fn against each server as a subtest.
func forEach(t *testing.T, addrs map[string]string, fn func(t *testing.T, addr string)) {
	for _, name := range []string{"redis", "batchkv"} {
		t.Run(name, func(t *testing.T) { fn(t, addrs[name]) })
	}
}

func TestClients(t *testing.T) {
	d := newDataset()
	addrs := servers(t, d)
	t.Run("go-redis/RESP3", func(t *testing.T) { forEach(t, addrs, func(t *testing.T, a string) { testGoRedis(t, d, a, 3) }) })
	t.Run("go-redis/RESP2", func(t *testing.T) { forEach(t, addrs, func(t *testing.T, a string) { testGoRedis(t, d, a, 2) }) })
	t.Run("redis-cli", func(t *testing.T) { forEach(t, addrs, func(t *testing.T, a string) { testRedisCli(t, d, a) }) })
	t.Run("redis-benchmark", func(t *testing.T) { forEach(t, addrs, testRedisBenchmark) })
	t.Run("redis-py", func(t *testing.T) { forEach(t, addrs, func(t *testing.T, a string) { testRedisPy(t, d, a) }) })
}

func testGoRedis(t *testing.T, d *dataset, addr string, proto int) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The default options: go-redis opens each connection with HELLO 3 (or
	// HELLO 2) and pipelines CLIENT SETINFO.
	rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: proto})
	defer rdb.Close()

	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}
	// go-redis falls back to RESP2 silently when HELLO 3 fails: check the
	// protocol by a reply whose type differs (a map in RESP3).
	raw, err := rdb.Do(ctx, "HGETALL", "feat:{user:2}").Result()
	if _, isMap := raw.(map[any]any); err != nil || isMap != (proto == 3) {
		t.Errorf("HGETALL by Do = %#v, %v: want a map exactly in RESP3", raw, err)
	}
	for k, want := range map[string]string{"user:1:name": "alice", "empty": "", "bin:\x00\xff": "\x00\r\n\xff", "key:000000000007": "bench-7"} {
		if got, err := rdb.Get(ctx, k).Result(); err != nil || got != want {
			t.Errorf("GET %q = %q, %v; want %q", k, got, err, want)
		}
	}
	if _, err := rdb.Get(ctx, "missing").Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET missing: err %v, want redis.Nil", err)
	}
	mget, err := rdb.MGet(ctx, "user:1:name", "missing", "ctr:1").Result()
	if err != nil || len(mget) != 3 || mget[0] != "alice" || mget[1] != nil || mget[2] != "42" {
		t.Errorf("MGET = %#v, %v", mget, err)
	}
	if got, err := rdb.HGet(ctx, "feat:{user:1}", "views").Result(); err != nil || got != "200" {
		t.Errorf("HGET = %q, %v", got, err)
	}
	for _, k := range []string{"feat:{user:1}", "wide"} {
		got, err := rdb.HGetAll(ctx, k).Result()
		want := map[string]string{}
		for _, f := range d.hashes[k] {
			want[f[0]] = f[1]
		}
		if err != nil || !maps.Equal(got, want) {
			t.Errorf("HGETALL %s: %d fields, %v; want %d", k, len(got), err, len(want))
		}
	}
	if got, err := rdb.HMGet(ctx, "feat:{user:1}", "score", "nope", "clicks").Result(); err != nil ||
		fmt.Sprint(got) != fmt.Sprint([]any{"-3", nil, "10"}) {
		t.Errorf("HMGET = %#v, %v", got, err)
	}
	if n, err := rdb.Exists(ctx, "user:1:name", "missing", "wide", "user:1:name").Result(); err != nil || n != 3 {
		t.Errorf("EXISTS = %d, %v; want 3", n, err)
	}
	for k, want := range map[string]string{"ctr:1": "string", "wide": "hash", "missing": "none"} {
		if got, err := rdb.Type(ctx, k).Result(); err != nil || got != want {
			t.Errorf("TYPE %s = %q, %v; want %q", k, got, err, want)
		}
	}

	// SCAN to the end: every key exactly once.
	seen := map[string]int{}
	iter := rdb.Scan(ctx, 0, "", 37).Iterator()
	for i := 0; iter.Next(ctx) && i < 100000; i++ {
		seen[iter.Val()]++
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN: %v", err)
	}
	if got := slices.Sorted(maps.Keys(seen)); !slices.Equal(got, d.keys()) {
		t.Errorf("SCAN returned %d keys, want %d", len(got), len(d.keys()))
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("SCAN returned %q %d times", k, n)
		}
	}

	// A pipeline, then a MULTI/EXEC transaction.
	for name, pipe := range map[string]redis.Pipeliner{"pipeline": rdb.Pipeline(), "tx": rdb.TxPipeline()} {
		get := pipe.Get(ctx, "user:2:name")
		hget := pipe.HGet(ctx, "feat:{user:2}", "a")
		missing := pipe.Get(ctx, "missing")
		all := pipe.HGetAll(ctx, "feat:{user:1}")
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if get.Val() != "bob" || hget.Val() != "1" || !errors.Is(missing.Err(), redis.Nil) || all.Val()["views"] != "200" {
			t.Errorf("%s: %q %q %v %v", name, get.Val(), hget.Val(), missing.Err(), all.Val())
		}
	}

	// A write: READONLY, retried by go-redis (its replica-failover policy)
	// and then returned.
	start := time.Now()
	err = rdb.Set(ctx, "user:1:name", "mallory", 0).Err()
	if err == nil || err.Error() != "READONLY You can't write against a read only replica." {
		t.Errorf("SET: err %v, want READONLY", err)
	}
	t.Logf("SET returned READONLY after %v of go-redis retries", time.Since(start).Round(time.Millisecond))
	if got, _ := rdb.Get(ctx, "user:1:name").Result(); got != "alice" {
		t.Errorf("after SET: %q", got)
	}
}

// cli runs redis-cli against addr; its stdout is not a terminal, so it
// prints raw replies unless told otherwise.
func cli(t *testing.T, addr string, args ...string) string {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %q: %v\n%s", args, err, out)
	}
	return string(out)
}

func testRedisCli(t *testing.T, d *dataset, addr string) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("redis-cli not found: install Debian's redis-tools (.ci/run does)")
	}
	if got := cli(t, addr, "GET", "user:1:name"); got != "alice\n" {
		t.Errorf("GET = %q", got)
	}
	if got := cli(t, addr, "--no-raw", "GET", "missing"); got != "(nil)\n" {
		t.Errorf("GET missing = %q", got)
	}
	want := "clicks\n10\nviews\n200\nscore\n-3\n"
	if got := cli(t, addr, "--raw", "HGETALL", "feat:{user:1}"); got != want {
		t.Errorf("--raw HGETALL = %q, want %q", got, want)
	}
	// In RESP3 the reply is a map: redis-cli prints a pair per line.
	if got, want := cli(t, addr, "-3", "--raw", "HGETALL", "feat:{user:1}"), "clicks 10\nviews 200\nscore -3\n"; got != want {
		t.Errorf("-3 --raw HGETALL = %q, want %q", got, want)
	}
	if got := cli(t, addr, "-3", "--no-raw", "HGETALL", "feat:{user:2}"); got != "1# \"a\" => \"1\"\n" {
		t.Errorf("-3 HGETALL = %q", got)
	}
	if got := cli(t, addr, "--no-raw", "SET", "a", "b"); got != "(error) READONLY You can't write against a read only replica.\n" {
		t.Errorf("SET = %q", got)
	}
	lines := strings.Split(strings.TrimSuffix(cli(t, addr, "--scan"), "\n"), "\n")
	var textKeys []string
	for _, k := range d.keys() {
		if !strings.ContainsAny(k, "\x00\xff") {
			textKeys = append(textKeys, k)
		}
	}
	var got []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "bin:") { // the binary key prints escaped
			got = append(got, l)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, textKeys) {
		t.Errorf("--scan listed %d keys, want each of %d once", len(got), len(textKeys))
	}
	tagged := strings.Fields(cli(t, addr, "--scan", "--pattern", "{tag3}:*"))
	if len(tagged) != 43 {
		t.Errorf("--scan --pattern: %d keys, want 43", len(tagged))
	}
}

var rateRE = regexp.MustCompile(`GET: ([0-9.]+) requests per second`)

func testRedisBenchmark(t *testing.T, addr string) {
	if _, err := exec.LookPath("redis-benchmark"); err != nil {
		t.Fatalf("redis-benchmark not found: install Debian's redis-tools (.ci/run does)")
	}
	host, port, _ := strings.Cut(addr, ":")
	for _, extra := range [][]string{nil, {"-P", "16"}} {
		args := append([]string{"-h", host, "-p", port, "-t", "get", "-n", "20000", "-c", "10", "-q", "-r", strconv.Itoa(benchKeys)}, extra...)
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		out, err := exec.CommandContext(ctx, "redis-benchmark", args...).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("redis-benchmark %q: %v\n%s", args, err, out)
		}
		s := string(out)
		if strings.Contains(s, "rror") || strings.Contains(s, "WARN") {
			t.Errorf("redis-benchmark %q reported a problem:\n%s", args, s)
		}
		m := rateRE.FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("redis-benchmark %q: no rate in output:\n%s", args, s)
		}
		rate, _ := strconv.ParseFloat(m[1], 64)
		if rate <= 0 {
			t.Errorf("redis-benchmark %q: rate %v", args, rate)
		}
		t.Logf("redis-benchmark %s: %.0f GET/s", strings.Join(extra, " "), rate)
	}
}

// python is Debian's interpreter, which has python3-redis; a python3 first
// in PATH (pyenv) may lack the module.
const python = "/usr/bin/python3"

func testRedisPy(t *testing.T, d *dataset, addr string) {
	if err := exec.Command(python, "-c", "import redis").Run(); err != nil {
		t.Fatalf("%s cannot import redis (%v): install Debian's python3-redis (.ci/run does)", python, err)
	}
	host, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	script, _ := filepath.Abs(filepath.Join("testdata", "redispy_check.py"))
	cmd := exec.CommandContext(ctx, python, script, host, port, strconv.Itoa(len(d.keys())))
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), "PASS\n") {
		t.Errorf("redis-py: %v\n%s", err, out)
	}
}
