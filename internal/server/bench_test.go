package server

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

func benchData() []testPair {
	data := make([]testPair, 0, 1000)
	for i := 0; i < 1000; i++ {
		data = append(data, testPair{key: "key:" + strconv.Itoa(i), value: "value-" + strconv.Itoa(i)})
	}
	data = append(data, testPair{key: "h", hash: []string{"a", "1", "b", "2", "c", "3"}})
	return data
}

// pipelineClient sends a fixed pipeline and reads a reply of known size.
func pipelineRoundTrip(tb testing.TB, nc net.Conn, req, reply []byte) {
	if _, err := nc.Write(req); err != nil {
		tb.Fatal(err)
	}
	if _, err := io.ReadFull(nc, reply); err != nil {
		tb.Fatal(err)
	}
}

func benchPipeline(b *testing.B, depth int, cmd []byte, replyLen int) {
	benchPipelineConfig(b, Config{}, depth, cmd, replyLen)
}

func benchPipelineConfig(b *testing.B, cfg Config, depth int, cmd []byte, replyLen int) {
	ts := startServer(b, cfg, benchData())
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	req := bytes.Repeat(cmd, depth)
	reply := make([]byte, replyLen*depth)
	pipelineRoundTrip(b, nc, req, reply)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += depth {
		pipelineRoundTrip(b, nc, req, reply)
	}
}

// BenchmarkGET measures GET over a real listener: one round trip per
// command, and pipelined 100 deep (ns/op is per command).
func BenchmarkGET(b *testing.B) {
	cmd := cmdBytes("GET", "key:42")
	n := len("$8\r\nvalue-42\r\n")
	b.Run("single", func(b *testing.B) { benchPipeline(b, 1, cmd, n) })
	b.Run("pipeline100", func(b *testing.B) { benchPipeline(b, 100, cmd, n) })
}

// BenchmarkGETMetrics is BenchmarkGET with Prometheus metrics on (each
// command counted and timed): compare the two in one run for their cost.
func BenchmarkGETMetrics(b *testing.B) {
	cmd := cmdBytes("GET", "key:42")
	n := len("$8\r\nvalue-42\r\n")
	for _, depth := range []int{1, 100} {
		name := "single"
		if depth > 1 {
			name = "pipeline100"
		}
		b.Run(name, func(b *testing.B) {
			cfg := Config{Metrics: metrics.NewServer(prometheus.NewRegistry())}
			benchPipelineConfig(b, cfg, depth, cmd, n)
		})
	}
}

func BenchmarkHGETALL(b *testing.B) {
	cmd := cmdBytes("HGETALL", "h")
	n := len("*6\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n")
	b.Run("pipeline100", func(b *testing.B) { benchPipeline(b, 100, cmd, n) })
}

// The hot paths do not allocate per command in steady state (the count
// includes the server goroutine: AllocsPerRun reads process-wide stats).
// With metrics on too: a command's series are resolved once, not per call.
func TestHotPathAllocs(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testHotPathAllocs(t, Config{}) })
	t.Run("metrics", func(t *testing.T) {
		testHotPathAllocs(t, Config{Metrics: metrics.NewServer(prometheus.NewRegistry())})
	})
}

func testHotPathAllocs(t *testing.T, cfg Config) {
	if raceEnabled {
		// The race detector's sync.Pool drops items at random: Pebble's
		// pooled objects are then allocated again.
		t.Skip("allocation counts are meaningless under the race detector")
	}
	ts := startServer(t, cfg, benchData())
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	for _, tc := range []struct {
		name    string
		cmd     []byte
		reply   string
		lookups float64
	}{
		{"GET", cmdBytes("GET", "key:42"), "$8\r\nvalue-42\r\n", 1},
		{"GET missing", cmdBytes("GET", "nope"), "$-1\r\n", 1},
		{"HGET", cmdBytes("HGET", "h", "b"), "$1\r\n2\r\n", 1},
		{"HGETALL", cmdBytes("HGETALL", "h"), "*6\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n", 1},
		{"MGET", cmdBytes("MGET", "key:1", "key:2", "nope"), "*3\r\n$7\r\nvalue-1\r\n$7\r\nvalue-2\r\n$-1\r\n", 3},
		{"PING", cmdBytes("PING"), "+PONG\r\n", 0},
	} {
		const depth = 100
		req := bytes.Repeat(tc.cmd, depth)
		reply := make([]byte, len(tc.reply)*depth)
		for i := 0; i < 20; i++ {
			pipelineRoundTrip(t, nc, req, reply)
		}
		if !bytes.Equal(reply, bytes.Repeat([]byte(tc.reply), depth)) {
			t.Fatalf("%s: reply %q", tc.name, reply[:len(tc.reply)])
		}
		allocs := testing.AllocsPerRun(50, func() { pipelineRoundTrip(t, nc, req, reply) })
		// Pebble v2.1.7 allocates 16 bytes in every point lookup of an
		// ingested table (sstable.Reader.TryAddBlockPropertyFilterForHideObsoletePoints
		// appends to a nil slice); everything of ours is allocation-free.
		if perCmd := allocs/depth - tc.lookups; perCmd > 0.05 {
			t.Errorf("%s: %.2f allocations per command (%.0f per pipeline of %d)", tc.name, perCmd, allocs, depth)
		}
	}
}

// BenchmarkGETParallel: 50 connections, one GET in flight each (the
// redis-benchmark -c 50 shape).
func BenchmarkGETParallel(b *testing.B) {
	ts := startServer(b, Config{}, benchData())
	cmd := cmdBytes("GET", "key:42")
	n := len("$8\r\nvalue-42\r\n")
	b.SetParallelism(25) // 2 procs x 25 = 50 connections
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer nc.Close()
		reply := make([]byte, n)
		for pb.Next() {
			pipelineRoundTrip(b, nc, cmd, reply)
		}
	})
}

// BenchmarkCommandMetrics is what metrics add per command on the hot path
// (the clock is read per command anyway, for the slowlog): the series
// lookup by command index, a counter and a histogram observation.
func BenchmarkCommandMetrics(b *testing.B) {
	s, err := New(Config{Metrics: metrics.NewServer(prometheus.NewRegistry())}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	cmd := commands["get"]
	d := 20 * time.Microsecond
	b.ReportAllocs()
	for b.Loop() {
		s.commandMetrics(cmd).Observe(d)
	}
}
