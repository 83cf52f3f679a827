//go:build linux

package server

import (
	"runtime"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Hand-over. An event loop must not run a long command itself: every other
// connection of the loop would wait for it (head-of-line blocking). Rather
// than move the command, the loop moves: the goroutine about to run a
// command known to be long (mayRunLong), or one the watchdog finds in the
// same batch for stallAfter, stops being the loop. A new goroutine takes
// the loop over — it stops polling the connection and serves the others —
// while the old one, left alone with that connection, finishes running its
// buffered input (the rest of the batch and any batch after it, under the
// versions they acquired, appending the replies in order), then gives the
// connection back to the loop with the outcome (close, wait for the socket
// to take the output, or read on) and exits.
//
// So a connection is only ever run by one goroutine at a time, its replies
// keep their order, and a batch's version is released once, by whichever
// goroutine ends the batch. The loop's state (its connections, epoll
// registrations, timeouts) is only touched by the goroutine that is the
// loop: handing over is a compare-and-swap of busy, and the connection comes
// back through the loop's mailbox.

// stallAfter is how long a batch may run on a loop before the watchdog
// hands the loop over; stallCheck how often the watchdog looks while a loop
// is busy. While every loop is seen idle it looks less and less often, up
// to stallCheckIdle (an idle server should not wake up 200 times a
// second): a stall that begins then is found within stallCheckIdle.
const (
	stallAfter     = 10 * time.Millisecond
	stallCheck     = 5 * time.Millisecond
	stallCheckIdle = 80 * time.Millisecond
)

var monoEpoch = time.Now()

// monotime is the monotonic clock in nanoseconds, > 0.
func monotime() int64 { return int64(time.Since(monoEpoch)) + 1 }

// handback is a connection going back to its loop after running off it.
type handback struct {
	c  *conn
	st runState
}

// startBatch marks the loop busy with c's batch; the start is unique so a
// goroutine that handed the loop over never mistakes a later batch for its
// own.
func (l *loop) startBatch(c *conn) int64 {
	start := max(monotime(), l.lastStart+1)
	l.lastStart = start
	c.ep.start = start
	l.cur = c
	l.busy.Store(start)
	return start
}

// handOver makes another goroutine the loop, now, if this one is still the
// loop running c's batch (a command known to be long is next).
func (ep *epConn) handOver(c *conn) {
	l := ep.fc.l
	if l.busy.CompareAndSwap(ep.start, -1) {
		go l.takeover(c)
		// Let the loop's new goroutine in at once (with one P it would
		// otherwise wait for this one to be preempted).
		runtime.Gosched()
	}
}

// watch is the watchdog: it hands over a loop whose batch has been running
// for stallAfter.
func (e *epollEngine) watch() {
	defer close(e.watched)
	every := stallCheck
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-e.quit:
			return
		case <-t.C:
		}
		now := monotime()
		busy := false
		for _, l := range e.loops {
			b := l.busy.Load()
			busy = busy || b != 0
			if b > 0 && now-b >= int64(stallAfter) && l.busy.CompareAndSwap(b, -1) {
				// The CAS won: the loop's goroutine is still in the batch
				// of b, and l.cur is its connection.
				go l.takeover(l.cur)
			}
		}
		if busy {
			every = stallCheck
		} else {
			every = min(2*every, stallCheckIdle)
		}
		t.Reset(every)
	}
}

// takeover becomes the loop after its previous goroutine left it to run
// c's batch: it stops polling c until c comes back (takeBack).
func (l *loop) takeover(c *conn) {
	l.handoffs.Add(1)
	l.busy.Store(0)
	c.ep.away = true
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.ep.fc.fd, nil); err != nil {
		c.logger().Warn("epoll_ctl", zap.Error(err))
	}
	l.serve()
}

// handBack gives c back to its loop with the outcome of its input; called
// by the goroutine that ran it after handing the loop over.
func (l *loop) handBack(c *conn, st runState) {
	l.mu.Lock()
	l.back = append(l.back, handback{c, st})
	l.mu.Unlock()
	l.wake()
}

// takeBack polls c again and acts on the outcome of its input.
func (l *loop) takeBack(h handback) {
	c := h.c
	ep := c.ep
	ep.away = false
	if h.st == stClose {
		l.close(c)
		return
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, ep.fc.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(ep.fc.fd)}); err != nil {
		c.logger().Warn("epoll_ctl", zap.Error(err))
		l.close(c)
		return
	}
	if ep.readErr == nil && l.s.cfg.IdleTimeout > 0 {
		ep.lastRead = time.Now()
	}
	l.finish(c, h.st)
}
