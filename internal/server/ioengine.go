package server

import (
	"fmt"
	"time"

	"go.uber.org/zap"
)

// I/O engines (Config.IO, --io).
const (
	// IOEpoll serves plain TCP connections from event loops (one per
	// GOMAXPROCS) over raw non-blocking sockets and epoll: per ready
	// connection one read, the batch, one write; no goroutine wake-up and no
	// read that finds nothing. Linux only; TLS connections (anything that is
	// not a *net.TCPConn) still get a goroutine each.
	IOEpoll = "epoll"
	// IOGoroutine serves every connection from its own goroutine on Go's
	// net package: portable, and what TLS connections always use.
	IOGoroutine = "goroutine"
)

// resolveIO checks cfg.IO and returns the engine to use ("" means
// DefaultIO).
func resolveIO(io string) (string, error) {
	switch io {
	case "":
		return DefaultIO, nil
	case IOGoroutine:
		return io, nil
	case IOEpoll:
		if !epollSupported {
			return "", fmt.Errorf("%w: --io epoll is only supported on Linux", ErrInvalidConfig)
		}
		return io, nil
	}
	return "", fmt.Errorf("%w: --io %q: want %s or %s", ErrInvalidConfig, io, IOEpoll, IOGoroutine)
}

// runBatchFrom runs c.cmds from index i on, under the acquired version.
// When the output reaches OutputFlushSize it is written out: on the
// goroutine path with a blocking write, on the event loop path as far as the
// socket takes it, and when it does not take it all the rest of the batch
// waits (the loop resumes it from next when the socket drained). It returns
// the index of the first command not run (len(c.cmds) when the batch is
// done) and false when the connection must close.
func (c *conn) runBatchFrom(i int) (next int, ok bool) {
	start := i
	prev := time.Now()
	c.now = prev
	c.lastAt.Store(prev.UnixNano())
	slow := c.s.cfg.SlowlogSlowerThan
	timed := slow >= 0 || c.s.cmdMetrics != nil
	for ; i < len(c.cmds); i++ {
		args := c.cmds[i]
		if testHookCommand != nil {
			testHookCommand(args)
		}
		if c.ep != nil && mayRunLong(c, args) {
			// Off the event loop before it runs (handoff_linux.go).
			c.ep.handOver(c)
		}
		ran := c.dispatch(args)
		if timed {
			now := time.Now()
			d := now.Sub(prev)
			if slow >= 0 && d >= slow {
				c.s.slowlog.add(c, args, d)
			}
			if ran != nil && c.s.cmdMetrics != nil {
				c.s.commandMetrics(ran).Observe(d)
			}
			prev, c.now = now, now
		}
		c.pending.Store(int64(c.w.Len()))
		if c.quit || c.killed.Load() {
			return i + 1, !c.killed.Load()
		}
		if n := c.w.Len(); n >= c.s.cfg.OutputFlushSize {
			if int64(n) > c.s.cfg.OutputBufferLimit {
				c.logger().Warn("closing client over the output buffer limit",
					zap.Int("pending", n), zap.Int64("limit", c.s.cfg.OutputBufferLimit))
				return i + 1, false
			}
			var ok, suspend bool
			if c.ep != nil {
				ok, suspend = c.ep.flush(c)
			} else {
				ok = c.flush()
			}
			if !ok {
				return i + 1, false
			}
			if suspend {
				c.s.stats.commandsProcessed.Add(int64(i + 1 - start))
				return i + 1, true
			}
		}
	}
	c.s.stats.commandsProcessed.Add(int64(i - start))
	return i, true
}

// DefaultIO is --io's default: the event loops where epoll exists (Linux),
// else one goroutine per connection. The loops cost less CPU per request
// and serve more requests per second than goroutines (docs/BENCHMARKS.md),
// and a long command does not stall the other connections of its loop:
// KEYS, a big SCAN and the like leave the loop before they run, and
// anything else still running after stallAfter (a huge hash, a read that
// waits for the disk) has the loop handed over to a new goroutine
// (handoff_linux.go), so the others wait milliseconds, as with goroutines
// (test/hostile).
var DefaultIO = defaultIO()

func defaultIO() string {
	if epollSupported {
		return IOEpoll
	}
	return IOGoroutine
}
