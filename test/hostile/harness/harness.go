// Package harness runs a batchkv-server binary for the hostile-client, fault
// and soak tests (test/hostile, test/faults, test/soak) and measures it from
// outside: its RSS and open file descriptors from /proc, its goroutines from
// /debug/pprof, its readiness from /readyz, and what a well-behaved client
// sees while another misbehaves (Probe).
package harness

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/proc"
	"github.com/batchkv/batchkv/internal/redistest"
)

// Server is a running batchkv-server process.
type Server struct {
	*proc.Process
	// Addr is the Redis port, Metrics the /metrics, /readyz and pprof port.
	Addr, Metrics string
}

// StartServer runs batchkv-server with args after the harness's own
// (--addr 127.0.0.1:0, a free metrics port with pprof, no drain, JSON logs),
// waits until both ports listen, and stops it when the test ends.
func StartServer(t testing.TB, args ...string) *Server {
	t.Helper()
	return StartServerEnv(t, nil, args...)
}

// StartServerEnv is StartServer with env added to the environment.
func StartServerEnv(t testing.TB, env []string, args ...string) *Server {
	t.Helper()
	bin, err := redistest.ServerBinary()
	if err != nil {
		t.Fatal(err)
	}
	all := append([]string{"--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--pprof",
		"--shutdown-drain", "0", "--log-format", "json"}, args...)
	cmd := exec.Command(bin, all...)
	cmd.Env = append(os.Environ(), env...)
	p, err := proc.Start("batchkv-server", cmd, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Process: p}
	t.Cleanup(func() {
		p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("--- batchkv-server output (tail) ---\n%s", tail(p.Output(), 60))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for s.Addr == "" || s.Metrics == "" {
		if exited, err := p.Exited(); exited {
			t.Fatalf("batchkv-server exited: %v\n%s", err, p.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("batchkv-server did not listen in 30s\n%s", p.Output())
		}
		for _, l := range s.Logs("listening") {
			s.Addr, _ = l["addr"].(string)
		}
		for _, l := range s.Logs("metrics listening") {
			s.Metrics, _ = l["addr"].(string)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// Logs returns the JSON log lines whose msg is msg.
func (s *Server) Logs(msg string) []map[string]any { return logLines(s.Output(), msg) }

func logLines(output, msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !strings.Contains(string(line), msg) {
			continue
		}
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// WaitLog waits up to timeout for n log lines with msg.
func (s *Server) WaitLog(msg string, n int, timeout time.Duration) ([]map[string]any, error) {
	deadline := time.Now().Add(timeout)
	for {
		l := s.Logs(msg)
		if len(l) >= n {
			return l, nil
		}
		if time.Now().After(deadline) {
			return l, fmt.Errorf("%d log lines %q after %v, want %d", len(l), msg, timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RSS returns the process's resident set size in bytes (VmRSS).
func (s *Server) RSS() (int64, error) { return procStatus(s.Pid(), "VmRSS") }

// FDs returns the number of open file descriptors.
func (s *Server) FDs() (int, error) {
	e, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.Pid()))
	return len(e), err
}

// Goroutines returns the goroutine count from /debug/pprof/goroutine.
func (s *Server) Goroutines() (int, error) {
	b, _, err := s.get("/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	n, ok := strings.CutPrefix(line, "goroutine profile: total ")
	if !ok {
		return 0, fmt.Errorf("goroutine profile starts %q", line)
	}
	return strconv.Atoi(strings.TrimSpace(n))
}

// Ready returns /readyz's status and body.
func (s *Server) Ready() (int, string, error) {
	b, code, err := s.get("/readyz")
	return code, string(b), err
}

// Metric returns the sum of the /metrics samples whose line starts with
// prefix (a name, or a name and labels).
func (s *Server) Metric(prefix string) (float64, error) { return MetricAt(s.Metrics, prefix) }

// MetricAt is Metric of the /metrics page served at addr.
func MetricAt(addr, prefix string) (float64, error) {
	b, _, err := get(addr, "/metrics")
	if err != nil {
		return 0, err
	}
	var sum float64
	found := false
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		if rest := l[len(prefix):]; !strings.HasSuffix(prefix, "}") && rest != "" && rest[0] != ' ' && rest[0] != '{' {
			continue // a longer metric name
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, err
		}
		sum += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("no metric %s", prefix)
	}
	return sum, nil
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func (s *Server) get(path string) ([]byte, int, error) { return get(s.Metrics, path) }

func get(addr, path string) ([]byte, int, error) {
	resp, err := httpClient.Get("http://" + addr + path)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

// procStatus reads a kB field of /proc/PID/status in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			f := strings.Fields(v)
			n, err := strconv.ParseInt(f[0], 10, 64)
			return n * 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// PeakRSS samples the server's RSS every interval until stop is closed and
// returns the largest value seen.
type PeakRSS struct {
	mu   sync.Mutex
	peak int64
	stop chan struct{}
	done chan struct{}
}

// WatchRSS starts sampling s's RSS.
func (s *Server) WatchRSS(interval time.Duration) *PeakRSS {
	p := &PeakRSS{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if r, err := s.RSS(); err == nil {
				p.mu.Lock()
				p.peak = max(p.peak, r)
				p.mu.Unlock()
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// Stop ends the sampling and returns the peak.
func (p *PeakRSS) Stop() int64 {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// MetricsText returns the /metrics page.
func (s *Server) MetricsText() (string, error) {
	b, _, err := s.get("/metrics")
	return string(b), err
}
