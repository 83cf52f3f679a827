// Package remote opens the objstore.Store a dataset URL names:
// s3://bucket/prefix/dataset (package objstore/s3) or file:///abs/path/dataset
// (package objstore/file). Both have the same layout (SPEC §4).
package remote

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/objstore/file"
	s3store "github.com/batchkv/batchkv/internal/objstore/s3"
)

// Options configures the stores Open can return.
type Options struct {
	// S3 configures s3:// URLs (endpoint, path style, region, retries…).
	S3 s3store.Options
}

// Location is a parsed dataset URL.
type Location struct {
	Scheme string // "s3" or "file"
	Bucket string // s3 only
	// Path is the key prefix inside the bucket ("" for the bucket's root)
	// for s3, the absolute directory for file.
	Path string
}

// Parse checks a dataset URL and splits it.
func Parse(raw string) (Location, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Location{}, fmt.Errorf("remote: %q: %w", raw, err)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return Location{}, fmt.Errorf("remote: %q: queries, fragments, user info are not supported", raw)
	}
	for i := 0; i < len(u.Path); i++ {
		if c := u.Path[i]; c < 0x20 || c == 0x7f {
			return Location{}, fmt.Errorf("remote: %q: control character in the path", raw)
		}
	}
	switch u.Scheme {
	case "s3":
		if u.Host == "" {
			return Location{}, fmt.Errorf("remote: %q: empty bucket name (want s3://bucket/prefix/dataset)", raw)
		}
		if u.Port() != "" || strings.ContainsAny(u.Host, ":[]") {
			return Location{}, fmt.Errorf("remote: %q: bucket %q is not a bucket name (set the endpoint with --s3-endpoint)", raw, u.Host)
		}
		p := strings.Trim(u.Path, "/")
		if p != "" {
			if err := objstore.ValidKey(p); err != nil {
				return Location{}, fmt.Errorf("remote: %q: prefix: %v", raw, err)
			}
		}
		return Location{Scheme: "s3", Bucket: u.Host, Path: p}, nil
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return Location{}, fmt.Errorf("remote: %q: file URLs take an absolute path with three slashes: file:///abs/path/dataset (%q reads as a host)", raw, u.Host)
		}
		if !strings.HasPrefix(u.Path, "/") {
			return Location{}, fmt.Errorf("remote: %q: file URLs need an absolute path: file:///abs/path/dataset", raw)
		}
		p := path.Clean(u.Path)
		if p != strings.TrimSuffix(u.Path, "/") && u.Path != "/" {
			return Location{}, fmt.Errorf("remote: %q: path must be clean (no '.', '..' or '//' elements)", raw)
		}
		if p == "/" {
			return Location{}, fmt.Errorf("remote: %q: refusing the filesystem root as a dataset root", raw)
		}
		return Location{Scheme: "file", Path: p}, nil
	case "":
		return Location{}, fmt.Errorf("remote: %q is not a URL: use s3://bucket/prefix/dataset or file:///abs/path/dataset", raw)
	default:
		return Location{}, fmt.Errorf("remote: %q: unsupported scheme %q (use s3:// or file://)", raw, u.Scheme)
	}
}

// String returns the canonical URL (escaped where needed).
func (l Location) String() string {
	if l.Scheme == "s3" {
		return (&url.URL{Scheme: "s3", Host: l.Bucket, Path: "/" + l.Path}).String()
	}
	return (&url.URL{Scheme: "file", Path: l.Path}).String()
}

// Open returns the store for a dataset URL. It makes no request.
func Open(ctx context.Context, raw string, opts Options) (objstore.Store, error) {
	loc, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	switch loc.Scheme {
	case "s3":
		return s3store.New(ctx, loc.Bucket, loc.Path, opts.S3)
	default:
		return file.New(loc.Path), nil
	}
}
