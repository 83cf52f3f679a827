//go:build linux && !race

package server

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysRead and sysWrite are read(2) and send(2) of a non-blocking socket:
// they never block, so they skip the runtime's system call bookkeeping.
// MSG_NOSIGNAL: a closed peer is EPIPE, not a signal.

func sysRead(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func sysWrite(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)),
		unix.MSG_NOSIGNAL, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}
