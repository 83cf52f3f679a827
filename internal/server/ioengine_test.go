package server

import (
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BATCHKV_SERVER_TEST_IO=goroutine runs the package's tests on the
// goroutine engine instead of the default (epoll on Linux): run both.
func init() {
	if v := os.Getenv("BATCHKV_SERVER_TEST_IO"); v != "" {
		DefaultIO = v
	}
}

// TestDefaultEngine checks that the tests exercise the engine they claim:
// a plain TCP connection is served by an event loop on Linux.
func TestDefaultEngine(t *testing.T) {
	ts := startServer(t, Config{}, testData)
	c := dial(t, ts.addr)
	if got := c.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING = %q", got)
	}
	var n int
	for _, cc := range ts.srv.clients() {
		if cc.ep != nil {
			n++
		}
	}
	want := 0
	if DefaultIO == IOEpoll {
		want = 1
	}
	if n != want {
		t.Fatalf("%d connections on event loops with engine %s, want %d", n, DefaultIO, want)
	}
}

// TestPipelineAcrossFullSocket sends a pipeline whose replies are far larger
// than the socket buffers and starts reading late: batches wait
// for the socket mid-way (event loop: EPOLLOUT, then resume) and every
// reply must still arrive complete and in order.
func TestPipelineAcrossFullSocket(t *testing.T) {
	big := strings.Repeat("v", 200<<10)
	data := append([]testPair{{key: "big", value: big}}, testData...)
	ts := startServer(t, Config{OutputFlushSize: 64 << 10}, data)
	c := dial(t, ts.addr)
	const n = 60 // 12 MB of replies: more than the socket buffers hold
	var req []byte
	for i := range n {
		req = append(req, cmdBytes("GET", "big")...)
		req = append(req, cmdBytes("ECHO", strconv.Itoa(i))...)
	}
	pipelineBigReplies(t, c, req, n, big, func(i int, r []byte) {
		if want := "$" + strconv.Itoa(len(strconv.Itoa(i))) + "\r\n" + strconv.Itoa(i) + "\r\n"; string(r) != want {
			t.Fatalf("reply %d: ECHO %q; want %q", i, r, want)
		}
	})
}

// pipelineBigReplies sends req and a QUIT from a goroutine (the replies back
// up while it writes, filling the socket) and reads n pairs of replies: GET
// big's, checked here, then one more passed to check with its index; then
// QUIT's +OK and the end of the connection.
func pipelineBigReplies(t *testing.T, c *client, req []byte, n int, big string, check func(i int, r []byte)) {
	t.Helper()
	req = append(req, cmdBytes("QUIT")...)
	go func() {
		c.nc.SetWriteDeadline(time.Now().Add(20 * time.Second))
		c.nc.Write(req)
	}()
	c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	wantBig := "$" + strconv.Itoa(len(big)) + "\r\n" + big + "\r\n"
	buf := make([]byte, len(wantBig))
	for i := range n {
		if i < 3 {
			time.Sleep(50 * time.Millisecond) // let the socket fill up
		}
		if _, err := io.ReadFull(c.br, buf); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if string(buf) != wantBig {
			t.Fatalf("reply %d: wrong GET reply %q...", i, buf[:20])
		}
		r, err := readReply(c.br)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		check(i, r)
	}
	if r, err := readReply(c.br); err != nil || string(r) != "+OK\r\n" {
		t.Fatalf("QUIT: %q, %v", r, err)
	}
	if _, err := c.br.ReadByte(); err != io.EOF {
		t.Fatalf("after QUIT: %v, want EOF", err)
	}
}
