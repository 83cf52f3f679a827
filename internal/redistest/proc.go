package redistest

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/proc"
)

// startTimeout bounds how long a server may take to answer its first PING.
const startTimeout = 20 * time.Second

// stopTimeout is how long a server gets to exit on SIGTERM before SIGKILL.
const stopTimeout = 5 * time.Second

// child is a server process started by a test and owned by its cleanup.
type child struct {
	*proc.Process
	addr string
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ClosedPort returns a port on 127.0.0.1 that nothing listens on (it was free
// a moment ago).
func ClosedPort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatalf("redistest: pick a port: %v", err)
	}
	return p
}

// startProc starts argsFor(port) on a free port and waits until it answers
// PING, retrying on another port when the process exits early (most likely:
// the port was taken between picking and binding). The process is stopped in
// t.Cleanup, and its output is logged if the test failed.
func startProc(t testing.TB, name, bin string, argsFor func(port int) []string) *child {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: %s: pick a port: %v", name, err)
		}
		pr, err := proc.Start(name, exec.Command(bin, argsFor(port)...), 0)
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		p := &child{Process: pr, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		if err := p.waitReady(); err != nil {
			p.stop()
			lastErr = fmt.Errorf("%w\n--- %s output ---\n%s", err, name, p.Output())
			if exited, _ := p.Exited(); exited { // by itself: maybe the port was taken, retry
				continue
			}
			break
		}
		t.Cleanup(func() {
			p.stop()
			if t.Failed() {
				t.Logf("--- %s (%s) output ---\n%s", name, p.addr, p.Output())
			}
		})
		return p
	}
	t.Fatalf("redistest: %s did not start: %v", name, lastErr)
	return nil
}

// waitReady polls PING until it gets +PONG, the process exits, or
// startTimeout passes.
func (p *child) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	var last error
	for time.Now().Before(deadline) {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("redistest: %s exited before answering PING: %v", p.Name, err)
		}
		c, err := Dial(p.addr)
		if err == nil {
			c.SetTimeout(2 * time.Second)
			var got []byte
			got, err = c.DoString("PING")
			c.Close()
			if err == nil && string(got) == "+PONG\r\n" {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("PING answered %s", Escape(got))
			}
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redistest: %s at %s not ready after %v: %v", p.Name, p.addr, startTimeout, last)
}

// stop stops the process: SIGTERM, then SIGKILL after stopTimeout.
func (p *child) stop() { p.Stop(stopTimeout) }
