// Package server is batchkv-server's Redis protocol front end: connection
// handling, limits, and the read-only commands over the live dataset version.
//
// A connection's input is served batch by batch: read what is available,
// parse every complete command in the buffer, acquire the live version once
// for the whole batch, run the batch appending replies to one output buffer,
// release the version and write once. So every read of one command, one
// pipeline batch and one MULTI…EXEC block sees one version (SPEC §2), and a
// pipeline costs one syscall per batch. By default (Linux) plain TCP
// connections are served by event loops (epoll_linux.go, with long commands
// run off the loop by handoff_linux.go); with --io goroutine, and for TLS,
// each connection has its own goroutine (conn.go's serve).
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batchkv/batchkv/internal/metrics"
	"github.com/batchkv/batchkv/internal/swap"
	"go.uber.org/zap"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("server: closed")

// Log field keys.
const (
	fieldAddr   = "addr"
	fieldClient = "client"
	fieldID     = "id"
	fieldReason = "reason"
)

// Server serves the Redis protocol over the live dataset version. Its shape
// follows net/http's Server: New, Serve(listener), Shutdown(ctx), Close.
type Server struct {
	cfg   Config
	cur   *swap.Current
	log   *zap.Logger
	start time.Time
	stats Stats

	nextID atomic.Int64
	// nconns counts open connections (for maxclients) without the lock.
	nconns atomic.Int64

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   bool
	// inShutdown mirrors closing for readers that must not take mu.
	inShutdown atomic.Bool
	wg         sync.WaitGroup // one per connection goroutine

	slowlog slowlog

	// io is the resolved I/O engine; ep its loops once Serve started them
	// (nil: every connection gets a goroutine).
	io string
	ep *epollEngine

	// cmdMetrics holds each command's metric series by command.idx,
	// resolved on first use; nil without Config.Metrics.
	cmdMetrics []atomic.Pointer[metrics.Command]

	// loadedAt is when INFO first saw loadedV live (an approximation of
	// when it was swapped in, until the swapper reports it).
	loadedMu sync.Mutex
	loadedV  *swap.Version
	loadedAt time.Time
}

// Stats are the server's counters for INFO.
type Stats struct {
	connectionsReceived atomic.Int64
	commandsProcessed   atomic.Int64
	rejectedConns       atomic.Int64
	netInput            atomic.Int64
	netOutput           atomic.Int64
	keyspaceHits        atomic.Int64
	keyspaceMisses      atomic.Int64
	errorReplies        atomic.Int64
}

// New returns a server over cur's live version. cfg is completed with its
// defaults; an invalid cfg is an error.
func New(cfg Config, cur *swap.Current, log *zap.Logger) (*Server, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	io, err := resolveIO(cfg.IO)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{
		cfg:       cfg,
		cur:       cur,
		log:       log,
		start:     time.Now(),
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
		io:        io,
	}
	s.slowlog.maxLen = cfg.SlowlogMaxLen
	if cfg.Metrics != nil {
		s.cmdMetrics = make([]atomic.Pointer[metrics.Command], numCommands)
	}
	return s, nil
}

// Config returns the server's configuration with defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Serve accepts connections on ln until Shutdown or Close, and then returns
// ErrServerClosed. It closes ln when it returns.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	if s.io == IOEpoll && s.ep == nil {
		ep, err := startEpoll(s, runtime.GOMAXPROCS(0))
		if err != nil {
			s.log.Warn("epoll unavailable: serving each connection from a goroutine", zap.Error(err))
			s.io = IOGoroutine
		}
		s.ep = ep
	}
	ep := s.ep
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	s.log.Info("listening", zap.String(fieldAddr, ln.Addr().String()))
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTemporary(err)) {
				// Back off on transient accept errors (EMFILE...) as net/http.
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else if delay *= 2; delay > time.Second {
					delay = time.Second
				}
				s.log.Warn("accept", zap.Error(err), zap.Duration("retry_in", delay))
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("server: accept: %w", err)
		}
		delay = 0
		s.stats.connectionsReceived.Add(1)
		if s.nconns.Load() >= int64(s.cfg.MaxClients) {
			s.stats.rejectedConns.Add(1)
			s.log.Warn("max number of clients reached", zap.String(fieldClient, nc.RemoteAddr().String()))
			// Off the accept loop: over TLS the write first runs the
			// handshake, and a client that never answers it would stall
			// every new connection for the deadline (test/hostile). Each
			// such goroutine lives at most that second.
			go func() {
				nc.SetDeadline(time.Now().Add(time.Second))
				nc.Write([]byte("-ERR max number of clients reached\r\n"))
				nc.Close()
			}()
			continue
		}
		// Plain TCP connections go to an event loop; anything else (TLS)
		// gets a goroutine.
		var fc *fdConn
		if tc, ok := nc.(*net.TCPConn); ok && ep != nil {
			if fc, err = ep.detach(tc); err != nil {
				s.log.Warn("taking over a connection for the event loop", zap.Error(err))
				tc.Close()
				continue
			}
			nc = fc
		}
		c := s.newConn(nc)
		if fc != nil {
			ep.attach(c, fc)
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			closeUnserved(nc)
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.nconns.Add(1)
		s.wg.Add(1)
		s.mu.Unlock()
		if fc != nil {
			ep.serveConn(c, fc)
			continue
		}
		go c.serve()
	}
}

// errTemporary matches accept errors worth retrying: resource exhaustion
// (EMFILE, ENFILE, ENOBUFS) shows up as a net.OpError without Timeout.
func errTemporary(err error) error {
	type temporary interface{ Temporary() bool }
	var t temporary
	if errors.As(err, &t) && t.Temporary() {
		return err
	}
	return errNever
}

var errNever = errors.New("never")

// isClosing reports whether Shutdown or Close began. It takes no lock:
// connections call it while holding their own mutex, and Shutdown holds s.mu
// while taking theirs.
func (s *Server) isClosing() bool { return s.inShutdown.Load() }

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.nconns.Add(-1)
	s.wg.Done()
}

// Shutdown stops the server gracefully: it closes the listeners, closes idle
// connections, lets every connection that is running a batch finish it and
// write its replies, then closes it. It returns when all connections are
// closed, or ctx's error when ctx ends first (remaining connections are then
// closed forcibly). Serve returns ErrServerClosed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.inShutdown.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.closeIdle()
		select {
		case <-done:
			s.stopLoops()
			return nil
		case <-ctx.Done():
			s.closeAll()
			<-done
			s.stopLoops()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing = true
	s.inShutdown.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	s.closeAll()
	s.wg.Wait()
	s.stopLoops()
	return nil
}

// stopLoops stops the event loops once every connection is closed.
func (s *Server) stopLoops() {
	s.mu.Lock()
	ep := s.ep
	s.ep = nil
	s.mu.Unlock()
	if ep != nil {
		ep.stop()
	}
}

func (s *Server) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.closeIfIdle()
	}
}

func (s *Server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.nc.Close()
	}
}

// clients returns a snapshot of the open connections.
func (s *Server) clients() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}
