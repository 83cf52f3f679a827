// Package s3test starts a real S3 server for tests: the Versity S3 Gateway
// (github.com/versity/versitygw) over a posix directory, on 127.0.0.1 on a
// free port, plain HTTP. It also has a fault-injecting proxy (Proxy) to put
// between a client and the gateway.
//
// The binary is found through $BATCHKV_VERSITYGW, then <module root>/.tools/
// versitygw, then $PATH; scripts/tools.sh installs it. A missing binary fails
// the test: these tests are never skipped.
//
// Start sets every AWS_* variable the SDK reads (t.Setenv), so the test
// neither reads the user's ~/.aws files nor the machine's AWS_CA_BUNDLE;
// tests that call Start cannot be parallel.
package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	s3store "github.com/batchkv/batchkv/internal/objstore/s3"
	"github.com/batchkv/batchkv/internal/remote"
)

// Fixed test credentials and region of every Server.
const (
	AccessKey = "batchkvtestkey"
	SecretKey = "batchkvtestsecret0123456789"
	Region    = "us-east-1"
	// Bucket is the bucket Start creates.
	Bucket = "batchkv-test"
)

// Server is a running gateway.
type Server struct {
	// Endpoint is the gateway's URL, http://127.0.0.1:PORT.
	Endpoint string
	// Bucket is a bucket created empty for the test.
	Bucket string
	// Dir is the gateway's posix root (do not write into it: upload through S3).
	Dir string

	cmd    *exec.Cmd
	stderr *lockedBuffer
}

// Start runs a gateway for the duration of the test and creates Bucket.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	SetEnv(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "gw")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkXattr(root); err != nil {
		t.Fatalf("s3test: %s cannot hold user xattrs, which versitygw needs: %v", root, err)
	}
	var lastErr error
	// A free port is picked by listening and closing; another process may
	// take it before the gateway binds, so try a few.
	for attempt := 0; attempt < 3; attempt++ {
		s, err := start(t, bin, root)
		if err == nil {
			s.createBucket(t, Bucket)
			s.Bucket = Bucket
			return s
		}
		lastErr = err
	}
	t.Fatalf("s3test: %v", lastErr)
	return nil
}

func start(t testing.TB, bin, root string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "--port", addr, "--quiet", "posix", root)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey, "VGW_REGION="+Region)
	stderr := &lockedBuffer{}
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // owned by the cleanup below, which waits for it
	s := &Server{Endpoint: "http://" + addr, Dir: root, cmd: cmd, stderr: stderr}
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			return nil, fmt.Errorf("versitygw exited: %v: %s", err, stderr.String())
		default:
		}
		if answers(s.Endpoint) {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("versitygw on %s did not answer in 15 s: %s", addr, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(stop)
	return s, nil
}

// answers reports whether an HTTP server answers at endpoint (any status:
// an anonymous request gets 403, which is an answer).
func answers(endpoint string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(endpoint + "/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func checkXattr(dir string) error {
	f := filepath.Join(dir, ".xattr-check")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		return err
	}
	defer os.Remove(f)
	return setXattr(f, "user.batchkv-check", []byte("1"))
}

// Binary returns the versitygw binary's path or fails the test.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BATCHKV_VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("s3test: BATCHKV_VERSITYGW=%s: %v", p, err)
		}
		return p
	}
	if root, err := moduleRoot(); err == nil {
		p := filepath.Join(root, ".tools", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	t.Fatal("s3test: versitygw not found (BATCHKV_VERSITYGW, <module root>/.tools/versitygw, PATH): run scripts/tools.sh")
	return ""
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// SetEnv sets every AWS_* variable the SDK would read, so that the test
// depends on nothing in the machine's environment or home directory: the
// test credentials and region, empty shared config files, no CA bundle (the
// gateway is plain HTTP), no endpoint, retry or checksum overrides, no
// instance metadata lookups.
func SetEnv(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":                        AccessKey,
		"AWS_SECRET_ACCESS_KEY":                    SecretKey,
		"AWS_SESSION_TOKEN":                        "",
		"AWS_REGION":                               Region,
		"AWS_DEFAULT_REGION":                       Region,
		"AWS_PROFILE":                              "",
		"AWS_DEFAULT_PROFILE":                      "",
		"AWS_CONFIG_FILE":                          empty,
		"AWS_SHARED_CREDENTIALS_FILE":              empty,
		"AWS_CA_BUNDLE":                            "",
		"AWS_ENDPOINT_URL":                         "",
		"AWS_ENDPOINT_URL_S3":                      "",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS":      "",
		"AWS_MAX_ATTEMPTS":                         "",
		"AWS_RETRY_MODE":                           "",
		"AWS_NEW_RETRIES_2026":                     "",
		"AWS_REQUEST_CHECKSUM_CALCULATION":         "",
		"AWS_RESPONSE_CHECKSUM_VALIDATION":         "",
		"AWS_USE_DUALSTACK_ENDPOINT":               "",
		"AWS_USE_FIPS_ENDPOINT":                    "",
		"AWS_S3_USE_ARN_REGION":                    "",
		"AWS_S3_DISABLE_MULTIREGION_ACCESS_POINTS": "",
		"AWS_EC2_METADATA_DISABLED":                "true",
		"AWS_WEB_IDENTITY_TOKEN_FILE":              "",
		"AWS_ROLE_ARN":                             "",
		"AWS_ROLE_SESSION_NAME":                    "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":       "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI":   "",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN":        "",
		"AWS_SDK_UA_APP_ID":                        "",
	} {
		t.Setenv(k, v)
	}
}

// Options returns store options for this server: its endpoint, path-style
// addressing, the test credentials, and short retry backoffs so that tests
// with injected faults stay fast.
func (s *Server) Options() s3store.Options {
	return s3store.Options{
		Endpoint:    s.Endpoint,
		PathStyle:   true,
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
		MaxBackoff:  50 * time.Millisecond,
	}
}

// RemoteOptions is Options for remote.Open.
func (s *Server) RemoteOptions() remote.Options { return remote.Options{S3: s.Options()} }

// URL returns the s3:// URL of a dataset root in the test bucket.
func (s *Server) URL(dataset string) string { return "s3://" + s.Bucket + "/" + dataset }

// Store returns a store rooted at prefix in the test bucket.
func (s *Server) Store(t testing.TB, prefix string) *s3store.Store {
	t.Helper()
	st, err := s3store.New(context.Background(), s.Bucket, prefix, s.Options())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// CreateBucket creates another empty bucket.
func (s *Server) CreateBucket(t testing.TB, name string) { s.createBucket(t, name) }

func (s *Server) createBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := s3store.NewClient(ctx, s.Options())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("s3test: create bucket %s: %v (gateway output: %s)", name, err, s.stderr.String())
	}
}

// Output returns what the gateway wrote so far (for failure messages).
func (s *Server) Output() string { return s.stderr.String() }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 { // keep the head: start-up errors come first
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimSpace(l.b.String())
}
