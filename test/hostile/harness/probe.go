package harness

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/batchkv/batchkv/internal/redistest"
)

// Probe is a well-behaved client: it sends one request at a time on its own
// connection and checks each reply, to show what the others see while a
// hostile client or a fault is at work.
type Probe struct {
	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex
	lat  []time.Duration
	errs []string
}

// StartProbe sends req every interval on one connection to addr (a new
// connection after a failure) and expects reply.
func StartProbe(addr string, req, reply []byte, interval time.Duration) *Probe {
	p := &Probe{stop: make(chan struct{}), done: make(chan struct{})}
	go p.run(addr, req, reply, interval)
	return p
}

// StartGetProbe is StartProbe with GET key expecting value.
func StartGetProbe(addr, key, value string, interval time.Duration) *Probe {
	req := redistest.AppendCommand(nil, []byte("GET"), []byte(key))
	reply := fmt.Appendf(nil, "$%d\r\n%s\r\n", len(value), value)
	return StartProbe(addr, req, reply, interval)
}

func (p *Probe) run(addr string, req, reply []byte, interval time.Duration) {
	defer close(p.done)
	var c *redistest.Conn
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		start := time.Now()
		var err error
		if c == nil {
			if c, err = redistest.Dial(addr); err != nil {
				c = nil
				p.record(time.Since(start), err)
				continue
			}
			c.SetTimeout(10 * time.Second)
		}
		if err = c.Send(req); err == nil {
			var got []byte
			if got, err = c.ReadReply(); err == nil && !bytes.Equal(got, reply) {
				err = fmt.Errorf("reply %s, want %s", redistest.Escape(got), redistest.Escape(reply))
			}
		}
		if err != nil {
			c.Close()
			c = nil
		}
		p.record(time.Since(start), err)
	}
}

func (p *Probe) record(d time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lat = append(p.lat, d)
	if err != nil {
		p.errs = append(p.errs, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
	}
}

// ProbeResult summarises a probe's requests.
type ProbeResult struct {
	Requests      int
	Errors        []string
	P50, P99, Max time.Duration
}

func (r ProbeResult) String() string {
	return fmt.Sprintf("%d requests, %d failed, latency p50 %v p99 %v max %v",
		r.Requests, len(r.Errors), r.P50, r.P99, r.Max)
}

// Stop ends the probe and returns what it saw.
func (p *Probe) Stop() ProbeResult {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	r := ProbeResult{Requests: len(p.lat), Errors: slices.Clone(p.errs)}
	if len(p.lat) > 0 {
		l := slices.Clone(p.lat)
		slices.Sort(l)
		r.P50, r.P99, r.Max = l[len(l)/2], l[len(l)*99/100], l[len(l)-1]
	}
	return r
}
