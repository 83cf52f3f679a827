// Package input reads the records of a dataset from the files a batch job
// (typically Spark) writes: JSON Lines, CSV, TSV and Parquet, plain or
// gzip/zstd/snappy-compressed, as single files or directories of part files.
//
// Every record is a Redis key with either a string value or a hash (an
// ordered list of fields). Readers stream: a Record's slices are valid until
// the next call of Next, so the builder copies what it keeps.
package input

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Format names an input format.
type Format string

const (
	FormatAuto    Format = "auto"
	FormatJSONL   Format = "jsonl"
	FormatCSV     Format = "csv"
	FormatTSV     Format = "tsv"
	FormatParquet Format = "parquet"
)

// ParseFormat validates a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatAuto, FormatJSONL, FormatCSV, FormatTSV, FormatParquet:
		return f, nil
	case "":
		return FormatAuto, nil
	}
	return "", fmt.Errorf("input: unknown format %q (want auto, jsonl, csv, tsv or parquet)", s)
}

// Compression names how a text input file is compressed ("" for none).
type Compression string

const (
	CompressionNone   Compression = ""
	CompressionGzip   Compression = "gzip"
	CompressionZstd   Compression = "zstd"
	CompressionSnappy Compression = "snappy" // Hadoop's SnappyCodec block stream, or the snappy framing format
)

// CSVHeader says whether CSV/TSV inputs start with a header row.
type CSVHeader string

const (
	// HeaderAuto skips a first row that is exactly key,value.
	HeaderAuto CSVHeader = "auto"
	HeaderYes  CSVHeader = "yes"
	HeaderNo   CSVHeader = "no"
)

// ParseCSVHeader validates a --csv-header value.
func ParseCSVHeader(s string) (CSVHeader, error) {
	switch h := CSVHeader(s); h {
	case HeaderAuto, HeaderYes, HeaderNo:
		return h, nil
	case "":
		return HeaderAuto, nil
	}
	return "", fmt.Errorf("input: unknown csv header mode %q (want auto, yes or no)", s)
}

// DefaultMaxLine bounds one JSON Lines line or CSV/TSV record: Redis's
// proto-max-bulk-len, the largest value redis-server accepts.
const DefaultMaxLine = 512 << 20

// Options configure the readers. The zero value is usable.
type Options struct {
	// CSVHeader: default HeaderAuto.
	CSVHeader CSVHeader
	// MaxLine is the longest JSON Lines line or CSV/TSV record accepted, in
	// bytes (default DefaultMaxLine).
	MaxLine int
}

func (o Options) maxLine() int {
	if o.MaxLine <= 0 {
		return DefaultMaxLine
	}
	return o.MaxLine
}

// Kind is the Redis type of a record's value.
type Kind uint8

const (
	KindString Kind = iota + 1
	KindHash
)

// Field is one field of a hash and its value.
type Field struct {
	Name, Value []byte
}

// Record is one key and its value as read from an input. Slices alias the
// reader's buffers and are valid until its next Next call.
type Record struct {
	Key  []byte
	Kind Kind
	// Value is the string's bytes when Kind is KindString.
	Value []byte
	// Hash holds the fields in input order, without duplicate names (a
	// repeated name keeps its first position and its last value, as HSET
	// does), when Kind is KindHash. It is never empty.
	Hash []Field
	// Line is the 1-based line (text formats) or row (Parquet) of the record.
	Line int64
}

// File is one input file and how to read it.
type File struct {
	Path        string
	Format      Format
	Compression Compression
	// Size is the file's size on disk in bytes.
	Size int64
}

// RowBased reports whether positions in f are rows (Parquet) rather than lines.
func (f File) RowBased() bool { return f.Format == FormatParquet }

// Pos formats a position in f for error messages: "a.jsonl:3" or
// "a.parquet: row 3".
func (f File) Pos(line int64) string {
	if f.RowBased() {
		return fmt.Sprintf("%s: row %d", f.Path, line)
	}
	return fmt.Sprintf("%s:%d", f.Path, line)
}

// Error is a problem with the input at a known place.
type Error struct {
	File File
	Line int64 // 0: the file as a whole
	Msg  string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("input: %s: %s", e.File.Path, e.Msg)
	}
	return "input: " + e.File.Pos(e.Line) + ": " + e.Msg
}

// ErrNoInput reports that the inputs named hold no files.
var ErrNoInput = errors.New("input: no input files")

// Reader reads the records of one file.
type Reader interface {
	// Next fills r with the next record; at the end it returns io.EOF.
	Next(r *Record) error
	Close() error
}

// Open opens f for reading. f.Format must be resolved (see Expand).
func Open(f File, opts Options) (Reader, error) {
	switch f.Format {
	case FormatParquet:
		return openParquet(f)
	case FormatJSONL, FormatCSV, FormatTSV:
	default:
		return nil, &Error{File: f, Msg: fmt.Sprintf("unknown format %q", f.Format)}
	}
	osf, err := os.Open(f.Path)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	r, err := decompress(osf, f)
	if err != nil {
		osf.Close()
		return nil, err
	}
	closer := closerFunc(func() error {
		err := r.Close()
		if e := osf.Close(); err == nil {
			err = e
		}
		return err
	})
	if f.Format == FormatJSONL {
		return newJSONLReader(f, r, closer, opts), nil
	}
	return newCSVReader(f, r, closer, opts), nil
}

type closerFunc func() error

func (c closerFunc) Close() error { return c() }

// Expand resolves input paths into the files to read, in input order: the
// paths in the order given, the files of a directory sorted by path. A
// directory is walked recursively (Spark writes partitioned outputs as
// key=value subdirectories); names Spark and Hadoop use for bookkeeping are
// skipped: _SUCCESS and other _* names, hidden .* names and *.crc checksums.
// format is applied to every file; FormatAuto detects each file's format from
// its name or, failing that, its first bytes.
func Expand(paths []string, format Format) ([]File, error) {
	var files []File
	for _, p := range paths {
		if strings.Contains(p, "://") {
			scheme, _, _ := strings.Cut(p, "://")
			if scheme == "s3" {
				return nil, fmt.Errorf("input: %s: s3:// inputs are not supported yet; copy the files to local disk first", p)
			}
			if scheme != "file" {
				return nil, fmt.Errorf("input: %s: unsupported URL scheme %q", p, scheme)
			}
			p = strings.TrimPrefix(p, "file://")
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		if !fi.IsDir() {
			f, err := resolve(p, fi.Size(), format)
			if err != nil {
				return nil, err
			}
			files = append(files, f)
			continue
		}
		var found []File
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if path != p && skipName(d.Name()) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() || !d.Type().IsRegular() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			f, err := resolve(path, info.Size(), format)
			if err != nil {
				return err
			}
			found = append(found, f)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("input: %s: %w", p, err)
		}
		slices.SortFunc(found, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
		files = append(files, found...)
	}
	if len(files) == 0 {
		return nil, ErrNoInput
	}
	return files, nil
}

func skipName(name string) bool {
	return strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".crc")
}

// resolve decides the format and compression of the file at path.
func resolve(path string, size int64, format Format) (File, error) {
	f := File{Path: path, Format: format, Size: size}
	name := strings.ToLower(filepath.Base(path))
	ext := filepath.Ext(name)
	switch ext {
	case ".gz", ".gzip":
		f.Compression = CompressionGzip
	case ".zst", ".zstd":
		f.Compression = CompressionZstd
	case ".snappy":
		f.Compression = CompressionSnappy
	}
	if f.Compression != CompressionNone {
		name = strings.TrimSuffix(name, ext)
		ext = filepath.Ext(name)
	}
	var head [16]byte
	n, err := readHead(path, head[:])
	if err != nil {
		return f, fmt.Errorf("input: %w", err)
	}
	magic := head[:n]
	if f.Compression == CompressionNone {
		f.Compression = sniffCompression(magic)
	}
	if f.Format == FormatAuto || f.Format == "" {
		switch ext {
		case ".json", ".jsonl", ".ndjson":
			f.Format = FormatJSONL
		case ".csv":
			f.Format = FormatCSV
		case ".tsv", ".tab":
			f.Format = FormatTSV
		case ".parquet", ".parq":
			f.Format = FormatParquet
		default:
			if string(magic[:min(4, len(magic))]) == "PAR1" {
				f.Format = FormatParquet
			} else if f.Compression == CompressionNone && len(strings.TrimLeft(string(magic), " \t\r\n")) > 0 && strings.TrimLeft(string(magic), " \t\r\n")[0] == '{' {
				f.Format = FormatJSONL
			} else {
				return f, &Error{File: f, Msg: "cannot tell the format from the file name; name it .jsonl, .csv, .tsv or .parquet, or pass --format"}
			}
		}
	}
	if f.Format == FormatParquet {
		// Parquet compresses inside the file (Spark's *.snappy.parquet).
		f.Compression = CompressionNone
	}
	return f, nil
}

func readHead(path string, b []byte) (int, error) {
	osf, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer osf.Close()
	n, err := io.ReadFull(osf, b)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return n, err
}
