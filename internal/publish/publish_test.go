package publish_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/objstore/file"
	s3store "github.com/batchkv/batchkv/internal/objstore/s3"
	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/release"
	"github.com/batchkv/batchkv/internal/s3test"
	"github.com/batchkv/batchkv/internal/store"
)

// buildVersion writes a version with n keys of valueSize random bytes, opens
// it once (so Pebble leaves its LOCK file) and drops a stray temp file in it.
func buildVersion(t *testing.T, version string, n, valueSize int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), version)
	rng := rand.New(rand.NewPCG(uint64(n), uint64(valueSize)))
	entries := make([]store.Entry, n)
	for i := range entries {
		v := make([]byte, valueSize)
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		entries[i] = store.Entry{Key: fmt.Appendf(nil, "key:%06d", i), Value: store.AppendString(nil, v)}
	}
	meta := &store.Meta{Name: "users", Version: version, BuiltAt: time.Now().UTC()}
	if err := store.WriteVersion(context.Background(), dir, meta, entries); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "db", "LOCK")); err != nil {
		t.Fatalf("expected Pebble's LOCK file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".dataset.json.tmp-123"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// localFiles returns the files Publish must upload: path -> content.
func localFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() || rel == "db/LOCK" || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.ToSlash(rel)] = b
		return nil
	})
	return out
}

// backends runs fn against the local store and the S3 store on a real
// gateway (multipart from 5 MiB).
func backends(t *testing.T, fn func(t *testing.T, newStore func() objstore.Store)) {
	t.Run("file", func(t *testing.T) {
		root := t.TempDir()
		n := 0
		fn(t, func() objstore.Store { n++; return file.New(filepath.Join(root, fmt.Sprint("users", n))) })
	})
	t.Run("s3", func(t *testing.T) {
		srv := s3test.Start(t)
		n := 0
		fn(t, func() objstore.Store {
			n++
			opts := srv.Options()
			opts.PartSize = 5 << 20
			st, err := s3store.New(context.Background(), srv.Bucket, fmt.Sprint("datasets/users", n), opts)
			if err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
}

// recorder wraps a Store and logs the start and end of every Put, and can
// fail every Put after the first failAfter (0: never).
type recorder struct {
	objstore.Store
	mu        sync.Mutex
	events    []string
	puts      atomic.Int64
	failAfter int64
}

var errInjected = errors.New("injected failure")

func (r *recorder) Put(ctx context.Context, key string, rd io.ReaderAt, size int64) error {
	if n := r.puts.Add(1); r.failAfter > 0 && n > r.failAfter {
		return errInjected
	}
	r.log("start " + key)
	err := r.Store.Put(ctx, key, rd, size)
	r.log("end " + key)
	return err
}

func (r *recorder) log(s string) {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
}

func TestPublish(t *testing.T) {
	ctx := context.Background()
	// One table of about 7 MiB (random values do not compress): a
	// multipart upload on S3.
	dir := buildVersion(t, "20261122T000000Z", 700, 10<<10)
	want := localFiles(t, dir)
	if len(want) < 4 {
		t.Fatalf("version has only %v", want)
	}
	backends(t, func(t *testing.T, newStore func() objstore.Store) {
		dst := &recorder{Store: newStore()}
		var calls atomic.Int64
		var lastDone, lastTotal atomic.Int64
		res, err := publish.Publish(ctx, dir, dst, publish.Options{
			Concurrency: 3,
			Progress: func(done, total int64) {
				calls.Add(1)
				if done > total {
					t.Errorf("progress %d > total %d", done, total)
				}
				lastDone.Store(done)
				lastTotal.Store(total)
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Uploaded != len(want) || res.Resumed != 0 {
			t.Errorf("uploaded %d, resumed %d; want %d, 0", res.Uploaded, res.Resumed, len(want))
		}
		var total int64
		for _, b := range want {
			total += int64(len(b))
		}
		if calls.Load() == 0 || lastDone.Load() != total || lastTotal.Load() != total {
			t.Errorf("progress: %d calls, last %d/%d, want %d", calls.Load(), lastDone.Load(), lastTotal.Load(), total)
		}

		// The release is written after every other upload has finished.
		v := "versions/20261122T000000Z/"
		ev := dst.events
		if ev[len(ev)-2] != "start "+v+"release.json" || ev[len(ev)-1] != "end "+v+"release.json" {
			t.Fatalf("release not written last: %v", ev[len(ev)-4:])
		}
		for _, e := range ev[:len(ev)-2] {
			if strings.Contains(e, "release.json") {
				t.Fatalf("release written early: %v", ev)
			}
		}

		// Every file is there byte for byte, and listed in the release.
		r, err := publish.ReadRelease(ctx, dst, "20261122T000000Z")
		if err != nil {
			t.Fatal(err)
		}
		if r.Dataset != "users" || r.Meta.Keys != 700 || len(r.Files) != len(want) || r.CreatedAt.IsZero() {
			t.Fatalf("release = %+v", r)
		}
		for _, f := range r.Files {
			b, ok := want[f.Path]
			if !ok {
				t.Errorf("release lists %s, which is not in the version (LOCK or temp file?)", f.Path)
				continue
			}
			sum := sha256.Sum256(b)
			if f.Size != int64(len(b)) || f.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("%s: release says %d %s", f.Path, f.Size, f.SHA256)
			}
			rc, err := dst.ReadRange(ctx, v+f.Path, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, b) {
				t.Errorf("%s: read back %d bytes (%v), want %d identical", f.Path, len(got), err, len(b))
			}
		}
		objs, err := dst.List(ctx, v)
		if err != nil || len(objs) != len(want)+1 {
			t.Errorf("store holds %d objects, want %d files + release: %v", len(objs), len(want), err)
		}

		// Publishing the same version again is refused and changes nothing.
		dst.events = nil
		_, err = publish.Publish(ctx, dir, dst, publish.Options{})
		if !errors.Is(err, publish.ErrExists) {
			t.Fatalf("re-publish: %v, want ErrExists", err)
		}
		if len(dst.events) != 0 {
			t.Fatalf("refused publish wrote %v", dst.events)
		}
		if !strings.Contains(err.Error(), "20261122T000000Z") {
			t.Errorf("error %q does not name the version", err)
		}
	})
}

func TestResume(t *testing.T) {
	ctx := context.Background()
	dir := buildVersion(t, "v2", 200, 1<<10)
	want := localFiles(t, dir)
	backends(t, func(t *testing.T, newStore func() objstore.Store) {
		st := newStore()
		// The first run dies after 2 uploads.
		_, err := publish.Publish(ctx, dir, &recorder{Store: st, failAfter: 2}, publish.Options{Concurrency: 1})
		if !errors.Is(err, errInjected) {
			t.Fatalf("first run: %v", err)
		}
		if _, err := st.Stat(ctx, publish.ReleaseKey("v2")); !errors.Is(err, objstore.ErrNotExist) {
			t.Fatalf("release written by a failed publish: %v", err)
		}
		if _, _, err := publish.Target(ctx, st); !errors.Is(err, publish.ErrNoVersion) {
			t.Fatalf("Target after a failed publish: %v, want ErrNoVersion", err)
		}
		infos, err := publish.Versions(ctx, st)
		if err != nil || len(infos) != 1 || infos[0].Complete || infos[0].Files != 2 || infos[0].Target {
			t.Fatalf("Versions = %+v, %v", infos, err)
		}
		// Corrupt one of the uploaded files without changing its size: the
		// resume must notice (SHA-256) and upload it again.
		objs, _ := st.List(ctx, publish.VersionPrefix("v2"))
		bad := objs[0]
		junk := bytes.Repeat([]byte{'x'}, int(bad.Size))
		if err := st.Put(ctx, bad.Key, bytes.NewReader(junk), bad.Size); err != nil {
			t.Fatal(err)
		}

		// A table an earlier build of the same version name left behind.
		stale := publish.VersionPrefix("v2") + "db/999999.sst"
		if err := st.Put(ctx, stale, strings.NewReader("old"), 3); err != nil {
			t.Fatal(err)
		}

		res, err := publish.Publish(ctx, dir, st, publish.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Stat(ctx, stale); !errors.Is(err, objstore.ErrNotExist) || res.Removed != 1 {
			t.Errorf("stale object: removed %d, Stat = %v", res.Removed, err)
		}
		if res.Resumed != 1 || res.Uploaded != len(want)-1 {
			t.Errorf("resumed %d, uploaded %d; want 1 and %d", res.Resumed, res.Uploaded, len(want)-1)
		}
		r, err := publish.ReadRelease(ctx, st, "v2")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range r.Files {
			rc, err := st.ReadRange(ctx, publish.VersionPrefix("v2")+f.Path, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(got, want[f.Path]) {
				t.Errorf("%s differs after resume", f.Path)
			}
		}
		if v, _, err := publish.Target(ctx, st); err != nil || v != "v2" {
			t.Fatalf("Target = %s, %v", v, err)
		}
	})
}

func TestVersionsPinTarget(t *testing.T) {
	ctx := context.Background()
	v1 := buildVersion(t, "20261120T000000Z", 10, 10)
	v2 := buildVersion(t, "20261121T000000Z", 20, 10)
	v3 := buildVersion(t, "20261122T000000Z", 30, 10)
	backends(t, func(t *testing.T, newStore func() objstore.Store) {
		st := newStore()
		if _, _, err := publish.Target(ctx, st); !errors.Is(err, publish.ErrNoVersion) {
			t.Fatalf("Target on an empty store: %v", err)
		}
		for _, dir := range []string{v1, v2} {
			if _, err := publish.Publish(ctx, dir, st, publish.Options{}); err != nil {
				t.Fatal(err)
			}
		}
		// v3 dies half-way; a junk prefix is ignored.
		publish.Publish(ctx, v3, &recorder{Store: st, failAfter: 1}, publish.Options{Concurrency: 1})
		st.Put(ctx, "versions/not a version/x", strings.NewReader("x"), 1)

		target := func(want string) {
			t.Helper()
			v, r, err := publish.Target(ctx, st)
			if err != nil || v != want || r.Version != want {
				t.Fatalf("Target = %q, %v; want %q", v, err, want)
			}
		}
		list := func() string {
			t.Helper()
			infos, err := publish.Versions(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, i := range infos {
				x := fmt.Sprintf("%s:%d", i.Version[6:8], i.Keys)
				if i.Complete {
					x += "+complete"
				}
				if i.Invalid != "" {
					x += "+invalid"
				}
				if i.Pinned {
					x += "+pinned"
				}
				if i.Target {
					x += "+target"
				}
				s = append(s, x)
			}
			sort.Strings(s)
			return strings.Join(s, " ")
		}
		target("20261121T000000Z")
		if got := list(); got != "20:10+complete 21:20+complete+target 22:0" {
			t.Fatalf("Versions = %s", got)
		}
		if _, ok, err := publish.ReadPointer(ctx, st); ok || err != nil {
			t.Fatalf("ReadPointer = %v, %v", ok, err)
		}

		if err := publish.Pin(ctx, st, "20261120T000000Z"); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := publish.ReadPointer(ctx, st); v != "20261120T000000Z" || !ok || err != nil {
			t.Fatalf("ReadPointer = %q, %v, %v", v, ok, err)
		}
		target("20261120T000000Z")
		if got := list(); got != "20:10+complete+pinned+target 21:20+complete 22:0" {
			t.Fatalf("Versions = %s", got)
		}
		if err := publish.Pin(ctx, st, "20261122T000000Z"); !errors.Is(err, publish.ErrIncomplete) {
			t.Fatalf("Pin(incomplete) = %v", err)
		}
		if err := publish.Pin(ctx, st, "20261123T000000Z"); !errors.Is(err, publish.ErrNoVersion) {
			t.Fatalf("Pin(missing) = %v", err)
		}
		if err := publish.Pin(ctx, st, "../x"); err == nil {
			t.Fatal("Pin(../x) accepted")
		}
		target("20261120T000000Z") // failed pins changed nothing

		if err := publish.Unpin(ctx, st); err != nil {
			t.Fatal(err)
		}
		if err := publish.Unpin(ctx, st); err != nil {
			t.Fatalf("second Unpin: %v", err)
		}
		target("20261121T000000Z")

		// The interrupted publish completes and becomes the target.
		if _, err := publish.Publish(ctx, v3, st, publish.Options{}); err != nil {
			t.Fatal(err)
		}
		target("20261122T000000Z")

		// A corrupt pointer is an error, not "unpinned".
		st.Put(ctx, publish.PointerFile, strings.NewReader(`{"version":"../x"}`), 18)
		if _, _, err := publish.Target(ctx, st); !errors.Is(err, publish.ErrInvalidPointer) {
			t.Fatalf("Target with a corrupt pointer: %v, want ErrInvalidPointer", err)
		}
		big := bytes.Repeat([]byte(" "), 70<<10)
		st.Put(ctx, publish.PointerFile, bytes.NewReader(big), int64(len(big)))
		if _, _, err := publish.ReadPointer(ctx, st); !errors.Is(err, publish.ErrInvalidPointer) {
			t.Fatalf("ReadPointer of a 70 KiB pointer: %v, want ErrInvalidPointer", err)
		}
		publish.Unpin(ctx, st)

		// A corrupt release on the newest version is an error for Target.
		b := []byte(`{"format":1,"version":"20261123T000000Z"}`)
		st.Put(ctx, publish.ReleaseKey("20261123T000000Z"), bytes.NewReader(b), int64(len(b)))
		if _, _, err := publish.Target(ctx, st); !errors.Is(err, release.ErrInvalid) {
			t.Fatalf("Target with an invalid newest release: %v", err)
		}
		if got := list(); got != "20:10+complete 21:20+complete 22:30+complete 23:0+invalid" {
			t.Fatalf("Versions = %s", got)
		}
	})
}

func TestPublishRefusesBadVersions(t *testing.T) {
	ctx := context.Background()
	dst := file.New(t.TempDir())
	if _, err := publish.Publish(ctx, t.TempDir(), dst, publish.Options{}); err == nil {
		t.Fatal("published a directory without dataset.json")
	}
	dir := buildVersion(t, "v1", 5, 5)
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "db", "evil")); err != nil {
		t.Fatal(err)
	}
	if _, err := publish.Publish(ctx, dir, dst, publish.Options{}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("published a symlink: %v", err)
	}
}

// TestPublishThroughFaults publishes to the real gateway through a proxy
// that refuses, resets and delays requests: the retries absorb them.
func TestPublishThroughFaults(t *testing.T) {
	ctx := context.Background()
	dir := buildVersion(t, "v1", 700, 10<<10) // one multipart-sized table
	want := localFiles(t, dir)
	srv := s3test.Start(t)
	p := s3test.NewProxy(t, srv.Endpoint)
	opts := srv.Options()
	opts.Endpoint = p.Endpoint
	opts.PartSize = 5 << 20
	st, err := s3store.New(ctx, srv.Bucket, "users", opts)
	if err != nil {
		t.Fatal(err)
	}
	isPut := func(r *http.Request) bool { return r.Method == http.MethodPut }
	p.Inject(s3test.Fault{Kind: s3test.SlowDown, Match: isPut}, 4)
	p.Inject(s3test.Fault{Kind: s3test.Reset, Match: isPut}, 2)
	p.Inject(s3test.Fault{Kind: s3test.InternalError}, 2)
	p.Inject(s3test.Fault{Kind: s3test.Delay, Delay: 100 * time.Millisecond}, 3)
	if _, err := publish.Publish(ctx, dir, st, publish.Options{Concurrency: 4}); err != nil {
		t.Fatal(err)
	}
	if p.Pending() != 0 {
		t.Fatalf("%d faults never reached", p.Pending())
	}
	v, r, err := publish.Target(ctx, st)
	if err != nil || v != "v1" || len(r.Files) != len(want) {
		t.Fatalf("Target = %s, %v", v, err)
	}
	for _, f := range r.Files {
		rc, err := st.ReadRange(ctx, publish.VersionPrefix(v)+f.Path, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, want[f.Path]) {
			t.Fatalf("%s differs", f.Path)
		}
	}
	t.Logf("%d requests, %d faults", p.Requests(), p.Injected())
}
