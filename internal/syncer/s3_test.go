package syncer

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/batchkv/batchkv/internal/objstore"
	s3store "github.com/batchkv/batchkv/internal/objstore/s3"
	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/release"
	"github.com/batchkv/batchkv/internal/s3test"
)

// upload copies a locally published dataset root to st: every version's
// files first, its release file last, as batchkv publish does.
func upload(t testing.TB, st objstore.Store, src string) {
	t.Helper()
	var files, releases []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if filepath.Base(rel) == release.FileName || rel == publish.PointerFile {
			releases = append(releases, filepath.ToSlash(rel))
		} else {
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(releases)
	for _, k := range append(files, releases...) {
		b, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(k)))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Put(context.Background(), k, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
}

// TestS3WithFaults syncs from a real S3 server through a proxy that cuts
// bodies short, resets connections and answers errors: every part is
// retried until it is whole, and the installed version is correct.
func TestS3WithFaults(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	proxy := s3test.NewProxy(t, srv.Endpoint)
	local, root := t.TempDir(), t.TempDir()
	v1 := publishVersion(t, local, "v1", 1000, 1000) // ~1 MB: 16+ parts of 64 KiB
	upload(t, srv.Store(t, "ds"), local)

	o := srv.Options()
	o.Endpoint = proxy.Endpoint
	st, err := s3store.New(ctx, srv.Bucket, "ds", o)
	if err != nil {
		t.Fatal(err)
	}
	dbGets := func(r *http.Request) bool { return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/db/") }
	faults := []s3test.Fault{
		{Kind: s3test.Truncate, Match: dbGets},
		{Kind: s3test.Reset, Match: dbGets},
		{Kind: s3test.SlowDown, Match: dbGets},
		{Kind: s3test.Truncate, Match: dbGets},
		{Kind: s3test.InternalError, Match: dbGets},
		{Kind: s3test.Truncate, Match: dbGets},
	}
	for _, f := range faults {
		proxy.Inject(f, 1)
	}
	s := newTestSyncer(t, local, root, func(o *Options) { o.Source = st })
	res, err := s.SyncOnce(ctx)
	if err != nil || res.Action != ActionInstalled {
		t.Fatalf("%+v %v\n%s", res, err, srv.Output())
	}
	if n := proxy.Injected(); n != int64(len(faults)) {
		t.Fatalf("%d faults applied, want %d: the test did not exercise them", n, len(faults))
	}
	// Truncated bodies were received in part, so more than the version
	// crossed the wire; everything installed is verified.
	if res.Bytes <= v1.rel.TotalSize() {
		t.Fatalf("downloaded %d bytes for %d: truncations not seen", res.Bytes, v1.rel.TotalSize())
	}
	checkInstalled(t, root, v1)

	// v2 arrives, then a pin rolls back to v1 without a download.
	v2 := publishVersion(t, local, "v2", 500, 1000)
	upload(t, srv.Store(t, "ds"), local)
	if res, err := s.SyncOnce(ctx); err != nil || res.Action != ActionInstalled || res.Version != "v2" {
		t.Fatalf("v2: %+v %v", res, err)
	}
	checkInstalled(t, root, v2)
	pin(t, local, "v1")
	upload(t, srv.Store(t, "ds"), local)
	if res, err := s.SyncOnce(ctx); err != nil || res.Action != ActionActivated || res.Bytes != 0 {
		t.Fatalf("rollback: %+v %v", res, err)
	}
	if m := readManifest(t, root); m.Version != "v1" || m.Previous != "v2" {
		t.Fatalf("manifest %+v", m)
	}
}

// TestS3Command runs the real binary against the real S3 server with the S3
// flags, as a pod would.
func TestS3Command(t *testing.T) {
	bin := syncerBinary(t)
	srv := s3test.Start(t) // sets the AWS_* credentials the child inherits
	local, root := t.TempDir(), t.TempDir()
	v1 := publishVersion(t, local, "20261122T000000Z", 300, 1000)
	if _, err := publish.Publish(context.Background(), v1.build, srv.Store(t, "team/ds"), publish.Options{}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--once", "--source", srv.URL("team/ds"), "--root", root,
		"--s3-endpoint", srv.Endpoint, "--s3-path-style", "--s3-region", s3test.Region)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	checkInstalled(t, root, v1)
}

// TestS3DownOrThrottled: while the S3 server answers only 503 SlowDown, or
// resets every connection, or cannot be reached at all, a pass fails cleanly
// (a source failure, nothing staged as installed, the live version and the
// manifest untouched); once the server is back, the next pass installs.
func TestS3DownOrThrottled(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	proxy := s3test.NewProxy(t, srv.Endpoint)
	local, root := t.TempDir(), t.TempDir()
	v1 := publishVersion(t, local, "v1", 200, 100)
	upload(t, srv.Store(t, "ds"), local)
	o := srv.Options()
	o.Endpoint = proxy.Endpoint
	st, err := s3store.New(ctx, srv.Bucket, "ds", o)
	if err != nil {
		t.Fatal(err)
	}
	s := newTestSyncer(t, local, root, func(o *Options) { o.Source = st })
	if res, err := s.SyncOnce(ctx); err != nil || res.Action != ActionInstalled {
		t.Fatalf("v1: %+v %v", res, err)
	}

	v2 := publishVersion(t, local, "v2", 300, 100)
	upload(t, srv.Store(t, "ds"), local)
	for _, kind := range []s3test.FaultKind{s3test.SlowDown, s3test.Reset} {
		proxy.Inject(s3test.Fault{Kind: kind}, 1_000_000) // every request, for a while
		res, err := s.SyncOnce(ctx)
		var se *Error
		if err == nil || !errors.As(err, &se) || se.Kind != KindSource {
			t.Fatalf("%v: pass = %+v, %v; want a source failure", kind, res, err)
		}
		if m := readManifest(t, root); m.Version != "v1" {
			t.Fatalf("%v: manifest moved to %s", kind, m.Version)
		}
		checkInstalled(t, root, v1)
		proxy.Clear()
	}

	// Unreachable: a closed port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadEndpoint := "http://" + ln.Addr().String()
	ln.Close()
	o.Endpoint = deadEndpoint
	dead, err := s3store.New(ctx, srv.Bucket, "ds", o)
	if err != nil {
		t.Fatal(err)
	}
	sDead := newTestSyncer(t, local, root, func(o *Options) { o.Source = dead })
	if _, err := sDead.SyncOnce(ctx); err == nil {
		t.Fatal("a pass against an unreachable S3 endpoint succeeded")
	}
	if m := readManifest(t, root); m.Version != "v1" {
		t.Fatalf("unreachable: manifest moved to %s", m.Version)
	}
	checkInstalled(t, root, v1)

	// The server is back.
	if res, err := s.SyncOnce(ctx); err != nil || res.Action != ActionInstalled || res.Version != "v2" {
		t.Fatalf("after recovery: %+v %v", res, err)
	}
	checkInstalled(t, root, v2)
}
