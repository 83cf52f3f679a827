package s3test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProxy checks each fault with a plain HTTP client against a small
// upstream; the S3 client's view of them is tested in objstore/s3.
func TestProxy(t *testing.T) {
	body := strings.Repeat("0123456789", 1000)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Host", r.Host)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
	}))
	defer up.Close()
	p := NewProxy(t, up.URL)
	client := &http.Client{Transport: &http.Transport{}}
	get := func(path string) (*http.Response, string, error) {
		resp, err := client.Get(p.Endpoint + path)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, string(b), err
	}

	resp, got, err := get("/a")
	if err != nil || got != body || resp.StatusCode != 200 {
		t.Fatalf("pass-through: %v, %d bytes, %v", resp.Status, len(got), err)
	}
	if h := resp.Header.Get("X-Host"); h != strings.TrimPrefix(p.Endpoint, "http://") {
		t.Fatalf("upstream saw Host %q, want the proxy's (signatures cover it)", h)
	}

	p.Inject(Fault{Kind: SlowDown}, 2)
	for i := range 2 {
		resp, got, err = get("/a")
		if err != nil || resp.StatusCode != 503 || !strings.Contains(got, "<Code>SlowDown</Code>") {
			t.Fatalf("slowdown %d: %v, %q, %v", i, resp.Status, got, err)
		}
	}
	if _, got, _ = get("/a"); got != body {
		t.Fatal("third request after 2 SlowDowns not passed through")
	}

	// A fresh connection: net/http silently retries a GET whose reused
	// keep-alive connection breaks.
	client.CloseIdleConnections()
	p.Inject(Fault{Kind: Reset}, 1)
	if _, _, err = get("/a"); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reset: err = %v, want ECONNRESET", err)
	}

	p.Inject(Fault{Kind: Truncate}, 1)
	resp, got, err = get("/a")
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != len(body)/2 || resp.ContentLength != int64(len(body)) {
		t.Fatalf("truncate: %d of %d bytes, err %v", len(got), resp.ContentLength, err)
	}

	p.Inject(Fault{Kind: Delay, Delay: 300 * time.Millisecond}, 1)
	start := time.Now()
	if _, got, err = get("/a"); err != nil || got != body || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("delay: %v after %v", err, time.Since(start))
	}

	// Match: only /b requests take the fault; /a passes and does not count.
	p.Inject(Fault{Kind: InternalError, Match: func(r *http.Request) bool { return r.URL.Path == "/b" }}, 1)
	if resp, _, _ = get("/a"); resp.StatusCode != 200 {
		t.Fatalf("unmatched request got %s", resp.Status)
	}
	if resp, _, _ = get("/b"); resp.StatusCode != 500 {
		t.Fatalf("matched request got %s", resp.Status)
	}

	p.SetLatency(200 * time.Millisecond)
	start = time.Now()
	get("/a")
	if time.Since(start) < 200*time.Millisecond {
		t.Fatal("latency not applied")
	}
	p.Clear()
	if p.Pending() != 0 || p.Injected() != 6 || p.Requests() != 10 {
		t.Fatalf("pending %d, injected %d, requests %d", p.Pending(), p.Injected(), p.Requests())
	}
}
