package metrics

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/swap"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestErrorReplyKinds(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewServer(reg)
	for _, tc := range []struct{ msg, kind string }{
		{"ERR wrong number of arguments for 'get' command", "ERR"},
		{"WRONGTYPE Operation against a key holding the wrong kind of value", "WRONGTYPE"},
		{"READONLY You can't write against a read only replica.", "READONLY"},
		{"LOADING Redis is loading the dataset in memory", "LOADING"},
		{"NOAUTH Authentication required.", "NOAUTH"},
		{"EXECABORT Transaction discarded because of previous errors.", "EXECABORT"},
		{"WRONGPASS invalid username-password pair or user is disabled.", "WRONGPASS"},
		{"SOMETHINGNEW happened", KindOther},
		{"", KindOther},
		{"err lower-case is not ERR", KindOther},
	} {
		c := m.errors[tc.kind]
		if tc.kind == KindOther {
			c = m.other
		}
		before := counter(c)
		m.ErrorReply(tc.msg)
		if got := counter(c) - before; got != 1 {
			t.Errorf("%q: errors_total{kind=%q} moved by %v", tc.msg, tc.kind, got)
		}
	}
	m.ProtocolError()
	if got := counter(m.protocol); got != 1 {
		t.Errorf("protocol errors %v", got)
	}
	m.OnSwap(swap.Stats{Warmup: time.Millisecond}, time.Second, nil)
	m.OnSwap(swap.Stats{}, time.Second, errors.New("bad version"))
	if counter(m.swaps) != 1 || counter(m.swapFailures) != 1 {
		t.Errorf("swaps %v, failures %v", counter(m.swaps), counter(m.swapFailures))
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "batchkv_swap_duration_seconds", "batchkv_warmup_duration_seconds":
			if n := mf.GetMetric()[0].GetHistogram().GetSampleCount(); n != 1 {
				t.Errorf("%s: %d observations, want 1", mf.GetName(), n)
			}
		}
	}
}

func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// A command's series are the same children each time: resolving them once
// is enough.
func TestCommandSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewServer(reg)
	a, b := m.Command("get"), m.Command("get")
	a.Observe(time.Millisecond)
	b.Observe(time.Millisecond)
	if got := counter(m.commands.WithLabelValues("get")); got != 2 {
		t.Fatalf("commands_total{get} = %v", got)
	}
}

func TestEndpoint(t *testing.T) {
	reg := NewRegistry()
	var notReady error = errors.New("no version live yet\nsecond line")
	e, err := Serve(EndpointOptions{Addr: "127.0.0.1:0", Registry: reg, Ready: func() error { return notReady }})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	get := func(path string) (int, string) {
		t.Helper()
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get("http://" + e.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 503 || body != "no version live yet\n" {
		t.Errorf("/readyz not ready: %d %q", code, body)
	}
	notReady = nil
	if code, body := get("/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz ready: %d %q", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_start_time_seconds") {
		t.Errorf("/metrics %d %.200q", code, body)
	}
	if code, _ := get("/debug/pprof/"); code != 404 {
		t.Errorf("pprof served without Pprof: %d", code)
	}
	// The port is taken: Serve fails rather than running without probes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := Serve(EndpointOptions{Addr: ln.Addr().String(), Registry: reg}); err == nil {
		t.Fatal("Serve on a taken port succeeded")
	}
}
