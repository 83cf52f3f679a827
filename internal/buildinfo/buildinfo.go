// Package buildinfo carries the version stamped into the binaries at link time.
package buildinfo

// Version is set with -ldflags "-X github.com/batchkv/batchkv/internal/buildinfo.Version=…".
var Version = "dev"
