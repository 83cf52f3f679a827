//go:build linux

package server

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/batchkv/batchkv/internal/resp"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// The epoll engine. Each loop owns a set of connections: it waits on epoll
// (level-triggered), and for each ready connection reads once, runs every
// complete command as batches exactly as the goroutine path does (one
// version per batch, MULTI, limits, slowlog, metrics), and writes the
// replies once. Sockets are raw non-blocking file descriptors taken over
// from the net package at accept, so a request costs one read and one write
// system call and no goroutine wake-up; reads and writes that cannot block
// skip the runtime's system call bookkeeping (RawSyscall).
//
// A reply the socket does not take at once stays in the connection's output
// buffer: the loop then waits for EPOLLOUT instead of EPOLLIN, and a batch
// interrupted by its output reaching OutputFlushSize resumes where it
// stopped once the output drained, still under its version. So the pending
// output of a slow reader stays bounded by OutputFlushSize plus one reply
// (OutputBufferLimit applies as on the goroutine path), and a client that
// makes no progress reading for WriteTimeout is disconnected.
//
// Only the loop touches a connection's descriptor: Close from another
// goroutine (CLIENT KILL, Shutdown) only asks the loop to close it.
//
// A long command (KEYS, a big SCAN, a huge hash, a read that waits for the
// disk) must not stall the loop's other connections: the goroutine running
// it hands the loop over to a new goroutine and finishes that connection's
// buffered input alone, then gives the connection back (handoff_linux.go).

const epollSupported = true

// loopTick is how often a loop checks idle and write timeouts when one of
// them can fire.
const loopTick = 100 * time.Millisecond

// errWouldBlock is a read that found no data.
var errWouldBlock = errors.New("server: read would block")

// fdConn is a net.Conn over a raw non-blocking socket owned by a loop. Only
// Read, Close and the addresses are used.
type fdConn struct {
	fd           int
	laddr, raddr net.Addr
	l            *loop
	closeReq     atomic.Bool
}

func (f *fdConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := sysRead(f.fd, p)
		switch err {
		case nil:
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, errWouldBlock
		}
		return 0, os.NewSyscallError("read", err)
	}
}

// write writes as much of p as the socket takes now.
func (f *fdConn) write(p []byte) (int, error) {
	for {
		n, err := sysWrite(f.fd, p)
		switch err {
		case nil:
			return n, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, nil
		}
		return 0, os.NewSyscallError("write", err)
	}
}

func (f *fdConn) Write(p []byte) (int, error) {
	return 0, errors.New("server: fdConn.Write is not used")
}

// Close asks the loop to close the connection.
func (f *fdConn) Close() error {
	if f.closeReq.CompareAndSwap(false, true) {
		f.l.wake()
	}
	return nil
}

func (f *fdConn) LocalAddr() net.Addr                { return f.laddr }
func (f *fdConn) RemoteAddr() net.Addr               { return f.raddr }
func (f *fdConn) SetDeadline(t time.Time) error      { return nil }
func (f *fdConn) SetReadDeadline(t time.Time) error  { return nil }
func (f *fdConn) SetWriteDeadline(t time.Time) error { return nil }

// epConn is a loop's state of one connection.
type epConn struct {
	fc *fdConn
	// next is the index in c.cmds of the next command of the batch being
	// run (-1: no batch running).
	next int
	// perr is the protocol error found after the running batch.
	perr error
	// readErr is the read error to act on once the batch and its output
	// are done.
	readErr error
	// final: close once the output is written (QUIT, protocol error).
	final bool
	// out: waiting for the socket to take the output (EPOLLOUT).
	out bool
	// woff is how much of the output the socket took: the rest is
	// c.w.Bytes()[woff:].
	woff int
	// stalled is when the output last made no progress; lastRead when data
	// last arrived.
	stalled, lastRead time.Time
	// away: the connection's batch runs on a goroutine the loop was handed
	// over from; the loop does not poll it until it comes back.
	away bool
	// start is the loop's busy mark of the batch running (startBatch).
	start int64
}

// flush writes the pending replies as far as the socket takes them. ok is
// false when the connection must close; suspend true when output is left.
func (ep *epConn) flush(c *conn) (ok, suspend bool) {
	b := c.w.Bytes()[ep.woff:]
	if len(b) == 0 {
		return true, false
	}
	if int64(len(b)) > c.s.cfg.OutputBufferLimit {
		c.logger().Warn("closing client over the output buffer limit",
			zap.Int("pending", len(b)), zap.Int64("limit", c.s.cfg.OutputBufferLimit))
		return false, false
	}
	n, err := ep.fc.write(b)
	c.s.stats.netOutput.Add(int64(n))
	if err != nil {
		if !c.killed.Load() {
			c.logger().Debug("write", zap.Error(err))
		}
		return false, false
	}
	if n == len(b) {
		c.w.Reset()
		ep.woff = 0
		c.pending.Store(0)
		return true, false
	}
	// The rest stays where it is (moving it down would copy a big reply
	// over and over): only a drained output lets the batch go on appending.
	ep.woff += n
	c.pending.Store(int64(len(b) - n))
	if n > 0 || ep.stalled.IsZero() {
		ep.stalled = time.Now()
	}
	return true, true
}

type runState int

const (
	stDone    runState = iota // input consumed, output written
	stSuspend                 // output left: wait for EPOLLOUT
	stClose                   // close the connection
)

// run runs what the read buffer holds, as runBuffered does, resuming a
// batch that waited for the socket.
func (ep *epConn) run(c *conn) runState {
	for {
		if ep.next < 0 {
			if ep.final {
				return stClose
			}
			ep.perr = c.parseBatch()
			if len(c.cmds) > 0 {
				c.v = c.s.cur.Acquire()
				ep.next = 0
			}
		}
		if ep.next >= 0 {
			next, ok := c.runBatchFrom(ep.next)
			if !ok {
				return stClose
			}
			if next < len(c.cmds) && !c.quit {
				ep.next = next
				return stSuspend
			}
			c.releaseVersion()
			ep.next = -1
		}
		if ep.perr != nil {
			c.protocolError(ep.perr)
			c.logger().Info("closing client after protocol error", zap.String(fieldReason, ep.perr.Error()))
			ep.final = true
		}
		if c.quit {
			ep.final = true
		}
		ok, suspend := ep.flush(c)
		switch {
		case !ok:
			return stClose
		case suspend:
			return stSuspend
		case ep.final:
			return stClose
		case len(c.cmds) == 0:
			return stDone
		}
	}
}

// loop is one event loop.
type loop struct {
	s     *Server
	epfd  int
	evfd  int
	woken atomic.Bool

	mu    sync.Mutex
	added []*conn
	back  []handback // connections whose batch finished off the loop
	stop  bool

	// busy is the monotime at which the loop's goroutine started the batch
	// it is running (0: none; -1: that goroutine handed the loop over), and
	// cur that batch's connection (see handoff_linux.go).
	busy      atomic.Int64
	cur       *conn
	lastStart int64
	// handoffs counts the hand-overs.
	handoffs atomic.Int64

	// Owned by the loop goroutine.
	conns map[int32]*conn
	nout  int // connections waiting for EPOLLOUT
	done  chan struct{}
}

func newLoop(s *Server) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return &loop{s: s, epfd: epfd, evfd: evfd, conns: map[int32]*conn{}, done: make(chan struct{})}, nil
}

// wake interrupts the loop's wait.
func (l *loop) wake() {
	if l.woken.Swap(true) {
		return
	}
	one := [8]byte{1}
	unix.Write(l.evfd, one[:])
}

// add hands c to the loop.
func (l *loop) add(c *conn) {
	l.mu.Lock()
	l.added = append(l.added, c)
	l.mu.Unlock()
	l.wake()
}

// shutdown stops the loop (once its connections are gone) and waits.
func (l *loop) shutdown() {
	l.mu.Lock()
	l.stop = true
	l.mu.Unlock()
	l.woken.Store(false)
	l.wake()
	<-l.done
}

// epollWait waits for events. Under load some are always ready: a first
// non-blocking call finds them without handing the P back to the scheduler.
func epollWait(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	if n > 0 || msec == 0 {
		return int(n), nil
	}
	return unix.EpollWait(epfd, events, msec)
}

func (l *loop) run() { l.serve() }

// serve runs the loop until it stops or until this goroutine hands it over
// to another one.
func (l *loop) serve() {
	events := make([]unix.EpollEvent, 128)
	lastTick := time.Now()
	for {
		msec := -1
		if l.nout > 0 || l.s.cfg.IdleTimeout > 0 {
			msec = int(loopTick / time.Millisecond)
		}
		n, err := epollWait(l.epfd, events, msec)
		if err != nil && err != unix.EINTR {
			l.s.log.Error("epoll_wait", zap.Error(err))
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for i := 0; i < n; i++ {
			ev := &events[i]
			if int(ev.Fd) == l.evfd {
				if l.wakeup() {
					unix.Close(l.epfd)
					unix.Close(l.evfd)
					close(l.done)
					return
				}
				continue
			}
			if c := l.conns[ev.Fd]; c != nil && !l.event(c, ev.Events) {
				return // handed over: this goroutine is no longer the loop
			}
		}
		if msec >= 0 {
			if now := time.Now(); now.Sub(lastTick) >= loopTick {
				lastTick = now
				l.tick(now)
			}
		}
	}
}

// wakeup registers new connections, closes those asked to close, and
// reports whether the loop must exit.
func (l *loop) wakeup() (exit bool) {
	l.woken.Store(false)
	var b [8]byte
	unix.Read(l.evfd, b[:])
	l.mu.Lock()
	added, back, stop := l.added, l.back, l.stop
	l.added, l.back = nil, nil
	l.mu.Unlock()
	now := time.Now()
	for _, c := range added {
		fd := c.ep.fc.fd
		c.ep.lastRead = now
		l.conns[int32(fd)] = c
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			c.logger().Warn("epoll_ctl", zap.Error(err))
			l.close(c)
		}
	}
	for _, h := range back {
		l.takeBack(h)
	}
	for _, c := range l.conns {
		if c.ep.fc.closeReq.Load() && !c.ep.away {
			l.close(c)
		}
	}
	if stop {
		for _, c := range l.conns {
			l.close(c)
		}
		return true
	}
	return false
}

// event handles readiness of c. It returns false when this goroutine
// handed the loop over to another one while running c's batch.
func (l *loop) event(c *conn, events uint32) bool {
	ep := c.ep
	if ep.fc.closeReq.Load() {
		l.close(c)
		return true
	}
	if ep.out {
		if events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return true
		}
		ok, suspend := ep.flush(c)
		switch {
		case !ok:
			l.close(c)
		case !suspend:
			l.setOut(c, false)
			return l.resume(c)
		}
		return true
	}
	err := c.rd.Fill()
	if err == errWouldBlock {
		return true
	}
	if errors.Is(err, resp.ErrQueryBufferLimit) {
		c.logger().Warn("closing client that reached the query buffer limit",
			zap.Int64("limit", c.s.cfg.ClientQueryBufferLimit))
		l.close(c)
		return true
	}
	if err == nil && l.s.cfg.IdleTimeout > 0 {
		ep.lastRead = time.Now()
	}
	ep.readErr = err
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		l.close(c)
		return true
	}
	c.busy = true
	c.mu.Unlock()
	return l.resume(c)
}

// resume runs c's buffered input and acts on the outcome. It returns false
// when the loop was handed over meanwhile: c then went back to the loop's
// new goroutine, and this one must leave the loop.
func (l *loop) resume(c *conn) bool {
	start := l.startBatch(c)
	st := c.ep.run(c)
	if !l.busy.CompareAndSwap(start, 0) {
		l.handBack(c, st)
		return false
	}
	l.finish(c, st)
	return true
}

// finish acts on the outcome of running c's input.
func (l *loop) finish(c *conn, st runState) {
	switch st {
	case stClose:
		l.close(c)
		return
	case stSuspend:
		l.setOut(c, true)
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
		l.close(c)
		return
	}
	if err := c.ep.readErr; err != nil {
		c.logReadError(err)
		l.close(c)
	}
}

// setOut switches c between waiting to read and waiting to write.
func (l *loop) setOut(c *conn, out bool) {
	ep := c.ep
	if ep.out == out {
		return
	}
	ep.out = out
	ev := uint32(unix.EPOLLIN)
	if out {
		l.nout++
		ev = unix.EPOLLOUT
	} else {
		l.nout--
		ep.stalled = time.Time{}
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, ep.fc.fd, &unix.EpollEvent{Events: ev, Fd: int32(ep.fc.fd)}); err != nil {
		c.logger().Warn("epoll_ctl", zap.Error(err))
		l.close(c)
	}
}

// tick enforces the write and idle timeouts.
func (l *loop) tick(now time.Time) {
	idle := l.s.cfg.IdleTimeout
	for _, c := range l.conns {
		ep := c.ep
		switch {
		case ep.away:
		case ep.out:
			if now.Sub(ep.stalled) >= l.s.cfg.WriteTimeout {
				c.logger().Warn("closing client that does not read its replies",
					zap.Duration("write_timeout", l.s.cfg.WriteTimeout), zap.Int("pending", c.w.Len()-ep.woff))
				l.close(c)
			}
		case idle > 0 && now.Sub(ep.lastRead) >= idle:
			c.logger().Debug("closing idle client", zap.Duration("timeout", idle))
			l.close(c)
		}
	}
}

// close closes c: only the loop closes a descriptor it serves.
func (l *loop) close(c *conn) {
	ep := c.ep
	fd := ep.fc.fd
	if l.conns[int32(fd)] != c || ep.away {
		return
	}
	delete(l.conns, int32(fd))
	if ep.out {
		l.nout--
		ep.out = false
	}
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	c.releaseVersion()
	c.mu.Lock()
	c.closing = true
	c.busy = false
	c.mu.Unlock()
	ep.fc.closeReq.Store(true)
	unix.Close(fd)
	c.s.removeConn(c)
}

// epollEngine is the server's set of loops.
type epollEngine struct {
	loops []*loop
	next  atomic.Uint32
	// quit stops the watchdog; watched is closed when it returned.
	quit, watched chan struct{}
}

func startEpoll(s *Server, n int) (*epollEngine, error) {
	e := &epollEngine{quit: make(chan struct{}), watched: make(chan struct{})}
	for range n {
		l, err := newLoop(s)
		if err != nil {
			close(e.watched)
			e.stop()
			return nil, err
		}
		e.loops = append(e.loops, l)
		go l.run()
	}
	go e.watch()
	return e, nil
}

func (e *epollEngine) stop() {
	close(e.quit)
	<-e.watched
	for _, l := range e.loops {
		l.shutdown()
	}
}

// detach takes tc's socket over for a loop: the descriptor is duplicated
// (non-blocking, close-on-exec) and tc closed, so Go's poller forgets it.
func (e *epollEngine) detach(tc *net.TCPConn) (*fdConn, error) {
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, os.NewSyscallError("fcntl", derr)
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	fc := &fdConn{fd: nfd, laddr: tc.LocalAddr(), raddr: tc.RemoteAddr()}
	tc.Close()
	fc.l = e.loops[int(e.next.Add(1))%len(e.loops)]
	return fc, nil
}

// attach makes c (over fc) a connection of fc's loop; serveConn then hands
// it over.
func (e *epollEngine) attach(c *conn, fc *fdConn) { c.ep = &epConn{fc: fc, next: -1} }

func (e *epollEngine) serveConn(c *conn, fc *fdConn) { fc.l.add(c) }

// closeUnserved closes a detached socket no loop took.
func closeUnserved(nc net.Conn) {
	if fc, ok := nc.(*fdConn); ok {
		unix.Close(fc.fd)
		return
	}
	nc.Close()
}
