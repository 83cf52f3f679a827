package hostile

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/redistest"
	"github.com/batchkv/batchkv/test/hostile/harness"
)

const maxClientsErr = "-ERR max number of clients reached\r\n"

// holdConns opens n connections to addr, each proven accepted by a PING.
func holdConns(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	ping := []byte("PING\r\n")
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(ping); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "+PONG\r\n" {
			t.Fatalf("connection %d of %d: PING answered %q, %v", i, n, line, err)
		}
		c.SetDeadline(time.Time{})
	}
	return conns
}

// refused dials addr and returns what the server says before closing.
func refused(t *testing.T, addr string) offense {
	t.Helper()
	c, err := redistest.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, closed, err := c.ReadUntilClose(2*time.Second, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return offense{got, closed}
}

// raiseNoFile makes room for n more descriptors in this process.
func raiseNoFile(t *testing.T, n uint64) {
	t.Helper()
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	if l.Cur >= n {
		return
	}
	l.Cur = max(l.Cur, n)
	l.Max = max(l.Max, n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatalf("RLIMIT_NOFILE %d needed: %v", n, err)
	}
}

// TestMaxClients holds --maxclients connections open (1,000; 10,000 with
// HOSTILE_LONG): the next one gets Redis's error byte for byte and is
// closed, the held ones and a client that was there before keep being
// served, and the server's memory per held connection is reported.
func TestMaxClients(t *testing.T) {
	n := 1000
	if long() {
		n = 10000
	}
	raiseNoFile(t, uint64(n)+1000)

	r := redistest.StartRedis(t, "--maxclients", "4")
	holdConns(t, r.Addr, 4)
	want := refused(t, r.Addr)
	if string(want.got) != maxClientsErr || !want.closed {
		t.Fatalf("redis-server at maxclients: %v", want)
	}

	s := hostileServer(t, "--maxclients", strconv.Itoa(n))
	base, _ := s.RSS()
	check := bounded(t, s, maxLatency, int64(n)*64<<10) // probe: one of the n
	start := time.Now()
	conns := holdConns(t, s.Addr, n-1)
	opened := time.Since(start)
	held, _ := s.RSS()
	got := refused(t, s.Addr)
	if !bytes.Equal(got.got, want.got) || got.closed != want.closed {
		t.Errorf("the connection past maxclients: batchkv-server %v, redis-server %v", got, want)
	}
	if _, err := s.WaitLog("max number of clients reached", 1, 5*time.Second); err != nil {
		t.Error(err)
	}
	// The held connections still work.
	for _, i := range []int{0, len(conns) / 2, len(conns) - 1} {
		c := conns[i]
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET %s\r\n", probeKey)
		b := make([]byte, 64)
		k, err := c.Read(b)
		if err != nil || string(b[:k]) != "$"+strconv.Itoa(len(probeValue))+"\r\n"+probeValue+"\r\n" {
			t.Errorf("held connection %d: %q, %v", i, b[:k], err)
		}
	}
	check()
	fds, _ := s.FDs()
	t.Logf("%d connections held (opened in %v); server RSS %.1f MiB before, %.1f MiB with them (%.1f KiB each), %d fds",
		n, opened.Round(time.Millisecond), float64(base)/(1<<20), float64(held)/(1<<20), float64(held-base)/float64(n)/1024, fds)
	// Closing them frees the slots.
	for _, c := range conns {
		c.Close()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := harness.Info(s.Addr, "clients")
		if err == nil && info["connected_clients"] == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connected_clients %q 20s after closing the held connections (%v)", info["connected_clients"], err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
