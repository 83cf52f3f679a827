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
}

func newCSVReader(f File, r io.Reader, closer io.Closer, opts Options) *csvReader {
	cr := csv.NewReader(r)
	if f.Format == FormatTSV {
		cr.Comma = '\t'
	}
	cr.FieldsPerRecord = -1 // checked here, to say how many fields a row has
	cr.ReuseRecord = true
	h := opts.CSVHeader
	if h == "" {
		h = HeaderAuto
	}
	return &csvReader{f: f, cr: cr, closer: closer, header: h}
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
