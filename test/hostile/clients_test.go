package hostile

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/redistest"
	"github.com/batchkv/batchkv/test/hostile/harness"
)

// probeKey is in every dataset of these tests; the probe reads it.
const probeKey, probeValue = "k:1", "v:1"

// offense is what a hostile client got: the bytes the server sent before
// closing or going quiet, and whether it closed.
type offense struct {
	got    []byte
	closed bool
}

func (o offense) String() string {
	return fmt.Sprintf("%s (closed: %v)", redistest.Escape(o.got), o.closed)
}

// offend sends raw to addr (in chunks, stopping early if the server closes)
// and reads what comes back until the server closes or is quiet for idle.
func offend(t *testing.T, addr string, raw []byte, idle time.Duration) offense {
	t.Helper()
	c, err := redistest.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for len(raw) > 0 {
		n := min(len(raw), 64<<10)
		c.NetConn().SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.NetConn().Write(raw[:n]); err != nil {
			break // closed by the server: read what it said
		}
		raw = raw[n:]
	}
	got, closed, err := c.ReadUntilClose(idle, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return offense{got, closed}
}

// bounded starts a probe and an RSS watch on s, and returns a function that
// checks, when the offence is over, that the probe saw no failure and no
// request slower than maxLatency, and that RSS grew by less than maxGrowth.
func bounded(t *testing.T, s *harness.Server, maxLatency time.Duration, maxGrowth int64) func() {
	t.Helper()
	check := boundedN(t, s, 1, maxGrowth)
	return func() {
		t.Helper()
		for _, res := range check() {
			if res.Max > maxLatency {
				t.Errorf("a well-behaved client waited %v, more than %v", res.Max, maxLatency)
			}
		}
	}
}

// boundedN is bounded with n probes, each on its own connection (the epoll
// engine spreads connections over its loops round-robin: 4 probes cover
// every loop on up to 4 cores). Failures, memory growth and an exit fail
// the test; the returned function returns the probes' results for the
// caller to judge their latency.
func boundedN(t *testing.T, s *harness.Server, n int, maxGrowth int64) func() []harness.ProbeResult {
	t.Helper()
	base, err := s.RSS()
	if err != nil {
		t.Fatal(err)
	}
	var probes []*harness.Probe
	for range n {
		probes = append(probes, harness.StartGetProbe(s.Addr, probeKey, probeValue, 10*time.Millisecond))
	}
	rss := s.WatchRSS(20 * time.Millisecond)
	return func() []harness.ProbeResult {
		t.Helper()
		// And right after the offence, too.
		time.Sleep(300 * time.Millisecond)
		var out []harness.ProbeResult
		for _, p := range probes {
			out = append(out, p.Stop())
		}
		peak := rss.Stop()
		for _, res := range out {
			t.Logf("well-behaved client meanwhile: %v", res)
			if len(res.Errors) > 0 {
				t.Errorf("the well-behaved client saw %d failures: %s", len(res.Errors), strings.Join(res.Errors[:min(5, len(res.Errors))], "; "))
			}
			if res.Requests == 0 {
				t.Error("the probe made no request")
			}
		}
		t.Logf("server RSS %.1f MiB before, peak %.1f MiB", float64(base)/(1<<20), float64(peak)/(1<<20))
		if peak-base > maxGrowth {
			t.Errorf("server RSS grew by %.1f MiB, more than %.1f MiB", float64(peak-base)/(1<<20), float64(maxGrowth)/(1<<20))
		}
		if ex, err := s.Exited(); ex {
			t.Errorf("the server exited: %v", err)
		}
		return out
	}
}

// hostileServer serves a small dataset holding probeKey.
func hostileServer(t *testing.T, args ...string) *harness.Server {
	t.Helper()
	return harness.StartServer(t, append([]string{"--dataset", smallDataset(t, probeKey, probeValue, "big", strings.Repeat("x", 16<<10))}, args...)...)
}

// Latency bound for the well-behaved client: generous, the machine is
// shared; a server that stalls other clients behind the offender stalls
// them for the offence's length (seconds), well past it.
const maxLatency = 2 * time.Second

// TestProtocolAbuse sends requests Redis refuses and compares batchkv's
// answer with redis-server 7's byte for byte: a 2^40 bulk length, an array
// of 10^9 elements (Redis waits for them without allocating them: no reply,
// no close), a negative multibulk length, an inline request that never ends.
func TestProtocolAbuse(t *testing.T) {
	r := redistest.StartRedis(t)
	s := hostileServer(t)
	endless := []byte("GET " + strings.Repeat("a", 4<<20)) // no newline, 4 MiB
	cases := []struct {
		name string
		raw  []byte
		// wantClosed: redis-server closes the connection.
		wantClosed bool
	}{
		{"bulk length 2^40", []byte("*2\r\n$3\r\nGET\r\n$1099511627776\r\n"), true},
		{"bulk length 2^40 then data", append([]byte("*2\r\n$3\r\nGET\r\n$1099511627776\r\n"), bytes.Repeat([]byte("x"), 1<<20)...), true},
		{"array of 10^9", []byte("*1000000000\r\n$3\r\nGET\r\n$1\r\nk\r\n"), false},
		{"array of 2^40", []byte("*1099511627776\r\n"), true},
		{"negative bulk length", []byte("*2\r\n$3\r\nGET\r\n$-5\r\n"), true},
		{"endless inline", endless, true},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			want := offend(t, r.Addr, tc.raw, time.Second)
			if want.closed != tc.wantClosed {
				t.Fatalf("redis-server: %v; the test expects closed=%v", want, tc.wantClosed)
			}
			check := bounded(t, s, maxLatency, 64<<20)
			got := offend(t, s.Addr, tc.raw, time.Second)
			check()
			if !bytes.Equal(got.got, want.got) || got.closed != want.closed {
				t.Errorf("batchkv-server: %v\nredis-server:  %v", got, want)
			} else {
				t.Logf("both servers: %v", got)
			}
		})
	}
	// Every refusal is logged.
	if l := s.Logs("closing client after protocol error"); len(l) < 5 {
		t.Errorf("%d protocol errors logged, want 5", len(l))
	}
}

// TestPipelineNeverRead: a client sends 100k GETs of a 16 KiB value (1.6 GB
// of replies) and never reads. The server's memory stays bounded, the client
// is disconnected and logged, others are served throughout.
func TestPipelineNeverRead(t *testing.T) {
	s := hostileServer(t, "--write-timeout", "3s")
	check := bounded(t, s, maxLatency, 128<<20)
	c, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Send until the server stops reading (its replies back up) or drops us.
	cmd := redistest.AppendCommand(nil, []byte("GET"), []byte("big"))
	batch := bytes.Repeat(cmd, 1000)
	sent := 0
	start := time.Now()
	for sent < 100_000 && time.Since(start) < time.Minute {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(batch); err != nil {
			break
		}
		sent += 1000
	}
	if _, err := s.WaitLog("closing client that does not read its replies", 1, 30*time.Second); err != nil {
		if _, err2 := s.WaitLog("closing client over the output buffer limit", 1, time.Second); err2 != nil {
			t.Errorf("not disconnected and logged: %v", err)
		}
	}
	check()
	t.Logf("sent %d commands before the server stopped reading or dropped the client", sent)
	// The connection is gone: reading drains what was sent, then EOF/reset.
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 1<<20)
	for {
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Error("the connection is still open")
			}
			break
		}
	}
}

// TestSlowloris: with --timeout, a client that connects and sends nothing,
// and one that sends half a command and stops, are closed after the idle
// timeout; 200 of them do not slow others down.
func TestSlowloris(t *testing.T) {
	s := hostileServer(t, "--timeout", "2s")
	check := bounded(t, s, maxLatency, 64<<20)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 200 {
		c, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			c.Write([]byte("*2\r\n$3\r\nGET\r\n$10\r\nabc"))
		}
		conns = append(conns, c)
	}
	start := time.Now()
	for i, c := range conns {
		c.SetReadDeadline(start.Add(20 * time.Second))
		b := make([]byte, 64)
		n, err := c.Read(b)
		if err == nil || n > 0 {
			t.Fatalf("connection %d: read %q, %v; want a close", i, b[:n], err)
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("connection %d still open after 20s with --timeout 2s", i)
		}
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("idle clients closed after %v, before the 2s timeout", d)
	}
	check()
}
