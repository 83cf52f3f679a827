// Package swap holds the live dataset version and replaces it atomically.
//
// Readers take a reference to the current version for one command, one
// pipeline batch or one MULTI…EXEC block, and drop it when the reply is
// written; the swap is one atomic pointer store; a replaced version closes when
// its last reader leaves. This is the shape of Pebble's readState: a
// reference count per version, and a count that reached zero never comes back.
package swap

import (
	"sync"
	"sync/atomic"

	"github.com/batchkv/batchkv/internal/store"
)

// Version is an open dataset version shared by readers.
type Version struct {
	// DB is the open database. Valid while the caller holds a reference.
	DB *store.DB

	// refs counts the Current that publishes the version (one reference while
	// live) plus every reader holding it. It reaches zero once, then stays.
	refs   atomic.Int64
	closed chan struct{}
	once   sync.Once
	// onClose runs after DB is closed, with Close's error.
	onClose func(v *Version, err error)
}

// NewVersion wraps an open database. The returned version holds one
// reference, owned by whoever publishes it (normally Current.Swap). onClose,
// if not nil, runs once after the database closes.
func NewVersion(db *store.DB, onClose func(v *Version, err error)) *Version {
	v := &Version{DB: db, closed: make(chan struct{}), onClose: onClose}
	v.refs.Store(1)
	return v
}

// tryRef takes a reference unless the count already reached zero.
func (v *Version) tryRef() bool {
	for {
		n := v.refs.Load()
		if n <= 0 {
			return false
		}
		if v.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Release drops a reference; the last one closes the database.
func (v *Version) Release() {
	if n := v.refs.Add(-1); n == 0 {
		v.once.Do(func() {
			err := v.DB.Close()
			close(v.closed)
			if v.onClose != nil {
				v.onClose(v, err)
			}
		})
	} else if n < 0 {
		panic("swap: Version released more often than acquired")
	}
}

// Closed is closed once the version's database has been closed.
func (v *Version) Closed() <-chan struct{} { return v.closed }

// Refs returns the current number of references (for tests and metrics).
func (v *Version) Refs() int64 { return v.refs.Load() }

// Current is the live version. The zero value holds none.
type Current struct {
	p atomic.Pointer[Version]
}

// Acquire returns the live version with a reference the caller must Release,
// or nil when no version is live yet.
func (c *Current) Acquire() *Version {
	for {
		v := c.p.Load()
		if v == nil {
			return nil
		}
		if v.tryRef() {
			return v
		}
		// v was replaced and its last reader left between Load and tryRef;
		// the pointer already names its successor.
	}
}

// Live reports whether a version is live.
func (c *Current) Live() bool { return c.p.Load() != nil }

// Swap makes v live, taking over the reference NewVersion gave it, and drops
// the reference the previous version held as live. It returns the previous
// version (nil if none), which closes once its last reader releases it; the
// caller must not use it without Acquire-ing it otherwise.
func (c *Current) Swap(v *Version) (previous *Version) {
	old := c.p.Swap(v)
	if old != nil {
		old.Release()
	}
	return old
}

// Close unpublishes the live version and releases it.
func (c *Current) Close() {
	c.Swap(nil)
}
