package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/objstore/file"
	s3store "github.com/batchkv/batchkv/internal/objstore/s3"
	"github.com/batchkv/batchkv/internal/s3test"
)

// TestConformance runs one behavioural suite against the local store and the
// S3 store on a real S3 server: the two must be interchangeable.
func TestConformance(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		n := 0
		conformance(t, func(t *testing.T) objstore.Store {
			n++
			return file.New(filepath.Join(dir, fmt.Sprint("ds", n)))
		})
	})
	for _, sdkChecksums := range []bool{false, true} {
		t.Run(fmt.Sprint("s3/sdk-checksums=", sdkChecksums), func(t *testing.T) {
			srv := s3test.Start(t)
			n := 0
			conformance(t, func(t *testing.T) objstore.Store {
				n++
				opts := srv.Options()
				opts.SDKChecksums = sdkChecksums // true: as against AWS
				opts.PartSize = 5 << 20          // S3's minimum: multipart from 5 MiB
				opts.ListPageSize = 7            // exercise pagination with few keys
				st, err := s3store.New(context.Background(), srv.Bucket, fmt.Sprint("prefix/ds", n), opts)
				if err != nil {
					t.Fatal(err)
				}
				return st
			})
		})
	}
}

func conformance(t *testing.T, newStore func(t *testing.T) objstore.Store) {
	ctx := context.Background()
	put := func(t *testing.T, s objstore.Store, key string, body []byte) {
		t.Helper()
		if err := s.Put(ctx, key, bytes.NewReader(body), int64(len(body))); err != nil {
			t.Fatalf("Put(%q): %v", key, err)
		}
	}
	read := func(t *testing.T, s objstore.Store, key string, off, n int64) string {
		t.Helper()
		rc, err := s.ReadRange(ctx, key, off, n)
		if err != nil {
			t.Fatalf("ReadRange(%q, %d, %d): %v", key, off, n, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("ReadRange(%q, %d, %d): read: %v", key, off, n, err)
		}
		return string(b)
	}
	keys := func(objs []objstore.Object) string {
		var ks []string
		for _, o := range objs {
			ks = append(ks, fmt.Sprintf("%s:%d", o.Key, o.Size))
		}
		return strings.Join(ks, ",")
	}

	t.Run("empty", func(t *testing.T) {
		s := newStore(t)
		if objs, err := s.List(ctx, ""); err != nil || len(objs) != 0 {
			t.Fatalf("List = %v, %v", objs, err)
		}
		if p, err := s.ListPrefixes(ctx, "versions/"); err != nil || len(p) != 0 {
			t.Fatalf("ListPrefixes = %v, %v", p, err)
		}
	})

	t.Run("list", func(t *testing.T) {
		s := newStore(t)
		put(t, s, "versions/v2/dataset.json", []byte("{}"))
		put(t, s, "versions/v1/db/000001.sst", []byte("0123456789"))
		put(t, s, "versions/v1/dataset.json", []byte("{}"))
		put(t, s, "pointer.json", []byte(`{"version":"v1"}`))
		for _, tc := range []struct{ prefix, want string }{
			{"versions/v1/", "versions/v1/dataset.json:2,versions/v1/db/000001.sst:10"},
			{"versions/v1/da", "versions/v1/dataset.json:2"},
			{"versions/", "versions/v1/dataset.json:2,versions/v1/db/000001.sst:10,versions/v2/dataset.json:2"},
			{"", "pointer.json:16,versions/v1/dataset.json:2,versions/v1/db/000001.sst:10,versions/v2/dataset.json:2"},
			{"po", "pointer.json:16"},
			{"versions/v3/", ""},
		} {
			objs, err := s.List(ctx, tc.prefix)
			if err != nil {
				t.Fatalf("List(%q): %v", tc.prefix, err)
			}
			if got := keys(objs); got != tc.want {
				t.Errorf("List(%q) = %s, want %s", tc.prefix, got, tc.want)
			}
			for _, o := range objs {
				if o.ETag == "" || o.ModTime.IsZero() {
					t.Errorf("List(%q): %+v lacks ETag or ModTime", tc.prefix, o)
				}
			}
		}
		for _, tc := range []struct{ prefix, want string }{
			{"versions/", "v1,v2"},
			{"", "versions"},
			{"versions/v1/", "db"},
			{"nope/", ""},
		} {
			p, err := s.ListPrefixes(ctx, tc.prefix)
			if err != nil {
				t.Fatalf("ListPrefixes(%q): %v", tc.prefix, err)
			}
			if got := strings.Join(p, ","); got != tc.want {
				t.Errorf("ListPrefixes(%q) = %s, want %s", tc.prefix, got, tc.want)
			}
		}
		if _, err := s.ListPrefixes(ctx, "versions"); err == nil {
			t.Error("ListPrefixes without a trailing / accepted")
		}
	})

	t.Run("pagination", func(t *testing.T) {
		s := newStore(t)
		// 40 versions of 2 files each: many pages of 7 for the S3 store.
		var want []string
		var wantPrefixes []string
		var wg sync.WaitGroup
		errs := make(chan error, 80)
		sem := make(chan struct{}, 8)
		for i := range 40 {
			v := fmt.Sprintf("v%03d", i)
			wantPrefixes = append(wantPrefixes, v)
			for _, f := range []string{"a", "b/c"} {
				key := "versions/" + v + "/" + f
				want = append(want, key+":1")
				wg.Add(1)
				go func() {
					defer wg.Done()
					sem <- struct{}{}
					defer func() { <-sem }()
					if err := s.Put(ctx, key, strings.NewReader("x"), 1); err != nil {
						errs <- err
					}
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		objs, err := s.List(ctx, "versions/")
		if err != nil {
			t.Fatal(err)
		}
		if got := keys(objs); got != strings.Join(want, ",") {
			t.Fatalf("List = %s\nwant %s", got, strings.Join(want, ","))
		}
		p, err := s.ListPrefixes(ctx, "versions/")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(p, ",") != strings.Join(wantPrefixes, ",") {
			t.Fatalf("ListPrefixes = %v", p)
		}
	})

	t.Run("stat-read", func(t *testing.T) {
		s := newStore(t)
		put(t, s, "a/b", []byte("0123456789"))
		put(t, s, "empty", nil)
		o, err := s.Stat(ctx, "a/b")
		if err != nil || o.Size != 10 || o.Key != "a/b" || o.ETag == "" {
			t.Fatalf("Stat = %+v, %v", o, err)
		}
		if o, err := s.Stat(ctx, "empty"); err != nil || o.Size != 0 {
			t.Fatalf("Stat(empty) = %+v, %v", o, err)
		}
		for _, tc := range []struct {
			key     string
			off, n  int64
			want    string
			wantErr bool
		}{
			{"a/b", 0, -1, "0123456789", false},
			{"a/b", 3, 4, "3456", false},
			{"a/b", 8, -1, "89", false},
			{"a/b", 8, 100, "89", false}, // clipped at the end
			{"a/b", 9, 1, "9", false},
			{"a/b", 10, -1, "", false}, // at the end: empty
			{"a/b", 4, 0, "", false},
			{"a/b", 11, -1, "", true}, // past the end
			{"a/b", -1, 2, "", true},
			{"empty", 0, -1, "", false},
		} {
			rc, err := s.ReadRange(ctx, tc.key, tc.off, tc.n)
			if tc.wantErr {
				if err == nil {
					rc.Close()
					t.Errorf("ReadRange(%q, %d, %d) succeeded", tc.key, tc.off, tc.n)
				}
				continue
			}
			if err != nil {
				t.Errorf("ReadRange(%q, %d, %d): %v", tc.key, tc.off, tc.n, err)
				continue
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || string(b) != tc.want {
				t.Errorf("ReadRange(%q, %d, %d) = %q, %v; want %q", tc.key, tc.off, tc.n, b, err, tc.want)
			}
		}
		// "a" is only a prefix (a directory in the file store): no object.
		if _, err := s.Stat(ctx, "a"); !errors.Is(err, objstore.ErrNotExist) {
			t.Errorf("Stat(a) = %v, want ErrNotExist", err)
		}
		for _, key := range []string{"a", "nope", "a/nope"} {
			if _, err := s.Stat(ctx, key); !errors.Is(err, objstore.ErrNotExist) {
				t.Errorf("Stat(%q) = %v, want ErrNotExist", key, err)
			}
			if _, err := s.ReadRange(ctx, key, 0, -1); !errors.Is(err, objstore.ErrNotExist) {
				t.Errorf("ReadRange(%q) = %v, want ErrNotExist", key, err)
			}
			if _, err := s.ReadRange(ctx, key, 0, 0); !errors.Is(err, objstore.ErrNotExist) {
				t.Errorf("ReadRange(%q, 0, 0) = %v, want ErrNotExist", key, err)
			}
		}
	})

	t.Run("put-replace-delete", func(t *testing.T) {
		s := newStore(t)
		put(t, s, "pointer.json", []byte(`{"version":"v1"}`))
		put(t, s, "pointer.json", []byte(`{"version":"v22"}`))
		if got := read(t, s, "pointer.json", 0, -1); got != `{"version":"v22"}` {
			t.Fatalf("after replace: %q", got)
		}
		if err := s.Delete(ctx, "pointer.json"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "pointer.json"); err != nil {
			t.Fatalf("second Delete: %v", err)
		}
		if _, err := s.Stat(ctx, "pointer.json"); !errors.Is(err, objstore.ErrNotExist) {
			t.Fatalf("Stat after Delete = %v", err)
		}
		// A short source is an error and leaves no object.
		if err := s.Put(ctx, "short", strings.NewReader("abc"), 10); err == nil {
			t.Fatal("Put with a short reader succeeded")
		}
		if _, err := s.Stat(ctx, "short"); !errors.Is(err, objstore.ErrNotExist) {
			t.Fatalf("partial object visible: %v", err)
		}
	})

	t.Run("large", func(t *testing.T) {
		s := newStore(t)
		// Over two 5 MiB parts: a multipart upload on S3.
		body := make([]byte, 11<<20+123)
		rng := rand.NewChaCha8([32]byte{1})
		rng.Read(body)
		put(t, s, "versions/v1/db/000004.sst", body)
		o, err := s.Stat(ctx, "versions/v1/db/000004.sst")
		if err != nil || o.Size != int64(len(body)) {
			t.Fatalf("Stat = %+v, %v", o, err)
		}
		if got := read(t, s, "versions/v1/db/000004.sst", 0, -1); got != string(body) {
			t.Fatal("large object read back differs")
		}
		off := int64(5<<20 - 10) // across the first part boundary
		if got := read(t, s, "versions/v1/db/000004.sst", off, 20); got != string(body[off:off+20]) {
			t.Fatal("range across a part boundary differs")
		}
		// A short source of a multipart-sized object fails too.
		short := bytes.NewReader(body[:6<<20])
		if err := s.Put(ctx, "short-large", short, int64(len(body))); err == nil {
			t.Fatal("multipart Put with a short reader succeeded")
		}
		if _, err := s.Stat(ctx, "short-large"); !errors.Is(err, objstore.ErrNotExist) {
			t.Fatalf("partial multipart object visible: %v", err)
		}
	})

	t.Run("escape", func(t *testing.T) {
		s := newStore(t)
		for _, key := range []string{"../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", `a\b`, "", "a/", ".", ".."} {
			if err := s.Put(ctx, key, bytes.NewReader(nil), 0); err == nil {
				t.Errorf("Put(%q) accepted", key)
			}
			if _, err := s.ReadRange(ctx, key, 0, -1); err == nil {
				t.Errorf("ReadRange(%q) accepted", key)
			}
			if _, err := s.Stat(ctx, key); err == nil {
				t.Errorf("Stat(%q) accepted", key)
			}
			if err := s.Delete(ctx, key); err == nil {
				t.Errorf("Delete(%q) accepted", key)
			}
		}
		for _, prefix := range []string{"../", "a/../", "/x/"} {
			if _, err := s.List(ctx, prefix); err == nil {
				t.Errorf("List(%q) accepted", prefix)
			}
			if _, err := s.ListPrefixes(ctx, prefix); err == nil {
				t.Errorf("ListPrefixes(%q) accepted", prefix)
			}
		}
	})

	t.Run("isolated", func(t *testing.T) {
		// Two stores side by side ("…/ds7" and "…/ds8") see only their own keys.
		a, b := newStore(t), newStore(t)
		put(t, a, "k", []byte("a"))
		put(t, b, "k", []byte("bb"))
		if objs, err := a.List(ctx, ""); err != nil || keys(objs) != "k:1" {
			t.Fatalf("a.List = %s, %v", keys(objs), err)
		}
		if got := read(t, b, "k", 0, -1); got != "bb" {
			t.Fatalf("b read %q", got)
		}
	})
}
