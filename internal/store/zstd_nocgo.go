//go:build !cgo || pebblegozstd

package store

import "github.com/cockroachdb/pebble/v2/sstable/block"

// zstdData is zstd level 3: without cgo (the static release binaries) Pebble
// uses the pure-Go port, whose level 1 leaves the benchmark dataset at 113-122
// bytes per key and level 3 at 79, for about 25% more build CPU.
var zstdData = block.GoodCompression.DataBlocks
