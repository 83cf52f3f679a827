package file

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batchkv/batchkv/internal/objstore"
)

func TestStore(t *testing.T) {
	ctx := context.Background()
	s := New(filepath.Join(t.TempDir(), "ds"))
	put := func(key, body string) {
		t.Helper()
		if err := s.Put(ctx, key, strings.NewReader(body), int64(len(body))); err != nil {
			t.Fatal(err)
		}
	}
	if objs, err := s.List(ctx, "versions/"); err != nil || len(objs) != 0 {
		t.Fatalf("List of empty store = %v, %v", objs, err)
	}
	put("versions/v1/dataset.json", "{}")
	put("versions/v1/db/000001.sst", "0123456789")
	put("versions/v2/dataset.json", "{}")
	put("pointer.json", `{"version":"v1"}`)

	objs, err := s.List(ctx, "versions/v1/")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].Key != "versions/v1/dataset.json" || objs[1].Key != "versions/v1/db/000001.sst" || objs[1].Size != 10 {
		t.Fatalf("List = %+v", objs)
	}
	prefixes, err := s.ListPrefixes(ctx, "versions/")
	if err != nil || strings.Join(prefixes, ",") != "v1,v2" {
		t.Fatalf("ListPrefixes = %v, %v", prefixes, err)
	}
	rc, err := s.ReadRange(ctx, "versions/v1/db/000001.sst", 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "3456" {
		t.Fatalf("ReadRange = %q", b)
	}
	rc, _ = s.ReadRange(ctx, "versions/v1/db/000001.sst", 8, -1)
	b, _ = io.ReadAll(rc)
	rc.Close()
	if string(b) != "89" {
		t.Fatalf("ReadRange to end = %q", b)
	}
	if _, err := s.Stat(ctx, "nope"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("Stat missing = %v", err)
	}
	if _, err := s.ReadRange(ctx, "nope", 0, -1); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("ReadRange missing = %v", err)
	}
	put("pointer.json", `{"version":"v2"}`) // replace
	o, err := s.Stat(ctx, "pointer.json")
	if err != nil || o.Size != 16 {
		t.Fatalf("Stat after replace = %+v, %v", o, err)
	}
	if err := s.Delete(ctx, "versions/v2/dataset.json"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "versions/v2/dataset.json"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if prefixes, _ := s.ListPrefixes(ctx, "versions/"); strings.Join(prefixes, ",") != "v1" {
		t.Fatalf("empty version dir not removed: %v", prefixes)
	}
	// No temp files visible or left over.
	filepath.Walk(s.root, func(p string, fi os.FileInfo, err error) error {
		if strings.Contains(p, tmpPrefix) {
			t.Errorf("temp file left: %s", p)
		}
		return nil
	})
}

func TestKeysCannotEscape(t *testing.T) {
	ctx := context.Background()
	s := New(t.TempDir())
	for _, key := range []string{"../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", `a\b`, "", "a/"} {
		if err := s.Put(ctx, key, bytes.NewReader(nil), 0); err == nil {
			t.Errorf("Put(%q) accepted", key)
		}
		if _, err := s.ReadRange(ctx, key, 0, -1); err == nil {
			t.Errorf("ReadRange(%q) accepted", key)
		}
	}
}

func TestPutShortReader(t *testing.T) {
	s := New(t.TempDir())
	if err := s.Put(context.Background(), "k", strings.NewReader("abc"), 10); err == nil {
		t.Fatal("Put with short reader succeeded")
	}
	if _, err := s.Stat(context.Background(), "k"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("partial object visible: %v", err)
	}
}
