package server

import (
	"os"
	"testing"
)

// BATCHKV_SERVER_TEST_IO=goroutine runs the package's tests on the
// goroutine engine instead of the default (make test-server-io runs both).
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
