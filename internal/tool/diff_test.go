package tool

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/cli"
	"github.com/batchkv/batchkv/internal/diff"
	"github.com/batchkv/batchkv/internal/redistest"
	"github.com/batchkv/batchkv/internal/store"
)

// TestMain removes the batchkv-server binary the diff tests build.
func TestMain(m *testing.M) { redistest.Main(m) }

func diffEntries(n int) []store.Entry {
	var es []store.Entry
	for i := range n {
		es = append(es, store.Entry{Key: fmt.Appendf(nil, "k:%d", i), Value: store.AppendString(nil, fmt.Appendf(nil, "v%d", i))})
	}
	for i := range 10 {
		v := store.AppendHashHeader(nil, 2)
		v = store.AppendHashField(v, []byte("a"), fmt.Appendf(nil, "%d", i))
		v = store.AppendHashField(v, []byte("b\x00"), []byte("\xff"))
		es = append(es, store.Entry{Key: fmt.Appendf(nil, "h:%d", i), Value: v})
	}
	return append(es, store.Entry{Key: []byte("bin\x00\n"), Value: store.AppendString(nil, []byte("x"))})
}

func redisCmd(t *testing.T, addr string, args ...string) {
	t.Helper()
	c, err := redistest.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.DoString(args...)
	if err != nil || got[0] == '-' {
		t.Fatalf("%v: %s %v", args, redistest.Escape(got), err)
	}
}

func exitCode(err error) int { return cli.ExitCode("batchkv", err, io.Discard) }

func TestDiffCommand(t *testing.T) {
	es := diffEntries(200)
	a, b := redistest.StartRedis(t), redistest.StartRedis(t)
	redistest.Load(t, a.Addr, es)
	redistest.Load(t, b.Addr, es)

	stdout, stderr, err := run(t, nil, "diff", a.Addr, b.Addr, "--both")
	if exitCode(err) != 0 || !strings.Contains(stdout, "compared:          211") || !strings.HasSuffix(stdout, "identical\n") {
		t.Fatalf("identical: %v\n%s%s", err, stdout, stderr)
	}
	for _, w := range []string{"latency A:", "p50", "p99", "keys from: scan", "dbsize 211"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("report lacks %q:\n%s", w, stdout)
		}
	}

	// A keys file with binary keys, the batch at its smallest.
	var lines []string
	for _, e := range es {
		lines = append(lines, base64.StdEncoding.EncodeToString(e.Key))
	}
	kf := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(kf, []byte(strings.Join(lines, "\n")), 0o644)
	stdout, _, err = run(t, nil, "diff", a.Addr, b.Addr, "--keys", kf, "--keys-b64", "--batch", "1", "--concurrency", "2")
	if err != nil || !strings.Contains(stdout, "compared:          211") {
		t.Fatalf("--keys: %v\n%s", err, stdout)
	}

	redisCmd(t, b.Addr, "SET", "k:3", "other")
	redisCmd(t, b.Addr, "DEL", "k:4")
	redisCmd(t, b.Addr, "SET", "extra", "1")
	redisCmd(t, b.Addr, "HSET", "h:1", "b\x00", "changed")
	redisCmd(t, b.Addr, "DEL", "h:2")
	redisCmd(t, b.Addr, "SADD", "h:2", "m")

	stdout, _, err = run(t, nil, "diff", a.Addr, b.Addr, "--both", "--json", "--examples", "3")
	if !errors.Is(err, diff.ErrDifferent) || exitCode(err) != 1 {
		t.Fatalf("differences: err %v, exit %d", err, exitCode(err))
	}
	var rep struct {
		Compared, Equal, Mismatched int64
		MissingA                    int64 `json:"missing_on_a"`
		MissingB                    int64 `json:"missing_on_b"`
		TypeDiffs                   int64 `json:"type_differences"`
		Count                       int64 `json:"count_differences"`
		Examples                    []diff.Difference
		A                           diff.Side
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	if rep.Compared != 212 || rep.Equal != 207 || rep.Mismatched != 2 || rep.MissingA != 1 || rep.MissingB != 1 || rep.TypeDiffs != 1 || rep.Count != 0 || len(rep.Examples) != 3 || rep.A.Latency.Rounds == 0 {
		t.Fatalf("--json report: %+v\n%s", rep, stdout)
	}

	// Automation gets an empty list, not null, when there is nothing to show.
	stdout, _, _ = run(t, nil, "diff", a.Addr, a.Addr, "--json")
	if !strings.Contains(stdout, `"examples": []`) {
		t.Fatalf("--json of identical servers:\n%s", stdout)
	}
	stdout, _, err = run(t, nil, "diff", a.Addr, b.Addr, "--examples", "0")
	if exitCode(err) != 1 || strings.Contains(stdout, "first ") || !strings.Contains(stdout, "DIFFERENT: 4 differences") {
		t.Fatalf("scan of A only: %v\n%s", err, stdout)
	}
	stdout, _, err = run(t, nil, "diff", a.Addr, b.Addr)
	for _, w := range []string{`mismatch "h:1"`, `B: hash (2 fields), field "b\x00" = "changed"`, `type "h:2"`, `B: set (1 elements)`, `missing_on_b "k:4"`} {
		if !strings.Contains(stdout, w) {
			t.Errorf("examples lack %q:\n%s", w, stdout)
		}
	}

	// Rate limiting: 200 keys at 1000/s take 0.2 s.
	var keys []string
	for i := range 200 {
		keys = append(keys, "k:"+strconv.Itoa(i))
	}
	os.WriteFile(kf, []byte(strings.Join(keys, "\n")), 0o644)
	start := time.Now()
	stdout, _, err = run(t, nil, "diff", a.Addr, a.Addr, "--keys", kf, "--rate", "1000")
	if took := time.Since(start); err != nil || took < 150*time.Millisecond || took > 5*time.Second {
		t.Fatalf("--rate 1000: %v in %s\n%s", err, took, stdout)
	}
}

func TestDiffBatchkvDataset(t *testing.T) {
	es := diffEntries(300)
	dir := filepath.Join(t.TempDir(), "v1")
	if err := store.WriteVersion(context.Background(), dir, &store.Meta{Name: "ds", Version: "v1"}, es); err != nil {
		t.Fatal(err)
	}
	// The server locks the directory it serves: it gets its own copy.
	served := filepath.Join(t.TempDir(), "v1")
	if err := os.CopyFS(served, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	bk := redistest.StartBatchkv(t, served, "--metrics-addr", "") // no fixed metrics port: tests run in parallel
	r := redistest.StartRedis(t)
	redistest.Load(t, r.Addr, es)

	for _, args := range [][]string{
		{"--dataset", dir},
		{"--sample", "50"},
		{"--both"},
	} {
		stdout, stderr, err := run(t, nil, append([]string{"diff", bk.Addr, r.Addr}, args...)...)
		if err != nil || !strings.HasSuffix(stdout, "identical\n") {
			t.Fatalf("%v: %v\n%s%s", args, err, stdout, stderr)
		}
	}
	stdout, _, _ := run(t, nil, "diff", bk.Addr, r.Addr, "--dataset", dir)
	if !strings.Contains(stdout, "dataset keys: 311") || !strings.Contains(stdout, "compared:          311") {
		t.Fatalf("--dataset:\n%s", stdout)
	}

	redisCmd(t, r.Addr, "DEL", "k:7")
	stdout, _, err := run(t, nil, "diff", bk.Addr, r.Addr, "--dataset", dir)
	if exitCode(err) != 1 || !strings.Contains(stdout, "missing on B:      1") || !strings.Contains(stdout, "count differences: 1") {
		t.Fatalf("--dataset after DEL: %v\n%s", err, stdout)
	}
	_, _, err = run(t, nil, "diff", bk.Addr, r.Addr, "--dataset", served)
	if err == nil || !strings.Contains(err.Error(), "a server has it open") {
		t.Fatalf("--dataset of the served directory: %v", err)
	}
}

func TestDiffUsageAndConnectErrors(t *testing.T) {
	r := redistest.StartRedis(t)
	closed := "127.0.0.1:" + strconv.Itoa(redistest.ClosedPort(t))
	for _, args := range [][]string{
		{"diff"},
		{"diff", r.Addr},
		{"diff", r.Addr, r.Addr, "extra"},
		{"diff", r.Addr, r.Addr, "--keys", "f", "--sample", "3"},
		{"diff", r.Addr, r.Addr, "--dataset", "d", "--both"},
		{"diff", r.Addr, r.Addr, "--rate", "-1"},
		{"diff", r.Addr, r.Addr, "--batch", "0"},
		{"diff", r.Addr, r.Addr, "--keys-b64"},
		{"diff", r.Addr, r.Addr, "--tls-ca", "x.pem"},
		{"diff", r.Addr, r.Addr, "--nope"},
	} {
		if _, _, err := run(t, nil, args...); exitCode(err) != 2 {
			t.Errorf("%v: %v (exit %d), want a usage error", args, err, exitCode(err))
		}
	}
	_, _, err := run(t, nil, "diff", closed, r.Addr, "--timeout", "2s")
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "diff: A "+closed+": cannot connect") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("closed port: %v", err)
	}
	_, _, err = run(t, nil, "diff", r.Addr, r.Addr, "--keys", filepath.Join(t.TempDir(), "missing"))
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "diff: keys: open") {
		t.Fatalf("missing keys file: %v", err)
	}

	// Passwords come from flags or, better, the environment.
	redisCmd(t, r.Addr, "CONFIG", "SET", "requirepass", "pw")
	_, _, err = run(t, nil, "diff", r.Addr, r.Addr, "--password-a", "pw")
	if err == nil || !strings.Contains(err.Error(), "diff: B "+r.Addr) {
		t.Fatalf("no password for B: %v", err)
	}
	stdout, _, err := run(t, map[string]string{"BATCHKV_PASSWORD_A": "pw", "BATCHKV_PASSWORD_B": "pw"}, "diff", r.Addr, r.Addr)
	if err != nil || !strings.HasSuffix(stdout, "identical\n") {
		t.Fatalf("passwords from the environment: %v\n%s", err, stdout)
	}
}

func TestDiffTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir)
	tlsPort := redistest.ClosedPort(t)
	r := redistest.StartRedis(t, "--tls-port", strconv.Itoa(tlsPort), "--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-ca-cert-file", certFile, "--tls-auth-clients", "no")
	redistest.Load(t, r.Addr, diffEntries(20))
	tlsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))

	stdout, stderr, err := run(t, nil, "diff", r.Addr, tlsAddr, "--tls-b", "--tls-ca", certFile)
	if err != nil || !strings.HasSuffix(stdout, "identical\n") {
		t.Fatalf("TLS on B: %v\n%s%s", err, stdout, stderr)
	}
	// Without the CA the certificate is not trusted; without TLS the port
	// does not answer RESP.
	if _, _, err = run(t, nil, "diff", r.Addr, tlsAddr, "--tls-b", "--timeout", "2s"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v", err)
	}
	if _, _, err = run(t, nil, "diff", r.Addr, tlsAddr, "--timeout", "1s"); err == nil {
		t.Fatal("plain RESP to a TLS port succeeded")
	}
}

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "batchkv diff test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

func TestDiffKeysFromStdin(t *testing.T) {
	r := redistest.StartRedis(t)
	redistest.Load(t, r.Addr, diffEntries(5))
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer pw.Close()
		io.WriteString(pw, "k:1\r\nk:2\n\nnope\n")
	}()
	stdin := os.Stdin
	os.Stdin = pr
	defer func() { os.Stdin = stdin; pr.Close() }()
	stdout, _, err := run(t, nil, "diff", r.Addr, r.Addr, "--keys", "-")
	if err != nil || !strings.Contains(stdout, "compared:          3") || !strings.Contains(stdout, "(1 on neither side)") {
		t.Fatalf("--keys -: %v\n%s", err, stdout)
	}
}

func TestDiffServerGoneMidRun(t *testing.T) {
	es := diffEntries(200)
	a, b := redistest.StartRedis(t), redistest.StartRedis(t)
	redistest.Load(t, a.Addr, es)
	redistest.Load(t, b.Addr, es)
	go func() {
		time.Sleep(300 * time.Millisecond)
		if c, err := redistest.Dial(b.Addr); err == nil {
			c.DoString("SHUTDOWN", "NOSAVE") // the connection just closes
			c.Close()
		}
	}()
	start := time.Now()
	// 211 keys at 200/s take about 1 s: B goes away in the middle.
	stdout, stderr, err := run(t, nil, "diff", a.Addr, b.Addr, "--rate", "200", "--timeout", "2s", "--quiet")
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "diff: B "+b.Addr) || !strings.Contains(stderr, "the report below is partial") {
		t.Fatalf("server gone: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "compared:") || strings.Contains(stdout, "compared:          211") {
		t.Fatalf("partial report:\n%s", stdout)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("took %s", took)
	}
}
