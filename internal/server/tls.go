package server

import (
	"context"
	"crypto/tls"
	"flag"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batchkv/batchkv/internal/cli"
	"github.com/batchkv/batchkv/internal/tlsconf"
	"go.uber.org/zap"
)

// tlsOptions are batchkv-server's TLS flags for the Redis port.
//
// TLS, when configured, is on --addr itself: the port then speaks only TLS
// (no plaintext fallback to downgrade to). The certificate, key and CA files
// are re-read when they change, without a restart (see package tlsconf).
type tlsOptions struct {
	certFile, keyFile, caFile string
	authClients               string
	reloadInterval            time.Duration
	handshakeTimeout          time.Duration
}

// DefaultTLSHandshakeTimeout bounds a client's TLS handshake.
const DefaultTLSHandshakeTimeout = 10 * time.Second

func (o *tlsOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.certFile, "tls-cert-file", "", "PEM certificate (chain) of the Redis port: serve TLS on --addr (reloaded when the file changes)")
	fs.StringVar(&o.keyFile, "tls-key-file", "", "PEM private key of --tls-cert-file")
	fs.StringVar(&o.caFile, "tls-ca-cert-file", "", "PEM CA bundle client certificates are verified against")
	fs.StringVar(&o.authClients, "tls-auth-clients", "", "client certificates: no, optional (verified if given) or yes (required); default yes with --tls-ca-cert-file, else no")
	fs.DurationVar(&o.reloadInterval, "tls-reload-interval", tlsconf.DefaultCheckInterval, "how often, at most, a handshake checks the TLS files for a change")
	fs.DurationVar(&o.handshakeTimeout, "tls-handshake-timeout", DefaultTLSHandshakeTimeout, "close a client that has not completed its TLS handshake in this time")
}

// wrap returns ln serving TLS when it is configured, else ln itself.
func (o *tlsOptions) wrap(ln net.Listener, log *zap.Logger) (net.Listener, error) {
	if o.certFile == "" && o.keyFile == "" && o.caFile == "" && o.authClients == "" {
		return ln, nil
	}
	if o.certFile == "" || o.keyFile == "" {
		ln.Close()
		return nil, cli.UsageError("TLS needs both --tls-cert-file and --tls-key-file")
	}
	if o.handshakeTimeout <= 0 {
		ln.Close()
		return nil, cli.UsageError("--tls-handshake-timeout must be positive")
	}
	auth := tlsconf.ClientAuthNo
	if o.caFile != "" {
		auth = tlsconf.ClientAuthYes
	}
	if o.authClients != "" {
		var err error
		if auth, err = tlsconf.ParseClientAuth(o.authClients); err != nil {
			ln.Close()
			return nil, cli.UsageError("--tls-auth-clients: want no, optional or yes")
		}
	}
	log = log.Named("tls")
	r, err := tlsconf.New(tlsconf.Options{CertFile: o.certFile, KeyFile: o.keyFile, CAFile: o.caFile,
		ClientAuth: auth, CheckInterval: o.reloadInterval, Logger: log})
	if err != nil {
		ln.Close()
		return nil, err
	}
	leaf := r.Current().Certificates[0].Leaf
	log.Info("serving TLS", zap.String("cert_file", o.certFile), zap.String("subject", leaf.Subject.String()),
		zap.Time("not_after", leaf.NotAfter), zap.Stringer("auth_clients", auth))
	return &tlsListener{Listener: ln, cfg: r.Config(), timeout: o.handshakeTimeout, log: log}, nil
}

// tlsListener is tls.NewListener whose connections bound their handshake.
type tlsListener struct {
	net.Listener
	cfg     *tls.Config
	timeout time.Duration
	log     *zap.Logger
}

func (l *tlsListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsConn{Conn: tls.Server(nc, l.cfg), l: l}, nil
}

// tlsConn runs the handshake on first use (in the connection's goroutine,
// not the accept loop), within the handshake timeout or an earlier deadline
// the server set, and logs a failed one.
type tlsConn struct {
	*tls.Conn
	l    *tlsListener
	done atomic.Bool

	mu       sync.Mutex
	deadline time.Time // earliest read/write deadline set before the handshake
	err      error
}

func (c *tlsConn) handshake() error {
	if c.done.Load() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done.Load() || c.err != nil {
		return c.err
	}
	dl := time.Now().Add(c.l.timeout)
	if !c.deadline.IsZero() && c.deadline.Before(dl) {
		dl = c.deadline
	}
	ctx, cancel := context.WithDeadline(context.Background(), dl)
	err := c.Conn.HandshakeContext(ctx)
	cancel()
	if err != nil {
		c.err = err
		c.l.log.Info("TLS handshake failed", zap.String(fieldClient, c.RemoteAddr().String()), zap.Error(err))
		return err
	}
	c.done.Store(true)
	return nil
}

func (c *tlsConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *tlsConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

func (c *tlsConn) noteDeadline(t time.Time) {
	if c.done.Load() || t.IsZero() {
		return
	}
	c.mu.Lock()
	if c.deadline.IsZero() || t.Before(c.deadline) {
		c.deadline = t
	}
	c.mu.Unlock()
}

func (c *tlsConn) SetDeadline(t time.Time) error {
	c.noteDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *tlsConn) SetReadDeadline(t time.Time) error {
	c.noteDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

func (c *tlsConn) SetWriteDeadline(t time.Time) error {
	c.noteDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}
