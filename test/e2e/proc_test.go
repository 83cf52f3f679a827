// Package e2e runs batchkv's real processes together: the publisher (in
// process, over internal/publish), a real S3 server (internal/s3test),
// batchkv-syncer and batchkv-server as separate processes, and go-redis
// clients under steady load while versions are published, installed and
// swapped live.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/proc"

	"github.com/redis/go-redis/v9"

	"github.com/batchkv/batchkv/internal/redistest"
)

// binaries are built once per test process by TestMain (redistest.Binary,
// which honours $BATCHKV_TEST_SERVER_BIN and $BATCHKV_TEST_SYNCER_BIN).
var binaries struct {
	server, syncer string
}

func TestMain(m *testing.M) {
	code, err := buildAndRun(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// buildAndRun builds batchkv-server and batchkv-syncer concurrently, then
// runs the tests.
func buildAndRun(m *testing.M) (int, error) {
	defer redistest.Cleanup()
	var serverErr, syncerErr error
	var wg sync.WaitGroup
	wg.Go(func() { binaries.server, serverErr = redistest.Binary("server") })
	wg.Go(func() { binaries.syncer, syncerErr = redistest.Binary("syncer") })
	wg.Wait()
	if err := errors.Join(serverErr, syncerErr); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// child is a process owned by a test: its output is kept (bounded) for
// assertions and for the failure log, and t.Cleanup stops it.
type child struct {
	*proc.Process
	// started is when exec returned: the reference for start-up timings.
	started time.Time
}

// startProc starts bin with args and env; the process is stopped (SIGTERM,
// then SIGKILL after 5 s) when the test ends, and its output logged if the
// test failed.
func startProc(t *testing.T, name, bin string, env []string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	pr, err := proc.Start(name, cmd, 8<<20)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	p := &child{Process: pr, started: time.Now()}
	t.Cleanup(func() {
		p.Stop(5 * time.Second)
		if t.Failed() {
			t.Logf("--- %s output ---\n%s", name, tail(p.Output(), 200))
		}
	})
	return p
}

// exited reports whether the process has exited.
func (p *child) exited() bool {
	done, _ := p.Exited()
	return done
}

// logLines returns the JSON log lines of the process whose msg is msg.
func (p *child) logLines(msg string) []map[string]any {
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.Output()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if m["msg"] == msg {
			lines = append(lines, m)
		}
	}
	return lines
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = append([]string{fmt.Sprintf("[%d lines skipped]", len(parts)-lines)}, parts[len(parts)-lines:]...)
	}
	return strings.Join(parts, "\n")
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("e2e: pick a port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// server is a batchkv-server process following a shared volume.
type server struct {
	*child
	addr string
}

// startServer runs batchkv-server --root root on a free port and waits until
// it answers PING (which it does before any version is live), retrying on
// another port if the process exits early (the port was taken meanwhile).
func startServer(t *testing.T, root string, extra ...string) *server {
	t.Helper()
	var last string
	for attempt := 0; attempt < 3; attempt++ {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		args := append([]string{"--addr", addr, "--root", root, "--metrics-addr", "127.0.0.1:0", "--shutdown-drain", "0"}, extra...)
		p := startProc(t, "batchkv-server", binaries.server, os.Environ(), args...)
		s := &server{child: p, addr: addr}
		err := s.waitPing(20 * time.Second)
		if err == nil {
			return s
		}
		last = fmt.Sprintf("%v\n%s", err, p.Output())
		p.Stop(time.Second)
	}
	t.Fatalf("e2e: batchkv-server did not start: %s", last)
	return nil
}

// waitPing polls PING until +PONG, the process exits, or timeout.
func (s *server) waitPing(timeout time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: time.Second, WriteTimeout: time.Second, PoolSize: 1})
	defer c.Close()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if exited, err := s.Exited(); exited {
			return fmt.Errorf("exited: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no PONG in %v: %v", timeout, err)
}

// infoDataset returns INFO dataset's fields.
func infoDataset(ctx context.Context, addr string) (map[string]string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 1, DialTimeout: 2 * time.Second})
	defer c.Close()
	s, err := c.Info(ctx, "dataset").Result()
	if err != nil {
		return nil, err
	}
	f := map[string]string{}
	for _, line := range strings.Split(s, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			f[k] = v
		}
	}
	return f, nil
}
