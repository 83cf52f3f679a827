//go:build linux && race

package server

import "syscall"

// Under the race detector reads and writes go through package syscall,
// whose annotations make a write to a socket happen before the read of it
// (as for the net package's connections); without them a test that changes
// state, sends a request and reads the reply would look racy.

func sysRead(fd int, p []byte) (int, error) { return syscall.Read(fd, p) }

func sysWrite(fd int, p []byte) (int, error) { return syscall.Write(fd, p) }
