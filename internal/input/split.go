package input

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
)

// Splittable reports whether f can be read in byte ranges by OpenRange:
// uncompressed JSON Lines, whose records never span lines. (A CSV field may
// hold a quoted newline, and compressed streams cannot be entered midway.)
func Splittable(f File) bool {
	return f.Format == FormatJSONL && f.Compression == CompressionNone
}

// OpenRange opens the lines of a Splittable file that start at byte offsets
// in [start, end). Ranges that tile the file read each line exactly once, so
// one large file can be parsed by several workers. Records and errors are
// numbered by line within the range, from 1; LineBase converts.
func OpenRange(f File, start, end int64, opts Options) (Reader, error) {
	if !Splittable(f) {
		return nil, &Error{File: f, Msg: "cannot be read in ranges"}
	}
	osf, err := os.Open(f.Path)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	from := max(start-1, 0)
	if _, err := osf.Seek(from, io.SeekStart); err != nil {
		osf.Close()
		return nil, fmt.Errorf("input: %w", err)
	}
	br := bufio.NewReaderSize(osf, 1<<20)
	if start > 0 {
		// The line that holds byte start-1 belongs to the previous range
		// (it starts before start): skip through its newline.
		for {
			b, err := br.ReadSlice('\n')
			from += int64(len(b))
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				osf.Close()
				return nil, &Error{File: f, Msg: err.Error()}
			}
			break
		}
	}
	j := newJSONLReader(f, br, osf, opts)
	j.limit = end - from
	if j.limit <= 0 {
		j.limit, j.off = 1, 1 // nothing starts in the range
	}
	return j, nil
}

// LineBase returns the number of lines of f before the first line that
// OpenRange(f, start, …) reads: add it to a line number within that range.
// It reads the file up to start, so it is for error messages, not hot paths.
func LineBase(f File, start int64) (int64, error) {
	if start <= 0 {
		return 0, nil
	}
	osf, err := os.Open(f.Path)
	if err != nil {
		return 0, fmt.Errorf("input: %w", err)
	}
	defer osf.Close()
	buf := make([]byte, 1<<20)
	var n int64
	r := io.LimitReader(osf, start-1)
	for {
		m, err := r.Read(buf)
		n += int64(bytes.Count(buf[:m], []byte{'\n'}))
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("input: %w", err)
		}
	}
	// The line straddling start-1 ends with a newline at or after it, unless
	// it is the file's last line (then the range reads nothing).
	return n + 1, nil
}
