package s3test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FaultKind is what the proxy does to a request instead of forwarding it
// faithfully.
type FaultKind int

const (
	// SlowDown answers 503 with S3's SlowDown XML error, without forwarding.
	SlowDown FaultKind = iota + 1
	// InternalError answers 500 with S3's InternalError XML error.
	InternalError
	// Reset closes the client's connection with a TCP RST as soon as the
	// request's headers arrive, without forwarding.
	Reset
	// Truncate forwards the request, then sends the response's headers
	// (with the full Content-Length) and only half its body (none if the
	// length is unknown), and cuts the connection.
	Truncate
	// Delay waits Fault.Delay before forwarding.
	Delay
)

func (k FaultKind) String() string {
	switch k {
	case SlowDown:
		return "slowdown"
	case InternalError:
		return "internal-error"
	case Reset:
		return "reset"
	case Truncate:
		return "truncate"
	case Delay:
		return "delay"
	}
	return "fault(" + strconv.Itoa(int(k)) + ")"
}

// Fault describes an injected failure.
type Fault struct {
	Kind FaultKind
	// Delay is the wait of a Delay fault.
	Delay time.Duration
	// Match, when set, limits the fault to the requests it accepts (for
	// example GETs of one key); others pass through and do not count.
	Match func(*http.Request) bool
}

// Proxy is an HTTP proxy on 127.0.0.1 in front of an S3 endpoint that
// forwards every request unchanged (Host header included, so SigV4
// signatures stay valid) unless a fault is queued for it.
type Proxy struct {
	// Endpoint is the proxy's URL: give it to the client as its S3 endpoint.
	Endpoint string

	srv      *http.Server
	ln       net.Listener
	rp       *httputil.ReverseProxy
	latency  atomic.Int64 // nanoseconds added to every request
	requests atomic.Int64
	injected atomic.Int64

	mu     sync.Mutex
	faults []*queued
}

type queued struct {
	f    Fault
	left int
}

// NewProxy starts a proxy to upstream (an http:// endpoint on 127.0.0.1)
// that stops when the test ends.
func NewProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	up, err := url.Parse(upstream)
	if err != nil {
		t.Fatalf("s3test: proxy upstream: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("s3test: proxy: %v", err)
	}
	p := &Proxy{Endpoint: "http://" + ln.Addr().String(), ln: ln}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(up)
			// The client signed the Host it sent; the gateway checks it.
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{
			Proxy:             nil,
			DisableKeepAlives: false,
			MaxIdleConns:      64,
		},
		// Upstream errors become a 502, which the client retries; the
		// aborted copies of Truncate are expected, so keep the log quiet.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(p.serve),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	done := make(chan struct{})
	go func() { // owned by the cleanup below
		defer close(done)
		p.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		p.srv.Close()
		<-done
	})
	return p
}

// Inject queues a fault for the next n matching requests. Faults queued
// earlier apply first.
func (p *Proxy) Inject(f Fault, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, &queued{f: f, left: n})
}

// Clear drops every queued fault and the latency.
func (p *Proxy) Clear() {
	p.mu.Lock()
	p.faults = nil
	p.mu.Unlock()
	p.latency.Store(0)
}

// SetLatency adds d to every request until changed (0 to stop).
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// Requests returns the number of requests received so far.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

// Injected returns the number of faults applied so far.
func (p *Proxy) Injected() int64 { return p.injected.Load() }

// Pending returns the number of faults still queued.
func (p *Proxy) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, q := range p.faults {
		n += q.left
	}
	return n
}

func (p *Proxy) take(r *http.Request) (Fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, q := range p.faults {
		if q.f.Match != nil && !q.f.Match(r) {
			continue
		}
		q.left--
		if q.left <= 0 {
			p.faults = append(p.faults[:i], p.faults[i+1:]...)
		}
		return q.f, true
	}
	return Fault{}, false
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	if d := time.Duration(p.latency.Load()); d > 0 {
		if !sleep(r, d) {
			return
		}
	}
	f, ok := p.take(r)
	if !ok {
		p.rp.ServeHTTP(w, r)
		return
	}
	p.injected.Add(1)
	switch f.Kind {
	case SlowDown:
		writeS3Error(w, r, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
	case InternalError:
		writeS3Error(w, r, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
	case Reset:
		resetConn(w)
	case Truncate:
		p.truncate(w, r)
	case Delay:
		if sleep(r, f.Delay) {
			p.rp.ServeHTTP(w, r)
		}
	default:
		panic(fmt.Sprintf("s3test: unknown fault %v", f.Kind))
	}
}

func sleep(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func writeS3Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	// Read the request body so the client is not left writing into a closed
	// connection (it would see a reset, not this reply).
	io.Copy(io.Discard, io.LimitReader(r.Body, 64<<20))
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>%s</Code><Message>%s</Message><Resource>%s</Resource><RequestId>s3test</RequestId></Error>`,
		code, msg, r.URL.Path)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// resetConn hijacks the connection and closes it with SO_LINGER 0, which
// sends a RST: the client sees "connection reset by peer".
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// truncate forwards the request, relays the status and headers and half the
// body, then aborts the connection: the client has a Content-Length it will
// never reach.
func (p *Proxy) truncate(w http.ResponseWriter, r *http.Request) {
	up := *p.rp
	rec := &cutWriter{ResponseWriter: w}
	up.ModifyResponse = func(resp *http.Response) error {
		if resp.ContentLength > 0 {
			rec.limit = resp.ContentLength / 2
		}
		return nil
	}
	up.ServeHTTP(rec, r)
	// Whatever was relayed, the response must not complete.
	panic(http.ErrAbortHandler)
}

// cutWriter passes at most limit body bytes, then fails the copy.
type cutWriter struct {
	http.ResponseWriter
	limit   int64
	written int64
}

var errCut = errors.New("s3test: body truncated")

func (c *cutWriter) Write(b []byte) (int, error) {
	if c.written+int64(len(b)) > c.limit {
		n, _ := c.ResponseWriter.Write(b[:c.limit-c.written])
		c.written += int64(n)
		http.NewResponseController(c.ResponseWriter).Flush()
		return n, errCut
	}
	n, err := c.ResponseWriter.Write(b)
	c.written += int64(n)
	return n, err
}

func (c *cutWriter) Flush() { http.NewResponseController(c.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the real writer.
func (c *cutWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
