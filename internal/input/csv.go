package input

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
)

// csvReader reads key,value rows of CSV (or TSV: tab-separated, quoted as
// Spark's CSV writer quotes, so a bare quote inside a field is an error).
// Fields are bytes: CSV has no escape for binary data and needs none.
type csvReader struct {
	f       File
	cr      *csv.Reader
	closer  io.Closer
	header  CSVHeader
	first   bool
	key     []byte
	value   []byte
	started bool
	max     int64 // longest record accepted, in bytes
	line    int64 // the line of the last record read
}

func newCSVReader(f File, r io.Reader, closer io.Closer, opts Options) *csvReader {
	c := &csvReader{f: f, closer: closer, max: int64(opts.maxLine())}
	cr := csv.NewReader(&boundedReader{r: r, c: c})
	if f.Format == FormatTSV {
		cr.Comma = '\t'
	}
	cr.FieldsPerRecord = -1 // checked here, to say how many fields a row has
	cr.ReuseRecord = true
	h := opts.CSVHeader
	if h == "" {
		h = HeaderAuto
	}
	c.cr, c.header = cr, h
	return c
}

// boundedReader stops encoding/csv, which holds a whole record in memory,
// from reading without limit when a record never ends (an unterminated
// quote in a large file would otherwise read the rest of the file into one
// field).
type boundedReader struct {
	r         io.Reader
	c         *csvReader
	delivered int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.delivered-b.c.cr.InputOffset() > b.c.max {
		return 0, &Error{File: b.c.f, Line: b.c.line + 1, Msg: fmt.Sprintf("record longer than %d bytes (an unterminated quote?)", b.c.max)}
	}
	n, err := b.r.Read(p)
	b.delivered += int64(n)
	return n, err
}

// NewCSVParser returns a reader of CSV (tsv false) or TSV text from r, for
// tests and fuzzing; path only names the input in errors.
func NewCSVParser(path string, r io.Reader, tsv bool, header CSVHeader) Reader {
	f := File{Path: path, Format: FormatCSV}
	if tsv {
		f.Format = FormatTSV
	}
	return newCSVReader(f, r, io.NopCloser(nil), Options{CSVHeader: header})
}

func (c *csvReader) Close() error { return c.closer.Close() }

func (c *csvReader) Next(r *Record) error {
	for {
		row, err := c.cr.Read()
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				var ie *Error
				if errors.As(pe.Err, &ie) {
					return ie
				}
				return &Error{File: c.f, Line: int64(pe.Line), Msg: fmt.Sprintf("malformed %s (column %d): %v", c.f.Format, pe.Column, pe.Err)}
			}
			var ie *Error
			if errors.As(err, &ie) {
				return err
			}
			return &Error{File: c.f, Msg: err.Error()}
		}
		line, _ := c.cr.FieldPos(0)
		c.line = int64(line)
		first := !c.started
		c.started = true
		if first && (c.header == HeaderYes || (c.header == HeaderAuto && len(row) == 2 && row[0] == "key" && row[1] == "value")) {
			continue
		}
		if len(row) != 2 {
			return &Error{File: c.f, Line: int64(line), Msg: fmt.Sprintf("want 2 fields (key, value), got %d", len(row))}
		}
		c.key = append(c.key[:0], row[0]...)
		c.value = append(c.value[:0], row[1]...)
		r.Key, r.Kind, r.Value, r.Hash, r.Line = c.key, KindString, c.value, nil, int64(line)
		return nil
	}
}
