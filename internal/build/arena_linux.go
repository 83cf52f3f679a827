package build

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// arena is memory for a batch's chunks outside the Go heap, mapped once and
// handed out by a bump pointer. On Linux it asks for transparent huge pages:
// a batch's chunks are written at random (a record goes to the bucket of its
// order prefix), and with 4 KiB pages filling a few hundred MiB costs a page
// fault per 4 KiB and a TLB miss on most writes, which was a large part of
// the parse phase's CPU on virtual machines.
type arena struct {
	mapped []byte // the whole mapping
	mem    []byte // its 2 MiB-aligned part
	off    int
}

// arenaOffHeap says arenas live outside the Go heap (so its memory limit
// must leave room for them).
const arenaOffHeap = true

const hugePage = 2 << 20

// newArena reserves size bytes of address space (memory is committed as it
// is touched); nil if the mapping fails, and the caller then uses the heap.
func newArena(size int64) *arena {
	if size <= 0 {
		return nil
	}
	mapped, err := unix.Mmap(-1, 0, int(size)+hugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil
	}
	skip := 0
	if r := uintptr(unsafe.Pointer(&mapped[0])) % hugePage; r != 0 {
		skip = hugePage - int(r)
	}
	mem := mapped[skip : skip+int(size)]
	_ = unix.Madvise(mem, unix.MADV_HUGEPAGE) // a hint: without it, 4 KiB pages
	return &arena{mapped: mapped, mem: mem}
}

// alloc returns an empty slice of capacity n from the arena, or nil when it
// has no room left.
func (a *arena) alloc(n int) []byte {
	if a == nil || len(a.mem)-a.off < n {
		return nil
	}
	b := a.mem[a.off : a.off : a.off+n]
	a.off += n
	return b
}

// size is the bytes of address space the arena holds.
func (a *arena) size() int64 {
	if a == nil {
		return 0
	}
	return int64(len(a.mem))
}

// free unmaps the arena: no slice of it may be used afterwards.
func (a *arena) free() {
	if a == nil || a.mapped == nil {
		return
	}
	unix.Munmap(a.mapped)
	a.mapped, a.mem, a.off = nil, nil, 0
}
