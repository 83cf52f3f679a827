//go:build !linux

package build

// arena is a no-op outside Linux: chunks come from the Go heap.
type arena struct{}

const arenaOffHeap = false

func newArena(size int64) *arena    { return nil }
func (a *arena) alloc(n int) []byte { return nil }
func (a *arena) size() int64        { return 0 }
func (a *arena) free()              {}
