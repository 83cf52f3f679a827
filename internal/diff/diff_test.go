package diff

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/redistest"
	"github.com/batchkv/batchkv/internal/store"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// entries returns n strings and n/4 hashes, some with binary keys.
func entries(n int) []store.Entry {
	var es []store.Entry
	for i := range n {
		es = append(es, store.Entry{Key: fmt.Appendf(nil, "str:%d", i), Value: store.AppendString(nil, fmt.Appendf(nil, "value-%d", i*7))})
	}
	for i := range n / 4 {
		v := store.AppendHashHeader(nil, 3)
		for f := range 3 {
			v = store.AppendHashField(v, fmt.Appendf(nil, "f%d", f), fmt.Appendf(nil, "%d", i*f))
		}
		es = append(es, store.Entry{Key: fmt.Appendf(nil, "hash:%d", i), Value: v})
	}
	es = append(es,
		store.Entry{Key: []byte("bin\x00key\xff"), Value: store.AppendString(nil, []byte("\x00\x01\x02"))},
		store.Entry{Key: []byte("empty"), Value: store.AppendString(nil, nil)},
	)
	return es
}

// do runs one command on addr and fails the test unless the reply is want
// (want "" accepts any non-error reply).
func do(t *testing.T, addr, want string, args ...string) {
	t.Helper()
	c, err := redistest.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.DoString(args...)
	if err != nil {
		t.Fatal(err)
	}
	if (want != "" && string(got) != want) || (want == "" && got[0] == '-') {
		t.Fatalf("%v on %s: %s, want %q", args, addr, redistest.Escape(got), want)
	}
}

func twoRedis(t *testing.T, es []store.Entry) (a, b string) {
	ra, rb := redistest.StartRedis(t), redistest.StartRedis(t)
	redistest.Load(t, ra.Addr, es)
	redistest.Load(t, rb.Addr, es)
	return ra.Addr, rb.Addr
}

func keysFile(keys ...string) *strings.Reader {
	return strings.NewReader(strings.Join(keys, "\n") + "\n")
}

func TestIdentical(t *testing.T) {
	es := entries(400)
	a, b := twoRedis(t, es)
	var lines []string
	for _, e := range es {
		lines = append(lines, base64.StdEncoding.EncodeToString(e.Key))
	}
	for _, tt := range []struct {
		name         string
		opts         Options
		wantCompared int64
	}{
		{"scan", Options{}, int64(len(es))},
		{"scan both", Options{Both: true}, int64(len(es))},
		{"keys b64", Options{Keys: keysFile(lines...), KeysBase64: true}, int64(len(es))},
		{"keys with absent", Options{Keys: keysFile("str:1", "nope", "hash:3")}, 3},
		{"sample", Options{Sample: 50}, -1},
		{"batch 1 concurrency 1", Options{Batch: 1, Concurrency: 1, Keys: keysFile("str:1", "hash:2")}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.A.Addr, tt.opts.B.Addr, tt.opts.Rate = a, b, -1
			rep, err := Run(context.Background(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Err() != nil || rep.Differences() != 0 || rep.Equal != rep.Compared {
				t.Fatalf("identical servers differ: %v\n%+v", rep.Err(), rep.Examples)
			}
			if tt.wantCompared >= 0 && rep.Compared != tt.wantCompared {
				t.Fatalf("compared %d keys, want %d", rep.Compared, tt.wantCompared)
			}
			if tt.wantCompared < 0 && (rep.Compared < 50 || rep.Compared > 100) {
				t.Fatalf("sample compared %d keys, want 50..100", rep.Compared)
			}
			if rep.A.DBSize != int64(len(es)) || rep.B.DBSize != int64(len(es)) {
				t.Fatalf("dbsize %d %d", rep.A.DBSize, rep.B.DBSize)
			}
			if rep.A.Latency.Rounds == 0 || rep.A.Latency.P50 <= 0 || rep.B.Latency.P99 < rep.B.Latency.P50 {
				t.Fatalf("latency %+v %+v", rep.A.Latency, rep.B.Latency)
			}
		})
	}
	rep, _ := Run(context.Background(), Options{A: Endpoint{Addr: a}, B: Endpoint{Addr: b}, Keys: keysFile("str:1", "nope")})
	if rep.AbsentBoth != 1 || rep.Equal != 2 {
		t.Fatalf("absent on both: %+v", rep)
	}
}

func TestPlantedDifferences(t *testing.T) {
	es := entries(100)
	a, b := twoRedis(t, es)
	// Types batchkv does not serve, equal on both sides.
	for _, addr := range []string{a, b} {
		do(t, addr, ":3\r\n", "SADD", "set:eq", "x", "y", "z")
		do(t, addr, ":2\r\n", "RPUSH", "list:eq", "1", "2")
		do(t, addr, ":2\r\n", "ZADD", "zset:eq", "1.5", "m1", "2", "m2")
	}
	do(t, a, ":2\r\n", "SADD", "set:diff", "x", "y")
	do(t, b, ":2\r\n", "SADD", "set:diff", "x", "w")
	do(t, a, ":2\r\n", "ZADD", "zset:diff", "1", "m1", "2", "m2")
	do(t, b, ":2\r\n", "ZADD", "zset:diff", "1", "m1", "3", "m2")
	do(t, a, ":2\r\n", "RPUSH", "list:diff", "a", "b")
	do(t, b, ":2\r\n", "RPUSH", "list:diff", "a", "c")
	do(t, a, "", "XADD", "stream", "*", "f", "v")
	do(t, b, "", "XADD", "stream", "*", "f", "v")

	do(t, b, "+OK\r\n", "SET", "str:5", "changed")                                 // mismatch
	do(t, b, ":1\r\n", "DEL", "str:6")                                             // missing on B
	do(t, a, ":1\r\n", "DEL", "str:7")                                             // missing on A
	do(t, b, "+OK\r\n", "SET", "only-b", "extra")                                  // missing on A (extra on B)
	do(t, b, ":0\r\n", "HSET", "hash:2", "f1", "999")                              // hash field changed
	do(t, b, ":1\r\n", "DEL", "hash:3")                                            // type difference…
	do(t, b, "+OK\r\n", "SET", "hash:3", "now a string")                           // …string on B
	do(t, a, ":1\r\n", "HSET", "hash:4", "new", "field")                           // hash with an extra field on A
	do(t, b, "+OK\r\n", "SET", strings.Repeat("k", 100), strings.Repeat("v", 200)) // long, truncated

	run := func(t *testing.T, o Options) *Report {
		t.Helper()
		o.A.Addr, o.B.Addr, o.Rate, o.Examples = a, b, -1, 100
		rep, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(rep.Err(), ErrDifferent) {
			t.Fatalf("Err() = %v", rep.Err())
		}
		return rep
	}
	find := func(t *testing.T, rep *Report, kind, key string) Difference {
		t.Helper()
		for _, d := range rep.Examples {
			if d.Kind == kind && d.Key == quote(key) {
				return d
			}
		}
		t.Fatalf("no %s difference for %q in %+v", kind, key, rep.Examples)
		return Difference{}
	}

	t.Run("scan both", func(t *testing.T) {
		rep := run(t, Options{Both: true})
		// A: 100 + 25 + 2 entries − str:7 + 6 sets/lists/zsets + stream = 133 keys.
		// B's scan adds str:7, only-b and the long key; DBSIZE 133 ≠ 135.
		if rep.A.DBSize != 133 || rep.B.DBSize != 135 {
			t.Fatalf("dbsize %d %d", rep.A.DBSize, rep.B.DBSize)
		}
		checkCounts(t, rep, &Report{Compared: 136, Equal: 124, Mismatched: 6, MissingA: 3, MissingB: 1, TypeDiffs: 1, Unsupported: 1, CountDiffs: 1})
		if d := find(t, rep, KindMismatch, "str:5"); d.A != `string "value-35"` || d.B != `string "changed"` {
			t.Errorf("str:5: %+v", d)
		}
		if d := find(t, rep, KindMismatch, "hash:2"); d.A != `hash (3 fields), field "f1" = "2"` || d.B != `hash (3 fields), field "f1" = "999"` {
			t.Errorf("hash:2: %+v", d)
		}
		if d := find(t, rep, KindMismatch, "hash:4"); !strings.Contains(d.A, `field "new" = "field" (not on the other side)`) || !strings.Contains(d.B, `no field "new"`) {
			t.Errorf("hash:4: %+v", d)
		}
		if d := find(t, rep, KindMismatch, "set:diff"); d.A != `set (2 elements), element 0: "x"` || d.B != `set (2 elements), element 0: "w"` {
			t.Errorf("set:diff: %+v", d)
		}
		if d := find(t, rep, KindMissingB, "str:6"); d.B != "(missing)" || d.A != `string "value-42"` {
			t.Errorf("str:6: %+v", d)
		}
		if d := find(t, rep, KindMismatch, "zset:diff"); d.A != `zset (2 elements), rank 1: "m2" score 2` || d.B != `zset (2 elements), rank 1: "m2" score 3` {
			t.Errorf("zset:diff: %+v", d)
		}
		if d := find(t, rep, KindMismatch, "list:diff"); d.A != `list (2 elements), element 1: "b"` || d.B != `list (2 elements), element 1: "c"` {
			t.Errorf("list:diff: %+v", d)
		}
		find(t, rep, KindMissingA, "str:7")
		if d := find(t, rep, KindMissingA, "only-b"); d.A != "(missing)" || d.B != `string "extra"` {
			t.Errorf("only-b: %+v", d)
		}
		if d := find(t, rep, KindType, "hash:3"); !strings.HasPrefix(d.A, "hash (3 fields)") || d.B != `string "now a string"` {
			t.Errorf("hash:3: %+v", d)
		}
		if d := find(t, rep, KindUnsupported, "stream"); d.A != "type stream" {
			t.Errorf("stream: %+v", d)
		}
		var buf strings.Builder
		rep.WriteText(&buf)
		for _, w := range []string{"mismatched:        6", "missing on A:      3", `A: string "value-35"`, "DIFFERENT: 13 differences"} {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("text report lacks %q:\n%s", w, buf.String())
			}
		}
	})

	t.Run("scan A only", func(t *testing.T) {
		rep := run(t, Options{})
		// only-b and the long key are not found; str:7 is not on A.
		checkCounts(t, rep, &Report{Compared: 133, Equal: 124, Mismatched: 6, MissingB: 1, TypeDiffs: 1, Unsupported: 1, CountDiffs: 1})
	})

	t.Run("keys", func(t *testing.T) {
		long := strings.Repeat("k", 100)
		rep := run(t, Options{Keys: keysFile("str:1", "str:5", "str:6", "str:7", "only-b", "hash:2", "hash:3", long)})
		checkCounts(t, rep, &Report{Compared: 8, Equal: 1, Mismatched: 2, MissingA: 3, MissingB: 1, TypeDiffs: 1})
		if d := find(t, rep, KindMissingA, long); d.A != "(missing)" || !strings.HasPrefix(d.B, `string "vvv`) {
			t.Errorf("long key: %+v", d)
		}
	})

	t.Run("examples bounded and truncated", func(t *testing.T) {
		long := strings.Repeat("k", 100)
		rep, err := Run(context.Background(), Options{A: Endpoint{Addr: a}, B: Endpoint{Addr: b}, Keys: keysFile("str:5", long, "str:6"), Examples: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Examples) != 1 || rep.Differences() != 3 {
			t.Fatalf("examples %+v, differences %d", rep.Examples, rep.Differences())
		}
		rep, _ = Run(context.Background(), Options{A: Endpoint{Addr: a}, B: Endpoint{Addr: b}, Keys: keysFile(long)})
		want := strconv.Quote(strings.Repeat("k", shown)) + "…(100 bytes)"
		if rep.Examples[0].Key != want || !strings.HasSuffix(rep.Examples[0].B, "…(200 bytes)") {
			t.Fatalf("long key: %+v", rep.Examples[0])
		}
	})
}

func checkCounts(t *testing.T, got, want *Report) {
	t.Helper()
	type counts struct{ Compared, Equal, Mismatched, MissingA, MissingB, TypeDiffs, Unsupported, Errors, CountDiffs int64 }
	g := counts{got.Compared, got.Equal, got.Mismatched, got.MissingA, got.MissingB, got.TypeDiffs, got.Unsupported, got.Errors, got.CountDiffs}
	w := counts{want.Compared, want.Equal, want.Mismatched, want.MissingA, want.MissingB, want.TypeDiffs, want.Unsupported, want.Errors, want.CountDiffs}
	if g != w {
		t.Fatalf("counts\n got %+v\nwant %+v\nexamples %+v", g, w, got.Examples)
	}
}

func writeDataset(t *testing.T, es []store.Entry) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "v1")
	if err := store.WriteVersion(context.Background(), dir, &store.Meta{Name: "diff", Version: "v1"}, es); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestBatchkvAgainstRedis(t *testing.T) {
	es := entries(400)
	dir := writeDataset(t, es)
	bk := redistest.StartBatchkv(t, copyDir(t, dir), "--metrics-addr", "") // no fixed metrics port: tests run in parallel
	r := redistest.StartRedis(t)
	redistest.Load(t, r.Addr, es)

	for _, tt := range []struct {
		name string
		opts Options
	}{
		{"scan", Options{}},
		{"scan both", Options{Both: true}},
		{"dataset", Options{Dataset: dir}},
		{"sample", Options{Sample: 100}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.A.Addr, tt.opts.B.Addr, tt.opts.Rate = bk.Addr, r.Addr, -1
			rep, err := Run(context.Background(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Err() != nil {
				t.Fatalf("%v: %+v", rep.Err(), rep.Examples)
			}
			if tt.name != "sample" && rep.Compared != int64(len(es)) {
				t.Fatalf("compared %d, want %d", rep.Compared, len(es))
			}
			if tt.name == "dataset" && rep.DatasetKeys != int64(len(es)) {
				t.Fatalf("dataset keys %d", rep.DatasetKeys)
			}
		})
	}

	// The dataset check notices a server missing a key twice over: the key
	// and the count.
	do(t, r.Addr, ":1\r\n", "DEL", "hash:9")
	rep, err := Run(context.Background(), Options{A: Endpoint{Addr: bk.Addr}, B: Endpoint{Addr: r.Addr}, Dataset: dir, Rate: -1})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, rep, &Report{Compared: int64(len(es)), Equal: int64(len(es)) - 1, MissingB: 1, CountDiffs: 1})
	if rep.Examples[0].Kind != KindCount || !strings.Contains(rep.Examples[0].A, fmt.Sprintf(": %d", len(es)-1)) {
		t.Fatalf("examples %+v", rep.Examples)
	}
}

func TestRateLimit(t *testing.T) {
	es := entries(200)[:200] // 200 strings
	a, b := twoRedis(t, es)
	var keys []string
	for _, e := range es {
		keys = append(keys, string(e.Key))
	}
	for _, tt := range []struct {
		rate     float64
		min, max time.Duration
	}{
		{1000, 150 * time.Millisecond, 5 * time.Second}, // 200 keys at 1000/s: 0.2 s
		{-1, 0, 2 * time.Second},
	} {
		var progress []int64
		start := time.Now()
		rep, err := Run(context.Background(), Options{A: Endpoint{Addr: a}, B: Endpoint{Addr: b}, Keys: keysFile(keys...), Rate: tt.rate, Concurrency: 4,
			ProgressEvery: 50 * time.Millisecond, Progress: func(compared, differences int64) { progress = append(progress, compared) }})
		took := time.Since(start)
		if tt.rate > 0 && (len(progress) == 0 || progress[len(progress)-1] > 200) {
			t.Errorf("rate %v: progress reports %v", tt.rate, progress)
		}
		if err != nil || rep.Err() != nil || rep.Compared != 200 {
			t.Fatalf("rate %v: %v %v %d", tt.rate, err, rep.Err(), rep.Compared)
		}
		if took < tt.min || took > tt.max {
			t.Errorf("rate %v: 200 keys took %s, want %s..%s", tt.rate, took, tt.min, tt.max)
		}
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(2000, 10)
	start := time.Now()
	for range 40 { // 400 tokens at 2000/s from an empty bucket: 0.2 s
		if err := l.wait(context.Background(), 10); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took < 180*time.Millisecond || took > 2*time.Second {
		t.Fatalf("400 tokens at 2000/s took %s", took)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := newLimiter(1, 1).wait(ctx, 100); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
}

func TestLatencySummary(t *testing.T) {
	var l latency
	for i := 1; i <= 100; i++ {
		l.add(time.Duration(i) * time.Millisecond)
	}
	s := l.summary()
	if s.Rounds != 100 || s.P50 != 50*time.Millisecond || s.P99 != 99*time.Millisecond || s.Max != 100*time.Millisecond {
		t.Fatalf("%+v", s)
	}
	for range maxSamples * 2 {
		l.add(time.Millisecond)
	}
	if len(l.samples) != maxSamples || l.summary().Rounds != 100+2*maxSamples {
		t.Fatalf("reservoir holds %d samples", len(l.samples))
	}
}

func TestUnreachable(t *testing.T) {
	r := redistest.StartRedis(t)
	closed := "127.0.0.1:" + strconv.Itoa(redistest.ClosedPort(t))
	for _, tt := range []struct{ a, b, want string }{
		{closed, r.Addr, "diff: A " + closed + ": cannot connect"},
		{r.Addr, closed, "diff: B " + closed + ": cannot connect"},
		{r.Addr, "no-port", "diff: B no-port: cannot connect"},
	} {
		start := time.Now()
		_, err := Run(context.Background(), Options{A: Endpoint{Addr: tt.a}, B: Endpoint{Addr: tt.b}, Timeout: time.Second})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Run(%s, %s) = %v, want %q", tt.a, tt.b, err, tt.want)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("took %s", time.Since(start))
		}
	}
}

func TestPassword(t *testing.T) {
	r := redistest.StartRedis(t)
	do(t, r.Addr, "+OK\r\n", "CONFIG", "SET", "requirepass", "secret")
	for _, tt := range []struct {
		pwA, pwB string
		want     string
	}{
		{"secret", "secret", ""},
		{"wrong", "secret", "diff: A " + r.Addr + ": cannot connect"},
		{"secret", "", "diff: B " + r.Addr + ": "},
	} {
		rep, err := Run(context.Background(), Options{A: Endpoint{Addr: r.Addr, Password: tt.pwA}, B: Endpoint{Addr: r.Addr, Password: tt.pwB}})
		if tt.want == "" {
			if err != nil || rep.Err() != nil {
				t.Errorf("password %q %q: %v %v", tt.pwA, tt.pwB, err, rep.Err())
			}
		} else if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("password %q %q: %v, want %q", tt.pwA, tt.pwB, err, tt.want)
		}
	}
}

// copyDir copies a version directory (a served one is locked by the server).
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestOptionsInvalid(t *testing.T) {
	for _, o := range []Options{
		{},
		{A: Endpoint{Addr: "x:1"}},
		{A: Endpoint{Addr: "x:1"}, B: Endpoint{Addr: "y:1"}, Sample: 3, Dataset: "d"},
		{A: Endpoint{Addr: "x:1"}, B: Endpoint{Addr: "y:1"}, Keys: strings.NewReader(""), Both: true},
		{A: Endpoint{Addr: "x:1"}, B: Endpoint{Addr: "y:1"}, Sample: -1},
		{A: Endpoint{Addr: "x:1"}, B: Endpoint{Addr: "y:1"}, Concurrency: -1},
	} {
		if _, err := Run(context.Background(), o); !errors.Is(err, ErrOptions) {
			t.Errorf("%+v: %v, want ErrOptions", o, err)
		}
	}
}

func TestBadKeysFile(t *testing.T) {
	r := redistest.StartRedis(t)
	_, err := Run(context.Background(), Options{A: Endpoint{Addr: r.Addr}, B: Endpoint{Addr: r.Addr}, Keys: keysFile("a2V5", "not base64!"), KeysBase64: true})
	if err == nil || !strings.Contains(err.Error(), "diff: keys: line 2: not base64") {
		t.Fatalf("%v", err)
	}
}
