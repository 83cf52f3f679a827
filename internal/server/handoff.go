package server

import "strconv"

// Commands an event loop hands off before running them (handoff_linux.go):
// those whose cost grows with the dataset or with an argument rather than
// with the request's size. Anything else that runs long — a huge hash, a
// read that waits for the disk — is caught by the loops' watchdog instead,
// after stallAfter.
const (
	// longArgs: a command with more arguments (MGET of many keys), or an
	// EXEC of more queued commands.
	longArgs = 1024
	// longCount: a SCAN COUNT, CLUSTER GETKEYSINSLOT count or HRANDFIELD
	// count above it.
	longCount = 1000
)

// mayRunLong reports whether args is a command that can run long enough
// to stall the other connections of an event loop.
func mayRunLong(c *conn, args [][]byte) bool {
	if c.multi && !foldEq(args[0], "exec") {
		return false // only queued
	}
	return longCommand(c, args)
}

func longCommand(c *conn, args [][]byte) bool {
	if len(args) > longArgs {
		return true
	}
	name := args[0]
	switch len(name) {
	case 4:
		switch {
		case foldEq(name, "keys"):
			return true
		case foldEq(name, "scan"):
			return len(args) > 2 && countOver(args[2:], longCount)
		case foldEq(name, "exec"):
			if len(c.queue) > longArgs {
				return true
			}
			for _, q := range c.queue {
				if longCommand(c, q) {
					return true
				}
			}
		}
	case 7:
		// CLUSTER COUNTKEYSINSLOT scans a slot; GETKEYSINSLOT up to count.
		if foldEq(name, "cluster") && len(args) > 2 {
			return foldEq(args[1], "countkeysinslot") ||
				foldEq(args[1], "getkeysinslot") && len(args) > 3 && numOver(args[3], longCount)
		}
	case 10:
		// HRANDFIELD key count: |count| fields (repeats when negative).
		return foldEq(name, "hrandfield") && len(args) > 2 && numOver(args[2], longCount)
	}
	return false
}

// countOver reports whether SCAN options opts have a COUNT above n.
func countOver(opts [][]byte, n int64) bool {
	for i := 0; i+1 < len(opts); i++ {
		if foldEq(opts[i], "count") && numOver(opts[i+1], n) {
			return true
		}
	}
	return false
}

// numOver reports whether b is an integer whose absolute value is above n
// (or does not fit an int64).
func numOver(b []byte, n int64) bool {
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		_, err := strconv.ParseFloat(string(b), 64)
		return err == nil // out of range: huge
	}
	return v > n || v < -n
}

// foldEq reports whether b equals the lower-case ASCII s, ignoring case.
func foldEq(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		ch := b[i]
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		if ch != s[i] {
			return false
		}
	}
	return true
}

// testHookCommand, when set by a test, runs before each command of a batch
// (a way to make a command as slow as the test needs).
var testHookCommand func(args [][]byte)
