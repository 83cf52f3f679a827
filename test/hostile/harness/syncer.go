package harness

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/proc"
	"github.com/batchkv/batchkv/internal/redistest"
)

// SyncerBinary returns a batchkv-syncer built from this checkout (once per
// test process), or $BATCHKV_TEST_SYNCER_BIN.
func SyncerBinary() (string, error) { return redistest.Binary("syncer") }

// Main runs the tests and removes the binaries built for them.
func Main(m *testing.M) { redistest.Main(m) }

// Syncer is a running batchkv-syncer.
type Syncer struct {
	*proc.Process
	Metrics string
}

// StartSyncer runs batchkv-syncer --source source --root root with args
// after the harness's own (a free metrics port, JSON logs, a 200ms poll),
// and stops it when the test ends.
func StartSyncer(t testing.TB, source, root string, args ...string) *Syncer {
	t.Helper()
	bin, err := SyncerBinary()
	if err != nil {
		t.Fatal(err)
	}
	all := append([]string{"--source", source, "--root", root, "--interval", "200ms",
		"--metrics-addr", "127.0.0.1:0", "--log-format", "json"}, args...)
	p, err := proc.Start("batchkv-syncer", exec.Command(bin, all...), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	s := &Syncer{Process: p}
	t.Cleanup(func() {
		p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("--- batchkv-syncer output (tail) ---\n%s", tail(p.Output(), 60))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for s.Metrics == "" {
		if exited, err := p.Exited(); exited {
			t.Fatalf("batchkv-syncer exited: %v\n%s", err, p.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("batchkv-syncer did not listen in 30s\n%s", p.Output())
		}
		for _, l := range logLines(p.Output(), "metrics listening") {
			s.Metrics, _ = l["addr"].(string)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// Logs returns the syncer's JSON log lines whose msg is msg.
func (s *Syncer) Logs(msg string) []map[string]any { return logLines(s.Output(), msg) }

// Info returns the fields of INFO section on addr.
func Info(addr, section string) (map[string]string, error) {
	c, err := redistest.Dial(addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetTimeout(5 * time.Second)
	raw, err := c.DoString("INFO", section)
	if err != nil {
		return nil, err
	}
	r, err := redistest.Parse(raw)
	if err != nil {
		return nil, err
	}
	if r.IsError() {
		return nil, fmt.Errorf("INFO %s: %s", section, r.Text())
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(r.Text()), "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[k] = v
		}
	}
	return out, nil
}

// WaitVersion waits until the server at addr serves version.
func WaitVersion(addr, version string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		if m, err := Info(addr, "dataset"); err == nil {
			if last = m["version"]; last == version {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server at %s serves version %q, not %q, after %v", addr, last, version, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
