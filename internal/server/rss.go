package server

import (
	"bytes"
	"os"
	"strconv"
)

// residentBytes returns the process's resident set size from
// /proc/self/statm, or fallback where that cannot be read (not Linux).
func residentBytes(fallback int64) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return fallback
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return fallback
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return fallback
	}
	return pages * int64(os.Getpagesize())
}
