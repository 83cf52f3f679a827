// Package tlsconf builds the server side TLS configuration of batchkv-server's
// Redis port from certificate, key and CA files, and reloads them from disk
// without a restart.
//
// Reloading needs no goroutine: at most once per CheckInterval, a TLS
// handshake stats the files (a few microseconds) and, when one changed, loads
// them again. A load that fails (a key that does not match its certificate
// yet, halfway through a rotation; a truncated file) keeps the last good
// configuration, is logged and counted, and is retried at the next check.
// Kubernetes Secret volumes update by swapping a symlink, which os.Stat
// follows, so a rotated Secret is picked up within CheckInterval of the
// kubelet writing it.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ClientAuth says whether clients must present a certificate (Redis's
// tls-auth-clients).
type ClientAuth int

const (
	// ClientAuthNo asks no client certificate.
	ClientAuthNo ClientAuth = iota
	// ClientAuthOptional verifies a client certificate against the CA when
	// the client presents one, and accepts clients without one.
	ClientAuthOptional
	// ClientAuthYes refuses clients without a certificate signed by the CA.
	ClientAuthYes
)

// ParseClientAuth parses Redis's tls-auth-clients values: no, optional, yes.
func ParseClientAuth(s string) (ClientAuth, error) {
	switch strings.ToLower(s) {
	case "no":
		return ClientAuthNo, nil
	case "optional":
		return ClientAuthOptional, nil
	case "yes":
		return ClientAuthYes, nil
	}
	return 0, fmt.Errorf("%w: tls-auth-clients %q: want no, optional or yes", ErrInvalid, s)
}

func (a ClientAuth) String() string {
	switch a {
	case ClientAuthOptional:
		return "optional"
	case ClientAuthYes:
		return "yes"
	}
	return "no"
}

func (a ClientAuth) tls() tls.ClientAuthType {
	switch a {
	case ClientAuthOptional:
		return tls.VerifyClientCertIfGiven
	case ClientAuthYes:
		return tls.RequireAndVerifyClientCert
	}
	return tls.NoClientCert
}

// DefaultCheckInterval is how often, at most, handshakes look for changed
// files.
const DefaultCheckInterval = time.Second

// Options configure a Reloader.
type Options struct {
	// CertFile and KeyFile are the server's PEM certificate (chain) and
	// private key. Required.
	CertFile, KeyFile string
	// CAFile is the PEM bundle client certificates are verified against.
	// Required unless ClientAuth is ClientAuthNo.
	CAFile string
	// ClientAuth: default ClientAuthNo.
	ClientAuth ClientAuth
	// CheckInterval: how often, at most, a handshake stats the files for a
	// change. Default DefaultCheckInterval.
	CheckInterval time.Duration
	// Logger receives reloads and failed reloads. Default: none.
	Logger *zap.Logger
}

// ErrInvalid reports unusable options or files.
var ErrInvalid = errors.New("tlsconf: invalid")

// Reloader holds the current TLS configuration loaded from Options' files.
type Reloader struct {
	opts Options
	cur  atomic.Pointer[tls.Config]

	mu        sync.Mutex // serialises checks
	nextCheck atomic.Int64
	stamps    []stamp // of the files loaded last
	failed    []stamp // of the files that failed to load last

	reloads, failures atomic.Int64
}

// stamp identifies a file's content cheaply.
type stamp struct {
	mod  time.Time
	size int64
}

// New loads the files once (an error if they do not load) and returns the
// Reloader serving them.
func New(opts Options) (*Reloader, error) {
	if opts.CertFile == "" || opts.KeyFile == "" {
		return nil, fmt.Errorf("%w: a certificate file and a key file are both required", ErrInvalid)
	}
	if opts.ClientAuth != ClientAuthNo && opts.CAFile == "" {
		return nil, fmt.Errorf("%w: tls-auth-clients %s needs a CA certificate file", ErrInvalid, opts.ClientAuth)
	}
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = DefaultCheckInterval
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	r := &Reloader{opts: opts}
	st := r.stat()
	cfg, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cur.Store(cfg)
	r.stamps = st
	r.nextCheck.Store(time.Now().Add(opts.CheckInterval).UnixNano())
	return r, nil
}

// Config returns the server configuration to hand to tls.NewListener: every
// handshake gets the current certificate, key and CA pool.
func (r *Reloader) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			r.maybeReload(time.Now())
			return r.cur.Load(), nil
		},
	}
}

// Current returns the configuration loaded last.
func (r *Reloader) Current() *tls.Config { return r.cur.Load() }

// Reloads counts the loads that replaced the configuration after the first;
// Failures the loads that failed (the previous configuration stayed).
func (r *Reloader) Reloads() int64  { return r.reloads.Load() }
func (r *Reloader) Failures() int64 { return r.failures.Load() }

// Check stats the files now and reloads them if one changed; it returns the
// load's error (the previous configuration then stays).
func (r *Reloader) Check() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checkLocked()
}

func (r *Reloader) maybeReload(now time.Time) {
	if now.UnixNano() < r.nextCheck.Load() {
		return
	}
	if !r.mu.TryLock() { // another handshake is checking
		return
	}
	defer r.mu.Unlock()
	r.nextCheck.Store(now.Add(r.opts.CheckInterval).UnixNano())
	r.checkLocked()
}

func (r *Reloader) checkLocked() error {
	st := r.stat()
	if equalStamps(st, r.stamps) || equalStamps(st, r.failed) {
		return nil
	}
	cfg, err := r.load()
	if err != nil {
		// Tried again once a file changes (a rotation in progress writes
		// the missing half).
		r.failed = st
		r.failures.Add(1)
		r.opts.Logger.Error("tls: reloading the certificate failed; keeping the previous one", zap.Error(err))
		return err
	}
	r.cur.Store(cfg)
	r.stamps, r.failed = st, nil
	r.reloads.Add(1)
	leaf := cfg.Certificates[0].Leaf
	r.opts.Logger.Info("tls: certificate reloaded", zap.String("cert_file", r.opts.CertFile),
		zap.String("subject", leaf.Subject.String()), zap.Time("not_after", leaf.NotAfter))
	return nil
}

func (r *Reloader) files() []string {
	f := []string{r.opts.CertFile, r.opts.KeyFile}
	if r.opts.CAFile != "" {
		f = append(f, r.opts.CAFile)
	}
	return f
}

func (r *Reloader) stat() []stamp {
	var st []stamp
	for _, f := range r.files() {
		var s stamp
		if fi, err := os.Stat(f); err == nil {
			s = stamp{mod: fi.ModTime(), size: fi.Size()}
		}
		st = append(st, s)
	}
	return st
}

func equalStamps(a, b []stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].mod.Equal(b[i].mod) || a[i].size != b[i].size {
			return false
		}
	}
	return true
}

// load reads the files into a complete server configuration.
func (r *Reloader) load() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(r.opts.CertFile, r.opts.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate %s, key %s: %v", ErrInvalid, r.opts.CertFile, r.opts.KeyFile, err)
	}
	// LoadX509KeyPair fills Leaf since Go 1.23.
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%w: certificate %s: %v", ErrInvalid, r.opts.CertFile, err)
		}
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   r.opts.ClientAuth.tls(),
	}
	if r.opts.CAFile != "" {
		pem, err := os.ReadFile(r.opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: CA certificate file: %v", ErrInvalid, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: CA certificate file %s holds no PEM certificate", ErrInvalid, r.opts.CAFile)
		}
		cfg.ClientCAs = pool
	}
	return cfg, nil
}
