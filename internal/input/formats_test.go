package input

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
)

const sampleJSONL = `{"key":"a","value":"1"}
{"key":"b","hash":{"f":"x","e":"y"}}
{"key":"c","value":3}
`

var sampleWant = []string{"a=1", "b{f=x,e=y}", "c=3"}

func gzipBytes(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBytes(t *testing.T, b []byte) []byte {
	w, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return w.EncodeAll(b, nil)
}

// hadoopSnappy encodes b as Hadoop's SnappyCodec block stream, with blocks
// of blockSize bytes each split into two chunks, as BlockCompressorStream
// writes when its buffer fills.
func hadoopSnappy(b []byte, blockSize int) []byte {
	var out []byte
	for len(b) > 0 {
		n := min(blockSize, len(b))
		block := b[:n]
		b = b[n:]
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		half := len(block) / 2
		for _, chunk := range [][]byte{block[:half], block[half:]} {
			if len(chunk) == 0 {
				continue
			}
			enc := snappy.Encode(nil, chunk)
			out = binary.BigEndian.AppendUint32(out, uint32(len(enc)))
			out = append(out, enc...)
		}
	}
	return out
}

func snappyFramed(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := snappy.NewBufferedWriter(&buf)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCompressedJSONL(t *testing.T) {
	tests := []struct {
		name   string
		data   []byte
		format Format
		comp   Compression
	}{
		{"part-00000.jsonl.gz", gzipBytes(t, []byte(sampleJSONL)), FormatAuto, CompressionGzip},
		{"part-00000.json.zst", zstdBytes(t, []byte(sampleJSONL)), FormatAuto, CompressionZstd},
		{"part-00000.json.zstd", zstdBytes(t, []byte(sampleJSONL)), FormatAuto, CompressionZstd},
		{"part-00000.json.snappy", hadoopSnappy([]byte(sampleJSONL), 20), FormatAuto, CompressionSnappy},
		{"part-00001.json.snappy", snappyFramed(t, []byte(sampleJSONL)), FormatAuto, CompressionSnappy},
		// No compression suffix: the magic bytes tell.
		{"sniffed-gzip.jsonl", gzipBytes(t, []byte(sampleJSONL)), FormatAuto, CompressionGzip},
		{"sniffed-zstd.jsonl", zstdBytes(t, []byte(sampleJSONL)), FormatAuto, CompressionZstd},
		{"part-00002", gzipBytes(t, []byte(sampleJSONL)), FormatJSONL, CompressionGzip},
		{"part-00003", []byte(sampleJSONL), FormatAuto, CompressionNone}, // a '{' first: JSON Lines
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), tt.name, tt.data)
			files, err := Expand([]string{p}, tt.format)
			if err != nil {
				t.Fatal(err)
			}
			if files[0].Compression != tt.comp || files[0].Format != FormatJSONL {
				t.Fatalf("resolved %+v, want jsonl + %q", files[0], tt.comp)
			}
			got, _, err := readAll(t, p, tt.format, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, sampleWant) {
				t.Fatalf("got %q, want %q", got, sampleWant)
			}
		})
	}
}

func TestCompressedLarge(t *testing.T) {
	// Many blocks and more than the readers' buffers.
	var b strings.Builder
	for i := range 20000 {
		b.WriteString(`{"key":"k` + strings.Repeat("x", i%50) + `","value":"` + strings.Repeat("v", i%300) + `"}` + "\n")
	}
	data := []byte(b.String())
	for name, enc := range map[string][]byte{
		"a.jsonl.gz":     gzipBytes(t, data),
		"a.jsonl.zst":    zstdBytes(t, data),
		"a.jsonl.snappy": hadoopSnappy(data, 256<<10),
		"b.jsonl.snappy": snappyFramed(t, data),
	} {
		p := writeFile(t, t.TempDir(), name, enc)
		got, _, err := readAll(t, p, FormatAuto, Options{})
		if err != nil || len(got) != 20000 {
			t.Fatalf("%s: %d records, %v", name, len(got), err)
		}
	}
}

func TestTruncatedCompression(t *testing.T) {
	data := []byte(strings.Repeat(sampleJSONL, 2000))
	tests := []struct {
		name, want string
		data       []byte
	}{
		{"t.jsonl.gz", "truncated gzip stream", gzipBytes(t, data)},
		{"t.jsonl.zst", "zstd", zstdBytes(t, data)},
		{"t.jsonl.snappy", "truncated snappy stream", hadoopSnappy(data, 4096)},
		{"u.jsonl.snappy", "snappy stream", snappyFramed(t, data)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), tt.name, tt.data[:len(tt.data)*2/3])
			got, _, err := readAll(t, p, FormatAuto, Options{})
			if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("after %d records: err = %v, want one naming %s and %q", len(got), err, p, tt.want)
			}
		})
	}
	// A corrupt Hadoop block length is an error, not a huge allocation.
	p := writeFile(t, t.TempDir(), "c.json.snappy", []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1})
	if _, _, err := readAll(t, p, FormatAuto, Options{}); err == nil || !strings.Contains(err.Error(), "corrupt snappy stream") {
		t.Fatalf("corrupt block length: %v", err)
	}
}

func TestCSV(t *testing.T) {
	tests := []struct {
		name, data string
		header     CSVHeader
		want       []string
		lines      []int64
	}{
		{"a.csv", "k1,v1\nk2,\"v, with comma\"\n\"k3\",\"multi\nline\"\nk4,\n", HeaderAuto,
			[]string{"k1=v1", "k2=v, with comma", "k3=multi\nline", "k4="}, []int64{1, 2, 3, 5}},
		{"h.csv", "key,value\nk1,v1\n", HeaderAuto, []string{"k1=v1"}, []int64{2}},
		{"h2.csv", "key,value\nk1,v1\n", HeaderNo, []string{"key=value", "k1=v1"}, []int64{1, 2}},
		{"h3.csv", "id,count\nk1,v1\n", HeaderYes, []string{"k1=v1"}, []int64{2}},
		{"h4.csv", "id,count\nk1,v1\n", HeaderAuto, []string{"id=count", "k1=v1"}, []int64{1, 2}},
		{"a.tsv", "k1\tv1\nk2\t\"quoted\tvalue\"\n", HeaderAuto, []string{"k1=v1", "k2=quoted\tvalue"}, []int64{1, 2}},
		{"crlf.csv", "k1,v1\r\nk2,v2\r\n", HeaderAuto, []string{"k1=v1", "k2=v2"}, []int64{1, 2}},
		{"gz.csv.gz", "", HeaderAuto, sampleWant[:0], nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.data)
			if strings.HasSuffix(tt.name, ".gz") {
				data = gzipBytes(t, []byte("x,1\ny,2\n"))
				tt.want, tt.lines = []string{"x=1", "y=2"}, []int64{1, 2}
			}
			p := writeFile(t, t.TempDir(), tt.name, data)
			got, lines, err := readAll(t, p, FormatAuto, Options{CSVHeader: tt.header})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) || !slices.Equal(lines, tt.lines) {
				t.Fatalf("got %q at %v, want %q at %v", got, lines, tt.want, tt.lines)
			}
		})
	}
}

func TestCSVErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"a.csv", "k1,v1\nk2,v2,extra\n", ":2: want 2 fields (key, value), got 3"},
		{"b.csv", "k1,v1\n\nonlykey\n", ":3: want 2 fields (key, value), got 1"},
		{"c.csv", "k1,v1\nk2,\"unterminated\n", ":2: malformed csv"},
		{"d.tsv", "k1\tv1\nk2\tbare\"quote\n", ":2: malformed tsv"},
		{"e.csv", "k1,v1\nk\"2,v\n", ":2: malformed csv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), tt.name, []byte(tt.data))
			_, _, err := readAll(t, p, FormatAuto, Options{})
			if err == nil || !strings.Contains(err.Error(), p+tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, p+tt.want)
			}
		})
	}
}

func TestCSVRecordTooLong(t *testing.T) {
	data := "k1,v1\nk2,\"never closed " + strings.Repeat("x", 100000) + "\n"
	p := writeFile(t, t.TempDir(), "long.csv", []byte(data))
	_, _, err := readAll(t, p, FormatAuto, Options{MaxLine: 10000})
	if err == nil || !strings.Contains(err.Error(), p+":2: record longer than 10000 bytes") {
		t.Fatalf("err = %v", err)
	}
	if got, _, err := readAll(t, p, FormatAuto, Options{MaxLine: 200000}); err == nil || !strings.Contains(err.Error(), "extraneous or missing \" in quoted-field") {
		t.Fatalf("within the bound: %q %v", got, err)
	}
}

// writeParquet writes rows of the given schema with Spark's default codec.
func writeParquet(t *testing.T, path string, schema *parquet.Schema, rows []parquet.Row) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewWriter(f, schema, parquet.Compression(&parquet.Snappy))
	if _, err := w.WriteRows(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func col(s *parquet.Schema, path ...string) int {
	lc, ok := s.Lookup(path...)
	if !ok {
		panic(path)
	}
	return lc.ColumnIndex
}

func str(s string) parquet.Value { return parquet.ByteArrayValue([]byte(s)) }

// row assembles values given as (column, value) pairs in column order.
func row(vals ...parquet.Value) parquet.Row {
	slices.SortStableFunc(vals, func(a, b parquet.Value) int { return a.Column() - b.Column() })
	return vals
}

func TestParquetStrings(t *testing.T) {
	dir := t.TempDir()
	s := parquet.NewSchema("spark_schema", parquet.Group{"key": parquet.String(), "value": parquet.Optional(parquet.String())})
	k, v := col(s, "key"), col(s, "value")
	p := filepath.Join(dir, "part-00000-x-c000.snappy.parquet")
	writeParquet(t, p, s, []parquet.Row{
		row(str("a").Level(0, 0, k), str("1").Level(0, 1, v)),
		row(str("bin\x00\xff").Level(0, 0, k), str("").Level(0, 1, v)),
	})
	got, lines, err := readAll(t, p, FormatAuto, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"a=1", "bin\x00\xff="}) || !slices.Equal(lines, []int64{1, 2}) {
		t.Fatalf("got %q at %v", got, lines)
	}

	// A null value names the row.
	p2 := filepath.Join(dir, "nulls.parquet")
	writeParquet(t, p2, s, []parquet.Row{
		row(str("a").Level(0, 0, k), str("1").Level(0, 1, v)),
		row(str("b").Level(0, 0, k), str("2").Level(0, 1, v)),
		row(str("c").Level(0, 0, k), parquet.NullValue().Level(0, 0, v)),
	})
	_, _, err = readAll(t, p2, FormatAuto, Options{})
	if err == nil || !strings.Contains(err.Error(), p2+": row 3: value is null") {
		t.Fatalf("err = %v", err)
	}
}

func TestParquetNumbers(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		node parquet.Node
		val  parquet.Value
		want string
	}{
		{"int32", parquet.Int(32), parquet.Int32Value(-12), "-12"},
		{"int64", parquet.Int(64), parquet.Int64Value(1 << 40), "1099511627776"},
		{"uint64", parquet.Uint(64), parquet.Int64Value(-1), "18446744073709551615"},
		{"double", parquet.Leaf(parquet.DoubleType), parquet.DoubleValue(2.5e-3), "0.0025"},
		{"double-int", parquet.Leaf(parquet.DoubleType), parquet.DoubleValue(3), "3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := parquet.NewSchema("spark_schema", parquet.Group{"key": parquet.String(), "value": tt.node})
			p := filepath.Join(dir, tt.name+".parquet")
			writeParquet(t, p, s, []parquet.Row{row(str("k").Level(0, 0, col(s, "key")), tt.val.Level(0, 0, col(s, "value")))})
			got, _, err := readAll(t, p, FormatAuto, Options{})
			if err != nil || len(got) != 1 || got[0] != "k="+tt.want {
				t.Fatalf("got %q, %v; want k=%s", got, err, tt.want)
			}
		})
	}
}

func TestParquetHashes(t *testing.T) {
	dir := t.TempDir()
	// Spark's layout for a map<string,string> column named "features",
	// written in a field order that is not sorted: the reader keeps it.
	s := parquet.NewSchema("spark_schema", parquet.Group{
		"key":      parquet.String(),
		"features": parquet.Optional(parquet.Map(parquet.String(), parquet.Optional(parquet.String()))),
	})
	k := col(s, "key")
	mk, mv := col(s, "features", "key_value", "key"), col(s, "features", "key_value", "value")
	entries := func(key string, kv ...string) parquet.Row {
		vals := []parquet.Value{str(key).Level(0, 0, k)}
		for i := 0; i < len(kv); i += 2 {
			rep := min(i, 1)
			vals = append(vals, str(kv[i]).Level(rep, 2, mk), str(kv[i+1]).Level(rep, 3, mv))
		}
		return row(vals...)
	}
	p := filepath.Join(dir, "h.parquet")
	writeParquet(t, p, s, []parquet.Row{
		entries("h1", "z", "1", "a", "2", "m", "3"),
		entries("h2", "f", "1", "f", "2"),
	})
	got, _, err := readAll(t, p, FormatAuto, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"h1{z=1,a=2,m=3}", "h2{f=2}"}) {
		t.Fatalf("got %q", got)
	}

	bad := []struct {
		name string
		row  parquet.Row
		want string
	}{
		{"empty", row(str("e").Level(0, 0, k), parquet.NullValue().Level(0, 1, mk), parquet.NullValue().Level(0, 1, mv)), "row 2: hash is empty"},
		{"null", row(str("n").Level(0, 0, k), parquet.NullValue().Level(0, 0, mk), parquet.NullValue().Level(0, 0, mv)), "row 2: hash is null"},
		{"nullvalue", row(str("v").Level(0, 0, k), str("f").Level(0, 2, mk), parquet.NullValue().Level(0, 2, mv)), "row 2: hash field has a null value"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name+".parquet")
			writeParquet(t, p, s, []parquet.Row{entries("ok", "a", "b"), tt.row})
			_, _, err := readAll(t, p, FormatAuto, Options{})
			if err == nil || !strings.Contains(err.Error(), p+": "+tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParquetSchemaErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name   string
		schema *parquet.Schema
		want   string
	}{
		{"nokey", parquet.NewSchema("s", parquet.Group{"id": parquet.String(), "value": parquet.String()}), `no "key" column (columns: id, value)`},
		{"novalue", parquet.NewSchema("s", parquet.Group{"key": parquet.String(), "v": parquet.String()}), `no "value" column and no map column`},
		{"bool", parquet.NewSchema("s", parquet.Group{"key": parquet.String(), "value": parquet.Leaf(parquet.BooleanType)}), "column value has type BOOLEAN"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name+".parquet")
			writeParquet(t, p, tt.schema, nil)
			_, _, err := readAll(t, p, FormatAuto, Options{})
			if err == nil || !strings.Contains(err.Error(), p+": "+tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	p := writeFile(t, dir, "junk.parquet", []byte("PAR1 this is not parquet"))
	if _, _, err := readAll(t, p, FormatAuto, Options{}); err == nil || !strings.Contains(err.Error(), p+": not a readable Parquet file") {
		t.Fatalf("junk: %v", err)
	}
}

func TestExpand(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{
		"out/part-00001.json", "out/part-00000.json", "out/_SUCCESS", "out/.part-00000.json.crc",
		"out/part-00000.json.crc", "out/_temporary/0/part-00009.json", "out/date=2024-01-02/part-00000.json",
		"out/.hidden/part-00000.json",
	} {
		writeFile(t, dir, name, []byte(`{"key":"k","value":"v"}`+"\n"))
	}
	single := writeFile(t, dir, "single.csv", []byte("a,b\n"))
	files, err := Expand([]string{single, filepath.Join(dir, "out")}, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f.Path)
		got = append(got, rel+":"+string(f.Format))
	}
	want := []string{"single.csv:csv", "out/date=2024-01-02/part-00000.json:jsonl", "out/part-00000.json:jsonl", "out/part-00001.json:jsonl"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}

	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Expand([]string{filepath.Join(dir, "empty")}, FormatAuto); !errors.Is(err, ErrNoInput) {
		t.Fatalf("empty dir: %v", err)
	}
	if _, err := Expand([]string{"s3://bucket/prefix/"}, FormatAuto); err == nil || !strings.Contains(err.Error(), "not supported yet") {
		t.Fatalf("s3: %v", err)
	}
	if _, err := Expand([]string{filepath.Join(dir, "missing")}, FormatAuto); err == nil {
		t.Fatal("a missing path is not an error")
	}
	odd := writeFile(t, dir, "data.bin", []byte("k,v\n"))
	if _, err := Expand([]string{odd}, FormatAuto); err == nil || !strings.Contains(err.Error(), "--format") {
		t.Fatalf("unknown extension: %v", err)
	}
	if files, err := Expand([]string{odd}, FormatCSV); err != nil || files[0].Format != FormatCSV {
		t.Fatalf("--format csv: %v %v", files, err)
	}
}
