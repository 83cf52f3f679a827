package hostile

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/redistest"
	"github.com/batchkv/batchkv/internal/store"
	"github.com/batchkv/batchkv/internal/tlsconf/tlstest"
	"github.com/batchkv/batchkv/test/hostile/harness"
	"github.com/redis/go-redis/v9"
)

// smallDataset writes a version holding key → value for each pair.
func smallDataset(t testing.TB, kv ...string) string {
	t.Helper()
	var es []store.Entry
	for i := 0; i < len(kv); i += 2 {
		es = append(es, store.Entry{Key: []byte(kv[i]), Value: store.AppendString(nil, []byte(kv[i+1]))})
	}
	dir := filepath.Join(t.TempDir(), "v1")
	if err := store.WriteVersion(context.Background(), dir, &store.Meta{Name: "hostile", Version: "v1"}, es); err != nil {
		t.Fatal(err)
	}
	return dir
}

func tlsClient(addr string, cfg *tls.Config) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, TLSConfig: cfg, MaxRetries: -1,
		DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, Protocol: 3})
}

func tlsGet(addr string, cfg *tls.Config) (string, error) {
	c := tlsClient(addr, cfg)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Get(ctx, "k").Result()
}

// redisCLI runs Debian's redis-cli (built with TLS) against addr.
func redisCLI(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	all := append([]string{"-h", host, "-p", port}, args...)
	out, err := exec.CommandContext(ctx, "redis-cli", all...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func needRedisCLI(t *testing.T) {
	t.Helper()
	out, err := exec.Command("redis-cli", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--tls") {
		t.Fatalf("redis-cli with TLS support is required (Debian's redis-tools 7): %v", err)
	}
}

// TestTLS serves the Redis port over TLS with optional client certificates:
// go-redis and redis-cli connect with the CA, with and without a client
// certificate; a plaintext client, a client trusting another CA, a client
// with a certificate of another CA and a TLS 1.1 client are refused.
func TestTLS(t *testing.T) {
	needRedisCLI(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	srvCert := ca.Server(t, "server")
	client := ca.Client(t, "client")
	rogue := tlstest.NewCA(t, dir, "rogue")
	rogueClient := rogue.Client(t, "rogue-client")

	s := harness.StartServer(t, "--dataset", smallDataset(t, "k", "v"),
		"--tls-cert-file", srvCert.CertFile, "--tls-key-file", srvCert.KeyFile,
		"--tls-ca-cert-file", ca.File, "--tls-auth-clients", "optional")

	if v, err := tlsGet(s.Addr, &tls.Config{RootCAs: ca.Pool()}); err != nil || v != "v" {
		t.Errorf("go-redis over TLS, no client certificate: %q, %v", v, err)
	}
	if v, err := tlsGet(s.Addr, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{client.TLS}}); err != nil || v != "v" {
		t.Errorf("go-redis over TLS with a client certificate: %q, %v", v, err)
	}
	if out, err := redisCLI(t, s.Addr, "--tls", "--cacert", ca.File, "GET", "k"); err != nil || out != "v" {
		t.Errorf("redis-cli --tls --cacert: %q, %v", out, err)
	}
	if out, err := redisCLI(t, s.Addr, "--tls", "--cacert", ca.File, "--cert", client.CertFile, "--key", client.KeyFile, "PING"); err != nil || out != "PONG" {
		t.Errorf("redis-cli --tls with a client certificate: %q, %v", out, err)
	}

	// Refused: no PONG for any of these.
	c, err := redistest.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTimeout(5 * time.Second)
	if got, err := c.DoString("PING"); err == nil {
		t.Errorf("plaintext PING on the TLS port answered %s", redistest.Escape(got))
	}
	c.Close()
	if _, err := tlsGet(s.Addr, &tls.Config{RootCAs: rogue.Pool()}); err == nil {
		t.Error("a client trusting another CA connected")
	}
	// Go's client leaves out a certificate the server's CA list does not
	// name: force it.
	forceRogue := func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &rogueClient.TLS, nil }
	if _, err := tlsGet(s.Addr, &tls.Config{RootCAs: ca.Pool(), GetClientCertificate: forceRogue}); err == nil {
		t.Error("a client certificate of another CA was accepted")
	}
	if _, err := tlsGet(s.Addr, &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("a TLS 1.1 client connected")
	}
	if _, err := s.WaitLog("TLS handshake failed", 3, 5*time.Second); err != nil {
		t.Error(err)
	}
}

// TestTLSClientCertRequired: with --tls-auth-clients yes (the default with
// a CA file), a client without a certificate is refused.
func TestTLSClientCertRequired(t *testing.T) {
	needRedisCLI(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	srvCert := ca.Server(t, "server")
	client := ca.Client(t, "client")
	s := harness.StartServer(t, "--dataset", smallDataset(t, "k", "v"),
		"--tls-cert-file", srvCert.CertFile, "--tls-key-file", srvCert.KeyFile, "--tls-ca-cert-file", ca.File)

	if _, err := tlsGet(s.Addr, &tls.Config{RootCAs: ca.Pool()}); err == nil {
		t.Error("a client without a certificate connected with client certificates required")
	}
	if out, err := redisCLI(t, s.Addr, "--tls", "--cacert", ca.File, "PING"); err == nil && out == "PONG" {
		t.Errorf("redis-cli without a certificate: %q", out)
	}
	if v, err := tlsGet(s.Addr, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{client.TLS}}); err != nil || v != "v" {
		t.Errorf("go-redis with a client certificate: %q, %v", v, err)
	}
	if out, err := redisCLI(t, s.Addr, "--tls", "--cacert", ca.File, "--cert", client.CertFile, "--key", client.KeyFile, "GET", "k"); err != nil || out != "v" {
		t.Errorf("redis-cli with a client certificate: %q, %v", out, err)
	}
}

// TestTLSReload rotates the server's certificate to one of a new CA under a
// running server: new connections get the new certificate, an open
// connection keeps working, and a broken rotation (a key that does not
// match) keeps the last good certificate.
func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	ca1 := tlstest.NewCA(t, dir, "ca1")
	first := ca1.Server(t, "server1")
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first.Install(t, certFile, keyFile)
	s := harness.StartServer(t, "--dataset", smallDataset(t, "k", "v"),
		"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-reload-interval", "100ms")

	old := tlsClient(s.Addr, &tls.Config{RootCAs: ca1.Pool()})
	defer old.Close()
	ctx := context.Background()
	if err := old.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}

	ca2 := tlstest.NewCA(t, dir, "ca2")
	second := ca2.Server(t, "server2")
	second.Install(t, certFile, keyFile)
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := tlsGet(s.Addr, &tls.Config{RootCAs: ca2.Pool()})
		if err == nil && v == "v" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotated certificate was not served after 20s: %v", err)
		}
		time.Sleep(150 * time.Millisecond)
	}
	if _, err := tlsGet(s.Addr, &tls.Config{RootCAs: ca1.Pool()}); err == nil {
		t.Error("the old certificate is still served to new connections")
	}
	if v, err := old.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Errorf("the connection opened before the rotation: %q, %v", v, err)
	}
	if _, err := s.WaitLog("tls: certificate reloaded", 1, 5*time.Second); err != nil {
		t.Error(err)
	}

	// A half-done rotation: ca1's certificate with ca2's key. The server
	// keeps serving ca2's certificate and says why.
	third := ca1.Server(t, "server3")
	os.WriteFile(certFile+".tmp", third.CertPEM, 0o600)
	os.Rename(certFile+".tmp", certFile)
	future := time.Now().Add(time.Minute)
	os.Chtimes(certFile, future, future)
	// The files are checked on handshakes, at most every 100ms.
	time.Sleep(200 * time.Millisecond)
	tlsGet(s.Addr, &tls.Config{RootCAs: ca2.Pool()})
	if _, err := s.WaitLog("tls: reloading the certificate failed; keeping the previous one", 1, 10*time.Second); err != nil {
		t.Error(err)
	}
	if v, err := tlsGet(s.Addr, &tls.Config{RootCAs: ca2.Pool()}); err != nil || v != "v" {
		t.Errorf("after a broken rotation the last good certificate must stay: %q, %v", v, err)
	}
}

// TestTLSMaxClients: past --maxclients a TLS client gets Redis's error over
// TLS, and a client that opens TCP but never starts its handshake does not
// hold up the others for longer than the rejection's write deadline.
func TestTLSMaxClients(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	srvCert := ca.Server(t, "server")
	s := harness.StartServer(t, "--dataset", smallDataset(t, "k", "v"), "--maxclients", "2",
		"--tls-cert-file", srvCert.CertFile, "--tls-key-file", srvCert.KeyFile)
	cfg := &tls.Config{RootCAs: ca.Pool()}
	dial := func() *tls.Conn {
		c, err := tls.Dial("tcp", s.Addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for range 2 {
		c := dial()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("PING\r\n"))
		b := make([]byte, 16)
		if n, err := c.Read(b); err != nil || string(b[:n]) != "+PONG\r\n" {
			t.Fatalf("PING: %q, %v", b[:n], err)
		}
	}
	// A silent TCP client past the limit.
	silent, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	c := dial()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	b, err := io.ReadAll(c)
	if string(b) != maxClientsErr {
		t.Errorf("a TLS client past maxclients read %q (%v), want %q", b, err, maxClientsErr)
	}
	t.Logf("refused after %v behind a silent client", time.Since(start).Round(time.Millisecond))
	// The refusal runs off the accept loop: the silent client's 1 s
	// rejection deadline must not delay the next client.
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("a client that never starts its TLS handshake held the next one up for %v", d)
	}
}
