// Package gen generates synthetic datasets for development, benchmarks and
// tests: the "feature counts" shape of a typical daily Spark job. Keys are 64
// hex characters (like a SHA-256 of an entity id); 60% of values are decimal
// counters, 40% hashes of 1-20 integer fields. Output is deterministic for a
// seed: record i is a pure function of (seed, i), so a test can check a built
// dataset against Record without keeping the data.
package gen

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/parquet-go/parquet-go"
)

// Format of the generated files.
const (
	FormatJSONL   = "jsonl"
	FormatParquet = "parquet"
)

// Options configure Generate.
type Options struct {
	// Dir is created and receives part-NNNNN files and a _SUCCESS marker, as
	// Spark writes them. It must not exist. Required.
	Dir string
	// Keys is the number of records. Required.
	Keys int64
	// Seed selects the dataset; default 0.
	Seed uint64
	// Parts is the number of part files; default 1.
	Parts int
	// Format is FormatJSONL (default) or FormatParquet.
	Format string
	// Gzip compresses JSON Lines parts (.jsonl.gz).
	Gzip bool
}

// Record is one generated record.
type Record struct {
	Key string
	// Value is set for a string (a decimal counter); Fields for a hash.
	Value  string
	Fields []Field
}

// Field is a hash field of a generated record.
type Field struct {
	Name  string
	Value int64
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// fieldNames are the hash field names; a record's fields are a run of them.
var fieldNames = func() []string {
	kinds := []string{"click", "view", "cart", "buy", "share"}
	var out []string
	for _, k := range kinds {
		for _, w := range []string{"1d", "7d", "30d", "90d", "365d"} {
			out = append(out, k+"_"+w)
		}
	}
	return out
}()

// generator produces records without allocating per record.
type generator struct {
	seed uint64
	key  [64]byte
}

// state returns the random words of record i. The first word is a bijection
// of i (for a fixed seed), so keys never repeat.
func (g *generator) fill(i int64) (r0, r1 uint64) {
	x := g.seed + uint64(i)*0x9e3779b97f4a7c15
	var raw [32]byte
	w := splitmix(x)
	for j := range 4 {
		for b := range 8 {
			raw[j*8+b] = byte(w >> (56 - 8*b))
		}
		w = splitmix(w ^ uint64(j+1))
	}
	hex.Encode(g.key[:], raw[:])
	return splitmix(x ^ 0x5bd1e995), splitmix(x ^ 0x1b873593)
}

// RecordAt returns record i of the dataset of seed.
func RecordAt(seed uint64, i int64) Record {
	g := generator{seed: seed}
	r0, r1 := g.fill(i)
	rec := Record{Key: string(g.key[:])}
	if r0%100 < 60 {
		rec.Value = strconv.FormatUint(r1%1000000, 10)
		return rec
	}
	n := int(1 + r0>>8%20)
	start := int(r0 >> 16 % uint64(len(fieldNames)))
	for j := range n {
		r1 = splitmix(r1)
		rec.Fields = append(rec.Fields, Field{Name: fieldNames[(start+j)%len(fieldNames)], Value: int64(r1 % 10000)})
	}
	return rec
}

// Generate writes the dataset and returns the part files' paths.
func Generate(ctx context.Context, o Options) ([]string, error) {
	if o.Dir == "" || o.Keys <= 0 {
		return nil, errors.New("gen: need a directory and a positive number of keys")
	}
	if o.Parts <= 0 {
		o.Parts = 1
	}
	if o.Format == "" {
		o.Format = FormatJSONL
	}
	ext := ".jsonl"
	switch o.Format {
	case FormatJSONL:
		if o.Gzip {
			ext += ".gz"
		}
	case FormatParquet:
		ext = ".snappy.parquet"
	default:
		return nil, fmt.Errorf("gen: unknown format %q (want jsonl or parquet)", o.Format)
	}
	if err := os.MkdirAll(filepath.Dir(o.Dir), 0o755); err != nil {
		return nil, fmt.Errorf("gen: %w", err)
	}
	if err := os.Mkdir(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("gen: %w", err)
	}
	paths := make([]string, o.Parts)
	errs := make([]error, o.Parts)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for p := range o.Parts {
		paths[p] = filepath.Join(o.Dir, fmt.Sprintf("part-%05d%s", p, ext))
		lo, hi := o.Keys*int64(p)/int64(o.Parts), o.Keys*int64(p+1)/int64(o.Parts)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[p] = writePart(ctx, paths[p], o, lo, hi)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(o.Dir, "_SUCCESS"), nil, 0o644); err != nil {
		return nil, fmt.Errorf("gen: %w", err)
	}
	return paths, nil
}

func writePart(ctx context.Context, path string, o Options, lo, hi int64) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("gen: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("gen: %w", cerr)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	var w io.Writer = bw
	var zw *gzip.Writer
	if o.Gzip && o.Format == FormatJSONL {
		zw, _ = gzip.NewWriterLevel(bw, gzip.BestSpeed)
		w = zw
	}
	if o.Format == FormatParquet {
		err = writeParquet(ctx, w, o.Seed, lo, hi)
	} else {
		err = writeJSONL(ctx, w, o.Seed, lo, hi)
	}
	if err != nil {
		return err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return fmt.Errorf("gen: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("gen: %w", err)
	}
	return nil
}

func writeJSONL(ctx context.Context, w io.Writer, seed uint64, lo, hi int64) error {
	g := generator{seed: seed}
	buf := make([]byte, 0, 64<<10)
	for i := lo; i < hi; i++ {
		if i&0xffff == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		buf = appendJSONL(buf, &g, i)
		if len(buf) > 60<<10 {
			if _, err := w.Write(buf); err != nil {
				return fmt.Errorf("gen: %w", err)
			}
			buf = buf[:0]
		}
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("gen: %w", err)
	}
	return nil
}

// appendJSONL appends record i as a JSON line; it mirrors RecordAt.
func appendJSONL(buf []byte, g *generator, i int64) []byte {
	r0, r1 := g.fill(i)
	buf = append(buf, `{"key":"`...)
	buf = append(buf, g.key[:]...)
	if r0%100 < 60 {
		buf = append(buf, `","value":`...)
		buf = strconv.AppendUint(buf, r1%1000000, 10)
		return append(buf, "}\n"...)
	}
	buf = append(buf, `","hash":{`...)
	n := int(1 + r0>>8%20)
	start := int(r0 >> 16 % uint64(len(fieldNames)))
	for j := range n {
		r1 = splitmix(r1)
		if j > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		buf = append(buf, fieldNames[(start+j)%len(fieldNames)]...)
		buf = append(buf, `":`...)
		buf = strconv.AppendUint(buf, r1%10000, 10)
	}
	return append(buf, "}}\n"...)
}

// ParquetSchema is the schema of generated Parquet files, as Spark writes a
// DataFrame of (key string, value bigint, hash map<string,bigint>).
var ParquetSchema = parquet.NewSchema("spark_schema", parquet.Group{
	"key":   parquet.String(),
	"value": parquet.Optional(parquet.Int(64)),
	"hash":  parquet.Optional(parquet.Map(parquet.String(), parquet.Int(64))),
})

func writeParquet(ctx context.Context, w io.Writer, seed uint64, lo, hi int64) error {
	col := func(path ...string) int {
		lc, ok := ParquetSchema.Lookup(path...)
		if !ok {
			panic("gen: schema has no column " + filepath.Join(path...))
		}
		return lc.ColumnIndex
	}
	keyCol, valCol := col("key"), col("value")
	mkCol, mvCol := col("hash", "key_value", "key"), col("hash", "key_value", "value")
	pw := parquet.NewWriter(w, ParquetSchema, parquet.Compression(&parquet.Snappy), parquet.MaxRowsPerRowGroup(128<<10))
	rows := make([]parquet.Row, 0, 1024)
	cols := make([][]parquet.Value, 4)
	for i := lo; i < hi; i++ {
		if i&0xffff == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rec := RecordAt(seed, i)
		byCol := cols
		for c := range byCol {
			byCol[c] = byCol[c][:0]
		}
		byCol[keyCol] = append(byCol[keyCol], parquet.ByteArrayValue([]byte(rec.Key)).Level(0, 0, keyCol))
		if rec.Fields == nil {
			v, _ := strconv.ParseInt(rec.Value, 10, 64)
			byCol[valCol] = append(byCol[valCol], parquet.Int64Value(v).Level(0, 1, valCol))
			byCol[mkCol] = append(byCol[mkCol], parquet.NullValue().Level(0, 0, mkCol))
			byCol[mvCol] = append(byCol[mvCol], parquet.NullValue().Level(0, 0, mvCol))
		} else {
			byCol[valCol] = append(byCol[valCol], parquet.NullValue().Level(0, 0, valCol))
			for j, f := range rec.Fields {
				rep := min(j, 1)
				byCol[mkCol] = append(byCol[mkCol], parquet.ByteArrayValue([]byte(f.Name)).Level(rep, 2, mkCol))
				byCol[mvCol] = append(byCol[mvCol], parquet.Int64Value(f.Value).Level(rep, 2, mvCol))
			}
		}
		row := make(parquet.Row, 0, 2+2*len(rec.Fields)+2)
		for c := range cols {
			row = append(row, byCol[c]...)
		}
		rows = append(rows, row)
		if len(rows) == cap(rows) {
			if _, err := pw.WriteRows(rows); err != nil {
				return fmt.Errorf("gen: %w", err)
			}
			rows = rows[:0]
		}
	}
	if _, err := pw.WriteRows(rows); err != nil {
		return fmt.Errorf("gen: %w", err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("gen: %w", err)
	}
	return nil
}
