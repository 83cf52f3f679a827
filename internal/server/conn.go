package server

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batchkv/batchkv/internal/resp"
	"github.com/batchkv/batchkv/internal/swap"
	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"
)

// conn is one client connection. Its fields are only accessed from its own
// serve goroutine, except those under mu and the atomics (read by CLIENT
// LIST, CLIENT KILL and Shutdown from other goroutines).
type conn struct {
	s  *Server
	nc net.Conn
	id int64

	rd resp.Reader
	w  resp.Writer
	in countingReader // nc, counting the bytes read

	// v is the version acquired for the running batch; nil while loading.
	v *swap.Version

	authed   bool
	multi    bool
	multiErr bool
	queue    [][][]byte // owned copies of the commands queued by MULTI
	queued   int64      // their size, counted against the query buffer limit
	watching bool
	watched  *swap.Version // the live version when WATCH ran
	quit     bool          // close after writing the replies
	cmds     [][][]byte    // the batch being run, reused
	// now is the clock read last in the running batch; writeDeadline the
	// write deadline set on nc.
	now, writeDeadline time.Time
	// it is the batch's Pebble iterator for point lookups (see get);
	// keyBuf the encoded key buffer it seeks with.
	it     *pebble.Iterator
	keyBuf []byte
	// rejecting is the command dispatch is checking (for EXEC's abort).
	rejecting *command
	// ep is the event loop's state of a connection served by the epoll
	// engine; nil on the goroutine path.
	ep *epConn

	created time.Time
	laddr   string
	raddr   string

	mu      sync.Mutex
	busy    bool // running a batch; Shutdown waits for it
	closing bool
	name    string
	libName string
	libVer  string
	proto   atomic.Int32
	lastCmd atomic.Pointer[command] // read by CLIENT LIST of other clients
	lastAt  atomic.Int64            // unix nanos of the last command
	killed  atomic.Bool
	// pending is the size of the output buffer, published for tests and
	// CLIENT LIST (omem).
	pending atomic.Int64
}

// pendingOutput returns the bytes of replies not yet written.
func (c *conn) pendingOutput() int { return int(c.pending.Load()) }

func (s *Server) newConn(nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, id: s.nextID.Add(1), created: time.Now(),
		laddr: nc.LocalAddr().String(), raddr: nc.RemoteAddr().String()}
	c.in = countingReader{nc, &s.stats.netInput}
	c.rd.Reset(&c.in)
	c.rd.MaxBulkLen = s.cfg.ProtoMaxBulkLen
	c.rd.QueryBufferLimit = s.cfg.ClientQueryBufferLimit
	c.w.Proto = 2
	c.proto.Store(2)
	c.authed = s.cfg.RequirePass == ""
	c.lastAt.Store(c.created.UnixNano())
	return c
}

// closeIfIdle closes the connection unless it is running a batch; called by
// Shutdown with s.mu held.
func (c *conn) closeIfIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.busy && !c.closing {
		c.closing = true
		c.nc.Close()
	}
}

func (c *conn) logger() *zap.Logger {
	return c.s.log.With(zap.Int64(fieldID, c.id), zap.String(fieldClient, c.raddr))
}

// serve runs the connection until it closes.
func (c *conn) serve() {
	defer c.s.removeConn(c)
	defer c.nc.Close()
	defer c.releaseVersion()
	for {
		if t := c.s.cfg.IdleTimeout; t > 0 {
			c.nc.SetReadDeadline(time.Now().Add(t))
		}
		err := c.rd.Fill()
		if errors.Is(err, resp.ErrQueryBufferLimit) {
			c.logger().Warn("closing client that reached the query buffer limit",
				zap.Int64("limit", c.s.cfg.ClientQueryBufferLimit))
			return
		}
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			return
		}
		c.busy = true
		c.mu.Unlock()
		if !c.runBuffered() {
			return
		}
		c.mu.Lock()
		c.busy = false
		closing := c.closing || c.s.isClosing()
		if closing {
			c.closing = true
		}
		c.mu.Unlock()
		if closing {
			return
		}
		if err != nil {
			c.logReadError(err)
			return
		}
	}
}

// logReadError logs why a read ended the connection.
func (c *conn) logReadError(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	case errors.As(err, &ne) && ne.Timeout() && !c.killed.Load():
		c.logger().Debug("closing idle client", zap.Duration("timeout", c.s.cfg.IdleTimeout))
	default:
		if !c.killed.Load() {
			c.logger().Debug("read", zap.Error(err))
		}
	}
}

// runBuffered runs every complete command in the read buffer, batch by
// batch, and writes the replies. It returns false when the connection must
// close.
func (c *conn) runBuffered() bool {
	for {
		perr := c.parseBatch()
		if len(c.cmds) > 0 {
			if !c.runBatch() {
				return false
			}
		}
		if perr != nil {
			c.protocolError(perr)
			c.flush()
			c.logger().Info("closing client after protocol error", zap.String(fieldReason, perr.Error()))
			return false
		}
		if len(c.cmds) == 0 || c.quit {
			ok := c.flush() && !c.quit
			return ok
		}
		if !c.flush() {
			return false
		}
	}
}

// parseBatch sets c.cmds to the next batch: every complete command in the
// read buffer. A protocol error ends the batch; it is returned, to be
// answered after the batch ran.
func (c *conn) parseBatch() error {
	c.cmds = c.cmds[:0]
	for {
		// Before authentication Redis applies tighter parse limits, and
		// AUTH may lift them: parse one command at a time until then.
		c.rd.Unauthenticated = !c.authed
		if !c.authed && len(c.cmds) > 0 {
			return nil
		}
		args, ok, err := c.rd.Next()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		c.cmds = append(c.cmds, args)
	}
}

// protocolError answers a protocol error before the connection closes.
func (c *conn) protocolError(perr error) {
	if m := c.s.cfg.Metrics; m != nil {
		m.ProtocolError()
	}
	c.w.Error("ERR " + perr.Error())
}

// runBatch runs c.cmds under one acquired version.
func (c *conn) runBatch() bool {
	c.v = c.s.cur.Acquire()
	defer c.releaseVersion()
	_, ok := c.runBatchFrom(0)
	return ok
}

func (c *conn) releaseVersion() {
	c.closeIter()
	if c.v != nil {
		c.v.Release()
		c.v = nil
	}
}

// flush writes the pending replies. It returns false when the connection
// failed and must close.
func (c *conn) flush() bool {
	b := c.w.Bytes()
	if len(b) == 0 {
		return true
	}
	if int64(len(b)) > c.s.cfg.OutputBufferLimit {
		c.logger().Warn("closing client over the output buffer limit",
			zap.Int("pending", len(b)), zap.Int64("limit", c.s.cfg.OutputBufferLimit))
		return false
	}
	c.pending.Store(int64(len(b)))
	// Moving the deadline costs a timer update: refresh it only when it
	// fell behind by a quarter of the timeout (at most a second), so a write
	// always has at least 3/4 of WriteTimeout.
	slack := min(c.s.cfg.WriteTimeout/4, time.Second)
	if want := c.now.Add(c.s.cfg.WriteTimeout); c.now.IsZero() || want.Sub(c.writeDeadline) > slack {
		if c.now.IsZero() {
			want = time.Now().Add(c.s.cfg.WriteTimeout)
		}
		c.writeDeadline = want
		c.nc.SetWriteDeadline(want)
	}
	n, err := c.nc.Write(b)
	c.s.stats.netOutput.Add(int64(n))
	c.w.Reset()
	c.pending.Store(0)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.logger().Warn("closing client that does not read its replies",
				zap.Duration("write_timeout", c.s.cfg.WriteTimeout), zap.Int("pending", len(b)-n))
		} else if !c.killed.Load() {
			c.logger().Debug("write", zap.Error(err))
		}
		return false
	}
	return true
}

// recoverCommand turns a panic in a command into an error reply and a log
// line: one bad command must not take the process down. The partial reply
// is dropped.
func (c *conn) recoverCommand(mark int, args [][]byte) {
	if r := recover(); r != nil {
		name := ""
		if len(args) > 0 {
			name = string(args[0])
		}
		c.logger().Error("panic in command", zap.String("command", name), zap.Any("panic", r),
			zap.ByteString("stack", debug.Stack()))
		c.w.Truncate(mark)
		c.w.Error("ERR internal error")
	}
}

// countingReader counts the bytes read from a connection (one atomic add
// per read, not per command).
type countingReader struct {
	nc net.Conn
	n  *atomic.Int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.nc.Read(p)
	r.n.Add(int64(n))
	return n, err
}
