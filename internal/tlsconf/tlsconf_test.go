package tlsconf_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/batchkv/batchkv/internal/tlsconf"
	"github.com/batchkv/batchkv/internal/tlsconf/tlstest"
)

func TestParseClientAuth(t *testing.T) {
	for in, want := range map[string]tlsconf.ClientAuth{"no": tlsconf.ClientAuthNo, "optional": tlsconf.ClientAuthOptional, "YES": tlsconf.ClientAuthYes} {
		if got, err := tlsconf.ParseClientAuth(in); err != nil || got != want {
			t.Errorf("ParseClientAuth(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := tlsconf.ParseClientAuth("maybe"); !errors.Is(err, tlsconf.ErrInvalid) {
		t.Errorf("ParseClientAuth(maybe): %v", err)
	}
}

func TestNewInvalid(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	p := ca.Server(t, "s")
	other := ca.Server(t, "o")
	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte("not pem"), 0o600)
	for name, o := range map[string]tlsconf.Options{
		"no key":          {CertFile: p.CertFile},
		"missing file":    {CertFile: p.CertFile, KeyFile: filepath.Join(dir, "nope")},
		"mismatched key":  {CertFile: p.CertFile, KeyFile: other.KeyFile},
		"auth without CA": {CertFile: p.CertFile, KeyFile: p.KeyFile, ClientAuth: tlsconf.ClientAuthYes},
		"garbage CA":      {CertFile: p.CertFile, KeyFile: p.KeyFile, CAFile: garbage, ClientAuth: tlsconf.ClientAuthYes},
	} {
		if _, err := tlsconf.New(o); !errors.Is(err, tlsconf.ErrInvalid) {
			t.Errorf("%s: New = %v, want ErrInvalid", name, err)
		}
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.Server(t, "one").Install(t, certFile, keyFile)
	r, err := tlsconf.New(tlsconf.Options{CertFile: certFile, KeyFile: keyFile, CAFile: ca.File, ClientAuth: tlsconf.ClientAuthOptional})
	if err != nil {
		t.Fatal(err)
	}
	cn := func() string { return r.Current().Certificates[0].Leaf.Subject.CommonName }
	if cn() != "one" || r.Current().ClientCAs == nil || r.Current().MinVersion != 0x0303 {
		t.Fatalf("first load: cn %s, client CAs %v, min version %x", cn(), r.Current().ClientCAs, r.Current().MinVersion)
	}
	if err := r.Check(); err != nil || r.Reloads() != 0 {
		t.Fatalf("unchanged files: %v, %d reloads", err, r.Reloads())
	}
	ca.Server(t, "two").Install(t, certFile, keyFile)
	if err := r.Check(); err != nil || cn() != "two" || r.Reloads() != 1 {
		t.Fatalf("after rotation: %v, cn %s, %d reloads", err, cn(), r.Reloads())
	}
	// Half a rotation: a new certificate, the old key. Kept, counted once,
	// not retried until a file changes again.
	three := ca.Server(t, "three")
	tlstest.WriteFile(t, certFile, three.CertPEM)
	if err := r.Check(); err == nil || cn() != "two" || r.Failures() != 1 {
		t.Fatalf("mismatched pair: %v, cn %s, %d failures", err, cn(), r.Failures())
	}
	if err := r.Check(); err != nil || r.Failures() != 1 {
		t.Fatalf("unchanged broken files retried: %v, %d failures", err, r.Failures())
	}
	tlstest.WriteFile(t, keyFile, three.KeyPEM)
	if err := r.Check(); err != nil || cn() != "three" || r.Reloads() != 2 {
		t.Fatalf("rotation completed: %v, cn %s, %d reloads", err, cn(), r.Reloads())
	}
}
