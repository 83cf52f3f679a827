package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/objstore"
	s3store "github.com/batchkv/batchkv/internal/objstore/s3"
	"github.com/batchkv/batchkv/internal/s3test"
)

// proxied returns a store that reaches the gateway through a fault proxy.
func proxied(t *testing.T, srv *s3test.Server, edit func(*s3store.Options)) (*s3store.Store, *s3test.Proxy) {
	t.Helper()
	p := s3test.NewProxy(t, srv.Endpoint)
	opts := srv.Options()
	opts.Endpoint = p.Endpoint
	opts.PartSize = 5 << 20
	if edit != nil {
		edit(&opts)
	}
	st, err := s3store.New(context.Background(), srv.Bucket, "ds", opts)
	if err != nil {
		t.Fatal(err)
	}
	return st, p
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	s, p := proxied(t, srv, func(o *s3store.Options) {
		o.MaxAttempts = 5
		o.ListPageSize = 3
	})
	// A store with a short response timeout, for the stalled request; the
	// others keep the default so that a slow moment of a loaded machine is
	// not mistaken for a stall.
	impatient, ip := proxied(t, srv, func(o *s3store.Options) { o.ResponseTimeout = 500 * time.Millisecond })
	body := []byte("0123456789abcdef")
	if err := s.Put(ctx, "obj", bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	isGet := func(r *http.Request) bool { return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/obj") }

	for _, tc := range []struct {
		name  string
		fault s3test.Fault
		n     int
		op    func() error
	}{
		{"slowdown-stat", s3test.Fault{Kind: s3test.SlowDown}, 3, func() error { _, err := s.Stat(ctx, "obj"); return err }},
		{"500-list", s3test.Fault{Kind: s3test.InternalError}, 2, func() error { _, err := s.List(ctx, ""); return err }},
		{"reset-put", s3test.Fault{Kind: s3test.Reset}, 2, func() error {
			return s.Put(ctx, "obj2", bytes.NewReader(body), int64(len(body)))
		}},
		{"delay-read", s3test.Fault{Kind: s3test.Delay, Delay: 5 * time.Second}, 1, func() error {
			rc, err := impatient.ReadRange(ctx, "obj", 2, 3)
			if err != nil {
				return err
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err == nil && string(b) != "234" {
				err = fmt.Errorf("read %q", b)
			}
			return err
		}},
		{"slowdown-get-only", s3test.Fault{Kind: s3test.SlowDown, Match: isGet}, 2, func() error {
			if _, err := s.Stat(ctx, "obj"); err != nil { // a HEAD: not matched
				return err
			}
			rc, err := s.ReadRange(ctx, "obj", 0, -1)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.ReadAll(rc)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := p
			if tc.name == "delay-read" {
				p = ip
			}
			p.Clear()
			before, injected := p.Requests(), p.Injected()
			p.Inject(tc.fault, tc.n)
			start := time.Now()
			if err := tc.op(); err != nil {
				t.Fatalf("not retried through %d %v faults: %v", tc.n, tc.fault.Kind, err)
			}
			if got := p.Injected() - injected; got != int64(tc.n) {
				t.Errorf("%d faults injected, want %d", got, tc.n)
			}
			if p.Pending() != 0 {
				t.Errorf("%d faults left", p.Pending())
			}
			t.Logf("%d requests, %v", p.Requests()-before, time.Since(start).Round(time.Millisecond))
		})
	}

	t.Run("truncate-surfaces", func(t *testing.T) {
		// The SDK cannot retry a body already handed to the caller: the
		// reader must fail, never return short data as if complete.
		p.Clear()
		p.Inject(s3test.Fault{Kind: s3test.Truncate, Match: isGet}, 1)
		rc, err := s.ReadRange(ctx, "obj", 0, -1)
		if err != nil {
			t.Fatalf("ReadRange: %v", err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("truncated body read %q, err %v; want io.ErrUnexpectedEOF", b, err)
		}
		if len(b) >= len(body) {
			t.Fatalf("truncated body read %d bytes", len(b))
		}
		if !strings.Contains(err.Error(), "ds/obj") {
			t.Errorf("error %q does not name the object", err)
		}
	})

	t.Run("gives-up", func(t *testing.T) {
		p.Clear()
		before := p.Requests()
		p.Inject(s3test.Fault{Kind: s3test.SlowDown}, 100)
		_, err := s.Stat(ctx, "obj")
		if err == nil {
			t.Fatal("Stat succeeded through 100 SlowDowns")
		}
		if got := p.Requests() - before; got != 5 {
			t.Errorf("%d attempts, want MaxAttempts = 5", got)
		}
		if errors.Is(err, objstore.ErrNotExist) || !strings.Contains(err.Error(), "s3://"+srv.Bucket+"/ds") {
			t.Errorf("error %q: want a wrapped, non-ErrNotExist error naming the store", err)
		}
		p.Clear()
	})

	t.Run("pagination-requests", func(t *testing.T) {
		p.Clear()
		for i := range 10 {
			k := fmt.Sprintf("pages/k%02d", i)
			if err := s.Put(ctx, k, strings.NewReader("x"), 1); err != nil {
				t.Fatal(err)
			}
		}
		before := p.Requests()
		objs, err := s.List(ctx, "pages/")
		if err != nil || len(objs) != 10 {
			t.Fatalf("List = %d objects, %v", len(objs), err)
		}
		if got := p.Requests() - before; got != 4 { // pages of 3
			t.Errorf("List took %d requests, want 4 pages of 3", got)
		}
	})

	t.Run("multipart-with-faults", func(t *testing.T) {
		// 3 parts of 5 MiB, uploaded in parallel; two part uploads are
		// refused and one connection reset: the upload still completes.
		big := make([]byte, 12<<20)
		rand.NewChaCha8([32]byte{2}).Read(big)
		isPart := func(r *http.Request) bool { return r.Method == http.MethodPut && r.URL.Query().Has("partNumber") }
		p.Clear()
		p.Inject(s3test.Fault{Kind: s3test.SlowDown, Match: isPart}, 2)
		p.Inject(s3test.Fault{Kind: s3test.Reset, Match: isPart}, 1)
		if err := s.Put(ctx, "big", bytes.NewReader(big), int64(len(big))); err != nil {
			t.Fatal(err)
		}
		if p.Pending() != 0 {
			t.Fatalf("%d faults not reached: not a multipart upload?", p.Pending())
		}
		o, err := s.Stat(ctx, "big")
		if err != nil || o.Size != int64(len(big)) || !strings.HasSuffix(strings.Trim(o.ETag, `"`), "-3") {
			t.Fatalf("Stat = %+v, %v (want a 3-part multipart ETag)", o, err)
		}
		rc, err := s.ReadRange(ctx, "big", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("read back %d bytes, %v", len(got), err)
		}
	})
}

func TestMissingBucket(t *testing.T) {
	srv := s3test.Start(t)
	st, err := s3store.New(context.Background(), "no-such-bucket", "ds", srv.Options())
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.ListPrefixes(context.Background(), "versions/")
	if err == nil || errors.Is(err, objstore.ErrNotExist) || !strings.Contains(err.Error(), "no-such-bucket") {
		t.Fatalf("ListPrefixes on a missing bucket = %v; want a plain error naming it", err)
	}
}

func TestOptions(t *testing.T) {
	if _, err := s3store.New(context.Background(), "", "x", s3store.Options{}); err == nil {
		t.Error("empty bucket accepted")
	}
	if _, err := s3store.New(context.Background(), "b", "a/../x", s3store.Options{}); err == nil {
		t.Error("prefix with .. accepted")
	}
	if _, err := s3store.New(context.Background(), "b", "x", s3store.Options{PartSize: 1 << 20}); err == nil {
		t.Error("part size under 5 MiB accepted")
	}
}

// TestChecksumHeaders checks that uploads to a custom endpoint carry no SDK
// checksum headers (which many S3-compatible servers reject) unless asked.
func TestChecksumHeaders(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	for _, sdk := range []bool{false, true} {
		s, p := proxied(t, srv, func(o *s3store.Options) { o.SDKChecksums = sdk })
		var mu sync.Mutex
		var seen []string
		p.Inject(s3test.Fault{Kind: s3test.SlowDown, Match: func(r *http.Request) bool {
			if r.Method == http.MethodPut {
				for h := range r.Header {
					if strings.HasPrefix(strings.ToLower(h), "x-amz-checksum-") || strings.EqualFold(h, "x-amz-sdk-checksum-algorithm") || strings.EqualFold(h, "x-amz-trailer") {
						mu.Lock()
						seen = append(seen, h)
						mu.Unlock()
					}
				}
			}
			return false // observe only
		}}, 1)
		big := make([]byte, 6<<20)
		if err := s.Put(ctx, "small", strings.NewReader("abc"), 3); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, "big", bytes.NewReader(big), int64(len(big))); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		if sdk != (len(seen) > 0) {
			t.Errorf("SDKChecksums=%v: checksum headers %v", sdk, seen)
		}
		mu.Unlock()
	}
}

// TestOver1000 lists more keys and prefixes than one S3 page holds, with
// the default page size.
func TestOver1000(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	s := srv.Store(t, "ds")
	const n = 1003
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := s.Put(ctx, fmt.Sprintf("versions/v%04d/x", i), strings.NewReader("x"), 1); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	objs, err := s.List(ctx, "versions/")
	if err != nil || len(objs) != n {
		t.Fatalf("List = %d objects, %v; want %d", len(objs), err, n)
	}
	prefixes, err := s.ListPrefixes(ctx, "versions/")
	if err != nil || len(prefixes) != n || prefixes[0] != "v0000" || prefixes[n-1] != fmt.Sprintf("v%04d", n-1) {
		t.Fatalf("ListPrefixes = %d, %v", len(prefixes), err)
	}
}
