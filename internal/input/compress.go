package input

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

var (
	gzipMagic          = []byte{0x1f, 0x8b}
	zstdMagic          = []byte{0x28, 0xb5, 0x2f, 0xfd}
	snappyFramingMagic = []byte("\xff\x06\x00\x00sNaPpY")
)

// sniffCompression recognizes a compressed stream by its magic bytes, for
// files whose name does not say. Hadoop's snappy block stream has no magic and
// is only recognized by its .snappy suffix.
func sniffCompression(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return CompressionGzip
	case bytes.HasPrefix(head, zstdMagic):
		return CompressionZstd
	case bytes.HasPrefix(head, snappyFramingMagic):
		return CompressionSnappy
	}
	return CompressionNone
}

// decompress wraps r in the decompressor of f.Compression. Errors of the
// returned reader name the file.
func decompress(r io.Reader, f File) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	switch f.Compression {
	case CompressionNone:
		return io.NopCloser(br), nil
	case CompressionGzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, streamError(f, err)
		}
		return &checkedReader{f: f, r: zr, close: zr.Close}, nil
	case CompressionZstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, streamError(f, err)
		}
		return &checkedReader{f: f, r: zr, close: func() error { zr.Close(); return nil }}, nil
	case CompressionSnappy:
		head, _ := br.Peek(len(snappyFramingMagic))
		if bytes.Equal(head, snappyFramingMagic) {
			return &checkedReader{f: f, r: snappy.NewReader(br), close: func() error { return nil }}, nil
		}
		return &checkedReader{f: f, r: &hadoopSnappyReader{r: br}, close: func() error { return nil }}, nil
	}
	return nil, &Error{File: f, Msg: fmt.Sprintf("unknown compression %q", f.Compression)}
}

// checkedReader turns a decompressor's errors into errors naming the file, so
// that a truncated or corrupt stream is never mistaken for a short input.
type checkedReader struct {
	f     File
	r     io.Reader
	close func() error
	err   error
}

func (c *checkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.err = streamError(c.f, err)
		return n, c.err
	}
	return n, err
}

func (c *checkedReader) Close() error { return c.close() }

func streamError(f File, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{File: f, Msg: fmt.Sprintf("truncated %s stream (the file ends inside compressed data)", f.Compression)}
	}
	var ie *Error
	if errors.As(err, &ie) {
		return err
	}
	return &Error{File: f, Msg: fmt.Sprintf("corrupt %s stream: %v", f.Compression, err)}
}

// maxSnappyBlock bounds one Hadoop snappy block or chunk, so that a corrupt
// length cannot make the reader allocate without limit. Hadoop's codec writes
// blocks of io.compression.codec.snappy.buffersize (256 KiB by default).
const maxSnappyBlock = 64 << 20

// hadoopSnappyReader reads Hadoop's SnappyCodec stream, which Spark writes
// for text outputs: blocks, each a 4-byte big-endian uncompressed length and
// then chunks of a 4-byte big-endian compressed length and raw snappy data,
// until the block's uncompressed length is reached.
type hadoopSnappyReader struct {
	r         io.Reader
	out       []byte // decoded bytes not yet returned
	remaining int    // uncompressed bytes still expected in the current block
	comp      []byte
	dec       []byte
	hdr       [4]byte
}

func (h *hadoopSnappyReader) Read(p []byte) (int, error) {
	for len(h.out) == 0 {
		if err := h.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, h.out)
	h.out = h.out[n:]
	return n, nil
}

func (h *hadoopSnappyReader) fill() error {
	if h.remaining == 0 {
		// A new block: EOF here is the clean end of the stream.
		if _, err := io.ReadFull(h.r, h.hdr[:]); err != nil {
			if err == io.EOF {
				return io.EOF
			}
			return io.ErrUnexpectedEOF
		}
		n := binary.BigEndian.Uint32(h.hdr[:])
		if n > maxSnappyBlock {
			return fmt.Errorf("hadoop snappy block of %d bytes exceeds %d", n, maxSnappyBlock)
		}
		h.remaining = int(n)
		if n == 0 {
			return nil
		}
	}
	if _, err := io.ReadFull(h.r, h.hdr[:]); err != nil {
		return io.ErrUnexpectedEOF
	}
	n := binary.BigEndian.Uint32(h.hdr[:])
	if n > maxSnappyBlock {
		return fmt.Errorf("hadoop snappy chunk of %d bytes exceeds %d", n, maxSnappyBlock)
	}
	if cap(h.comp) < int(n) {
		h.comp = make([]byte, n)
	}
	h.comp = h.comp[:n]
	if _, err := io.ReadFull(h.r, h.comp); err != nil {
		return io.ErrUnexpectedEOF
	}
	dlen, err := snappy.DecodedLen(h.comp)
	if err != nil {
		return err
	}
	if dlen > h.remaining {
		return fmt.Errorf("hadoop snappy chunk decodes to %d bytes, more than the %d left in its block", dlen, h.remaining)
	}
	if cap(h.dec) < dlen {
		h.dec = make([]byte, dlen)
	}
	out, err := snappy.Decode(h.dec[:cap(h.dec)], h.comp)
	if err != nil {
		return err
	}
	h.remaining -= len(out)
	h.out = out
	return nil
}
