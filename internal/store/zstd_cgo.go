//go:build cgo && !pebblegozstd

package store

import "github.com/cockroachdb/pebble/v2/sstable/block"

// zstdData is zstd level 1: with cgo Pebble links the C library, whose level
// 1 already compresses the benchmark dataset to 75 bytes per key.
var zstdData = block.BalancedCompression.DataBlocks
