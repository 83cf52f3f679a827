package remote_test

import (
	"context"
	"flag"
	"strings"
	"testing"

	"github.com/batchkv/batchkv/internal/remote"
	"github.com/batchkv/batchkv/internal/s3test"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		url, want, err string
	}{
		{"s3://bucket/prefix/dataset", "s3://bucket/prefix/dataset", ""},
		{"s3://bucket/dataset/", "s3://bucket/dataset", ""},
		{"s3://bucket", "s3://bucket/", ""},
		{"file:///abs/path/dataset", "file:///abs/path/dataset", ""},
		{"file:///abs/path/dataset/", "file:///abs/path/dataset", ""},
		{"file://localhost/abs/ds", "file:///abs/ds", ""},
		{"s3:///prefix/ds", "", "empty bucket"},
		{"s3://", "", "empty bucket"},
		{"s3://bucket:9000/ds", "", "not a bucket name"},
		{"s3://bucket/a/../b", "", "prefix"},
		{"s3://bucket/a//b", "", "prefix"},
		{"file://relative/path", "", "three slashes"},
		{"file:relative", "", "not supported"},
		{"file:///a/../b", "", "clean"},
		{"file:///", "", "root"},
		{"/abs/path", "", "not a URL"},
		{"relative/path", "", "not a URL"},
		{"gs://bucket/ds", "", `unsupported scheme "gs"`},
		{"https://host/ds", "", `unsupported scheme "https"`},
		{"s3://bucket/ds?versionId=1", "", "not supported"},
	} {
		loc, err := remote.Parse(tc.url)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %v, %v; want error containing %q", tc.url, loc, err, tc.err)
			}
			continue
		}
		if err != nil || loc.String() != tc.want {
			t.Errorf("Parse(%q) = %s, %v; want %s", tc.url, loc, err, tc.want)
		}
	}
}

// TestOpen writes through one URL of each scheme and reads back.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	for _, url := range []string{"file://" + t.TempDir() + "/ds", srv.URL("prefix/ds")} {
		s, err := remote.Open(ctx, url, srv.RemoteOptions())
		if err != nil {
			t.Fatal(err)
		}
		if s.String() != url {
			t.Errorf("Open(%q).String() = %q", url, s)
		}
		if err := s.Put(ctx, "versions/v1/dataset.json", strings.NewReader("{}"), 2); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		if p, err := s.ListPrefixes(ctx, "versions/"); err != nil || len(p) != 1 || p[0] != "v1" {
			t.Fatalf("%s: ListPrefixes = %v, %v", url, p, err)
		}
	}
	if _, err := remote.Open(ctx, "ftp://x/y", remote.Options{}); err == nil {
		t.Fatal("ftp accepted")
	}
}

func TestAddFlags(t *testing.T) {
	var o remote.Options
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	o.AddFlags(fs)
	err := fs.Parse([]string{"--s3-endpoint", "http://127.0.0.1:9000", "--s3-path-style", "--s3-region", "eu-west-3", "--s3-max-attempts", "3"})
	if err != nil {
		t.Fatal(err)
	}
	if o.S3.Endpoint != "http://127.0.0.1:9000" || !o.S3.PathStyle || o.S3.Region != "eu-west-3" || o.S3.MaxAttempts != 3 || o.S3.SDKChecksums {
		t.Fatalf("options = %+v", o.S3)
	}
}
