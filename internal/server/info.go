package server

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"syscall"
	"time"

	"github.com/batchkv/batchkv/internal/store"
)

// runID identifies this process, as Redis's run_id.
var runID = func() string {
	var b [20]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

var executable, _ = os.Executable()

// infoDB returns the metadata of the version INFO reports: the batch's, or
// the live one when INFO runs without a version (never while loading).
func (c *conn) infoDB() *store.Meta {
	if c.v != nil {
		return c.v.DB.Meta()
	}
	if v := c.s.cur.Acquire(); v != nil {
		defer v.Release()
		return v.DB.Meta()
	}
	return nil
}

// loadedAt is when the version INFO reports went live, if known.
func (c *conn) loadedAt() string {
	v := c.v
	if v == nil {
		return ""
	}
	c.s.loadedMu.Lock()
	defer c.s.loadedMu.Unlock()
	if c.s.loadedV != v {
		c.s.loadedV = v
		c.s.loadedAt = time.Now()
	}
	return c.s.loadedAt.UTC().Format(time.RFC3339)
}

func cpuInfo(b []byte) []byte {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	tv := func(t syscall.Timeval) string {
		return itoa(int64(t.Sec)) + "." + pad6(int64(t.Usec))
	}
	b = kv(b, "used_cpu_sys", tv(ru.Stime))
	b = kv(b, "used_cpu_user", tv(ru.Utime))
	return b
}

func pad6(n int64) string {
	s := itoa(n)
	for len(s) < 6 {
		s = "0" + s
	}
	return s
}
