package redistest

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to answer its first PING.
const startTimeout = 20 * time.Second

// stopTimeout is how long a server gets to exit on SIGTERM before SIGKILL.
const stopTimeout = 5 * time.Second

// proc is a server process started by a test and owned by its cleanup.
type proc struct {
	name string
	addr string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

// lockedBuffer collects a process's output; os/exec copies into it from its
// own goroutine while the test may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 4<<20 { // keep memory bounded; the start is what matters
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freePort returns a port that was free a moment ago on 127.0.0.1.
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
func startProc(t testing.TB, name, bin string, argsFor func(port int) []string) *proc {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: %s: pick a port: %v", name, err)
		}
		p := &proc{
			name: name,
			addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			out:  &lockedBuffer{},
			done: make(chan struct{}),
		}
		p.cmd = exec.Command(bin, argsFor(port)...)
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("redistest: %s: start %s: %v", name, bin, err)
		}
		go func() { // owned by p: ends when the process exits
			p.err = p.cmd.Wait()
			close(p.done)
		}()
		if err := p.waitReady(); err != nil {
			p.stop()
			lastErr = fmt.Errorf("%w\n--- %s output ---\n%s", err, name, p.out.String())
			select {
			case <-p.done: // exited by itself: maybe the port was taken, retry
				continue
			default:
			}
			break
		}
		t.Cleanup(func() {
			p.stop()
			if t.Failed() {
				t.Logf("--- %s (%s) output ---\n%s", name, p.addr, p.out.String())
			}
		})
		return p
	}
	t.Fatalf("redistest: %s did not start: %v", name, lastErr)
	return nil
}

// waitReady polls PING until it gets +PONG, the process exits, or
// startTimeout passes.
func (p *proc) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("redistest: %s exited before answering PING: %v", p.name, p.err)
		default:
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
	return fmt.Errorf("redistest: %s at %s not ready after %v: %v", p.name, p.addr, startTimeout, last)
}

// stop sends SIGTERM, then SIGKILL if the process has not exited in
// stopTimeout, and waits for it.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports whether the process has exited, and how.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}
