package remote_test

import (
	"strings"
	"testing"

	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/remote"
)

// FuzzParse: an accepted URL has a clean location that parses back to
// itself; an s3 prefix is a valid key; a file path is absolute and clean.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"s3://bucket/prefix/dataset", "s3://b", "s3://b/a/../c", "file:///abs/ds", "file://host/x",
		"file:///a//b", "s3://b:1/x", "gs://x/y", "/abs", "s3://b/x%2F..%2Fy", "file:///a/%2e%2e/b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		loc, err := remote.Parse(raw)
		if err != nil {
			return
		}
		switch loc.Scheme {
		case "s3":
			if loc.Bucket == "" {
				t.Fatalf("%q: empty bucket accepted", raw)
			}
			if loc.Path != "" && objstore.ValidKey(loc.Path) != nil {
				t.Fatalf("%q: prefix %q is not a valid key", raw, loc.Path)
			}
		case "file":
			if !strings.HasPrefix(loc.Path, "/") || strings.Contains(loc.Path, "/../") || strings.HasSuffix(loc.Path, "/..") || strings.Contains(loc.Path, "//") {
				t.Fatalf("%q: path %q is not absolute and clean", raw, loc.Path)
			}
		default:
			t.Fatalf("%q: scheme %q accepted", raw, loc.Scheme)
		}
		again, err := remote.Parse(loc.String())
		if err != nil || again != loc {
			t.Fatalf("%q -> %s -> %+v, %v", raw, loc, again, err)
		}
	})
}
