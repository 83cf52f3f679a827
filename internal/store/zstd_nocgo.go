//go:build !cgo || pebblegozstd

package store

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2/sstable/block"
	"github.com/klauspost/compress/zstd"
)

// zstdData is zstd level 3: without cgo (the static release binaries) Pebble
// uses the pure-Go port, whose level 1 leaves the benchmark dataset at 113-122
// bytes per key and level 3 at 79, for about 25% more build CPU.
var zstdData = block.GoodCompression.DataBlocks

// zstdDecoder decodes zstd data blocks. Pebble's pure-Go decompressor builds
// a new decoder (tables, buffers) for every block; one shared decoder, safe
// for concurrent DecodeAll calls, makes a block-cache miss several times
// cheaper (BenchmarkLoadBlock).
var zstdDecoder = func() *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(64<<20))
	if err != nil {
		panic(err)
	}
	return d
}()

// decompress decompresses a block's payload (without trailer) of the given
// compression into dst, which has the decompressed length.
func decompress(ci block.CompressionIndicator, src, dst []byte) error {
	if ci != block.ZstdCompressionIndicator {
		return block.DecompressInto(ci, src, dst)
	}
	// Pebble prefixes the zstd frame with the decompressed length.
	_, n := binary.Uvarint(src)
	if n <= 0 {
		return fmt.Errorf("%w: zstd block length", ErrCorrupt)
	}
	out, err := zstdDecoder.DecodeAll(src[n:], dst[:0])
	if err != nil {
		return fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
	}
	if len(out) != len(dst) || (len(out) > 0 && &out[0] != &dst[0]) {
		return fmt.Errorf("%w: zstd block decompressed to %d bytes, want %d", ErrCorrupt, len(out), len(dst))
	}
	return nil
}
