package s3test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStart(t *testing.T) {
	t.Setenv("AWS_CA_BUNDLE", "/nonexistent/ca.pem") // as on a machine that sets one
	s := Start(t)
	for _, k := range []string{"AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_ENDPOINT_URL"} {
		if v := os.Getenv(k); v != "" {
			t.Errorf("%s=%q after Start", k, v)
		}
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") != AccessKey || os.Getenv("AWS_REGION") != Region {
		t.Error("test credentials and region not in the environment")
	}
	ctx := context.Background()
	st := s.Store(t, "ds")
	if err := st.Put(ctx, "k", strings.NewReader("hello"), 5); err != nil {
		t.Fatal(err)
	}
	rc, err := st.ReadRange(ctx, "k", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "hello" {
		t.Fatalf("read %q", b)
	}
	// The object went through S3 into the gateway's posix root.
	if b, err := os.ReadFile(filepath.Join(s.Dir, s.Bucket, "ds", "k")); err != nil || string(b) != "hello" {
		t.Fatalf("gateway root holds %q, %v", b, err)
	}
	if s.URL("a/b") != "s3://"+Bucket+"/a/b" || s.RemoteOptions().S3.Endpoint != s.Endpoint {
		t.Fatal("URL or RemoteOptions wrong")
	}
}

func TestBinaryFromEnv(t *testing.T) {
	p := Binary(t)
	t.Setenv("BATCHKV_VERSITYGW", p)
	if got := Binary(t); got != p {
		t.Fatalf("Binary() = %q with BATCHKV_VERSITYGW=%q", got, p)
	}
}
