//go:build cgo && !pebblegozstd

package store

import "github.com/cockroachdb/pebble/v2/sstable/block"

// zstdData is zstd level 1: with cgo Pebble links the C library, whose level
// 1 already compresses the benchmark dataset to 75 bytes per key.
var zstdData = block.BalancedCompression.DataBlocks

// decompress decompresses a block's payload (without trailer) of the given
// compression into dst, which has the decompressed length. With cgo Pebble's
// zstd decompressor reuses pooled C contexts, so it is used as it is.
func decompress(ci block.CompressionIndicator, src, dst []byte) error {
	return block.DecompressInto(ci, src, dst)
}
