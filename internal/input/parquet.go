package input

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"
)

// parquetReader reads Parquet as Spark writes it: a "key" column and either a
// "value" column (string/binary, or integer/floating point stored as decimal
// text) or a map column for hashes ("hash", or the one map column of the
// file). A file may have both, with exactly one non-null per row.
type parquetReader struct {
	f       File
	osf     *os.File
	pf      *parquet.File
	groups  []parquet.RowGroup
	rows    parquet.Rows
	buf     []parquet.Row
	n, i    int
	row     int64
	key     leaf
	value   leaf
	mapKey  leaf
	mapVal  leaf
	scratch []byte
	spans   []span
	nextVal int
	fields  []Field
	p       Parser // reuses its hash merging
}

// leaf is one column the reader uses; index -1 if absent.
type leaf struct {
	name   string
	index  int
	maxDef int
	kind   parquet.Kind
	conv   func(v parquet.Value, dst []byte) []byte
}

func openParquet(f File) (Reader, error) {
	osf, err := os.Open(f.Path)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	fi, err := osf.Stat()
	if err != nil {
		osf.Close()
		return nil, fmt.Errorf("input: %w", err)
	}
	pf, err := parquet.OpenFile(osf, fi.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		osf.Close()
		return nil, &Error{File: f, Msg: fmt.Sprintf("not a readable Parquet file: %v", err)}
	}
	r := &parquetReader{f: f, osf: osf, pf: pf, groups: pf.RowGroups(), buf: make([]parquet.Row, 256)}
	if err := r.schema(); err != nil {
		osf.Close()
		return nil, err
	}
	return r, nil
}

func (r *parquetReader) fail(msg string, args ...any) error {
	return &Error{File: r.f, Msg: fmt.Sprintf(msg, args...)}
}

// schema finds the key, value and map columns.
func (r *parquetReader) schema() error {
	s := r.pf.Schema()
	r.key, r.value, r.mapKey, r.mapVal = leaf{index: -1}, leaf{index: -1}, leaf{index: -1}, leaf{index: -1}
	var maps []parquet.Field
	var names []string
	for _, fld := range s.Fields() {
		names = append(names, fld.Name())
		if !fld.Leaf() && isMap(fld) {
			maps = append(maps, fld)
		}
	}
	var err error
	if r.key, err = r.scalarLeaf(s, "key"); err != nil {
		return err
	}
	if r.key.index < 0 {
		return r.fail("no \"key\" column (columns: %s)", strings.Join(names, ", "))
	}
	if r.value, err = r.scalarLeaf(s, "value"); err != nil {
		return err
	}
	var m parquet.Field
	for _, c := range maps {
		if c.Name() == "hash" {
			m = c
		}
	}
	if m == nil && len(maps) == 1 {
		m = maps[0]
	}
	if m == nil && len(maps) > 1 {
		return r.fail("%d map columns and none named \"hash\"", len(maps))
	}
	if m != nil {
		kv := m.Fields()
		if len(kv) != 1 || kv[0].Leaf() || !kv[0].Repeated() {
			return r.fail("map column %q is not a standard Parquet MAP", m.Name())
		}
		path := []string{m.Name(), kv[0].Name()}
		if r.mapKey, err = r.column(s, "map key", append(path, "key")...); err != nil {
			return err
		}
		if r.mapVal, err = r.column(s, "map value", append(path, "value")...); err != nil {
			return err
		}
		if r.mapKey.index < 0 || r.mapVal.index < 0 {
			return r.fail("map column %q has no key/value fields", m.Name())
		}
	}
	if r.value.index < 0 && r.mapKey.index < 0 {
		return r.fail("no \"value\" column and no map column for hashes (columns: %s)", strings.Join(names, ", "))
	}
	return nil
}

func isMap(f parquet.Field) bool {
	if lt := f.Type().LogicalType(); lt != nil {
		if _, ok := lt.Value.(*format.MapType); ok {
			return true
		}
	}
	if ct := f.Type().ConvertedType(); ct != nil && (*ct == deprecated.Map || *ct == deprecated.MapKeyValue) {
		return true
	}
	return false
}

func (r *parquetReader) scalarLeaf(s *parquet.Schema, name string) (leaf, error) {
	for _, f := range s.Fields() {
		if f.Name() == name {
			if !f.Leaf() || f.Repeated() {
				return leaf{}, r.fail("column %q is not a scalar column", name)
			}
			return r.column(s, name, name)
		}
	}
	return leaf{index: -1}, nil
}

func (r *parquetReader) column(s *parquet.Schema, what string, path ...string) (leaf, error) {
	lc, ok := s.Lookup(path...)
	if !ok {
		return leaf{index: -1}, nil
	}
	l := leaf{name: strings.Join(path, "."), index: lc.ColumnIndex, maxDef: lc.MaxDefinitionLevel, kind: lc.Node.Type().Kind()}
	lt := lc.Node.Type().LogicalType()
	var intType *format.IntType
	isDecimal := false
	if lt != nil {
		intType, _ = lt.Value.(*format.IntType)
		_, isDecimal = lt.Value.(*format.DecimalType)
	}
	if isDecimal {
		return l, r.fail("column %s is a DECIMAL, which has no exact text form here; cast it to string in the job", l.name)
	}
	unsigned := intType != nil && !intType.IsSigned
	switch l.kind {
	case parquet.ByteArray, parquet.FixedLenByteArray:
		l.conv = func(v parquet.Value, dst []byte) []byte { return append(dst, v.ByteArray()...) }
	case parquet.Int32:
		if unsigned {
			l.conv = func(v parquet.Value, dst []byte) []byte { return strconv.AppendUint(dst, uint64(v.Uint32()), 10) }
		} else {
			l.conv = func(v parquet.Value, dst []byte) []byte { return strconv.AppendInt(dst, int64(v.Int32()), 10) }
		}
	case parquet.Int64:
		if unsigned {
			l.conv = func(v parquet.Value, dst []byte) []byte { return strconv.AppendUint(dst, v.Uint64(), 10) }
		} else {
			l.conv = func(v parquet.Value, dst []byte) []byte { return strconv.AppendInt(dst, v.Int64(), 10) }
		}
	case parquet.Double:
		l.conv = func(v parquet.Value, dst []byte) []byte { return strconv.AppendFloat(dst, v.Double(), 'f', -1, 64) }
	case parquet.Float:
		l.conv = func(v parquet.Value, dst []byte) []byte {
			return strconv.AppendFloat(dst, float64(v.Float()), 'f', -1, 32)
		}
	default:
		return l, r.fail("column %s has type %s; want string, binary, integer or floating point", l.name, l.kind)
	}
	if what == "map key" && l.kind != parquet.ByteArray && l.kind != parquet.FixedLenByteArray && l.kind != parquet.Int32 && l.kind != parquet.Int64 {
		return l, r.fail("map keys of %s have type %s; want string or binary", l.name, l.kind)
	}
	return l, nil
}

func (r *parquetReader) Close() error {
	var err error
	if r.rows != nil {
		err = r.rows.Close()
	}
	if e := r.osf.Close(); err == nil {
		err = e
	}
	return err
}

func (r *parquetReader) Next(rec *Record) error {
	for r.i >= r.n {
		if err := r.fill(); err != nil {
			return err
		}
	}
	row := r.buf[r.i]
	r.i++
	r.row++
	return r.decode(row, rec)
}

func (r *parquetReader) fill() error {
	for {
		if r.rows == nil {
			if len(r.groups) == 0 {
				return io.EOF
			}
			r.rows = r.groups[0].Rows()
			r.groups = r.groups[1:]
		}
		n, err := r.rows.ReadRows(r.buf)
		r.n, r.i = n, 0
		if err == io.EOF {
			r.rows.Close()
			r.rows = nil
			err = nil
		}
		if err != nil {
			return &Error{File: r.f, Line: r.row + 1, Msg: fmt.Sprintf("reading Parquet: %v", err)}
		}
		if n > 0 {
			return nil
		}
	}
}

func (r *parquetReader) rowErr(msg string, args ...any) error {
	return &Error{File: r.f, Line: r.row, Msg: fmt.Sprintf(msg, args...)}
}

func (r *parquetReader) decode(row parquet.Row, rec *Record) error {
	r.scratch = r.scratch[:0]
	r.spans = r.spans[:0]
	r.nextVal = 0
	var key, value span
	haveKey, haveValue, mapState := false, false, 0 // mapState: 0 null, 1 empty, 2 has entries
	for _, v := range row {
		col := v.Column()
		switch col {
		case r.key.index:
			if v.IsNull() {
				return r.rowErr("key is null")
			}
			key, haveKey = r.append(r.key, v), true
		case r.value.index:
			if !v.IsNull() {
				value, haveValue = r.append(r.value, v), true
			}
		case r.mapKey.index:
			switch {
			case v.DefinitionLevel() >= r.mapKey.maxDef:
				mapState = 2
				r.spans = append(r.spans, r.append(r.mapKey, v), span{})
			case v.DefinitionLevel() == r.mapKey.maxDef-1:
				mapState = max(mapState, 1)
			}
		case r.mapVal.index:
			if v.DefinitionLevel() < r.mapKey.maxDef {
				continue // no entry at all: the map is null or empty
			}
			if v.IsNull() {
				return r.rowErr("hash field has a null value; Redis hash fields need a value")
			}
			// Map values follow all map keys in a row (columns are in
			// schema order): fill the value slots in order.
			if !r.fillMapValue(r.append(r.mapVal, v)) {
				return r.rowErr("hash has more values than fields")
			}
		}
	}
	if !haveKey {
		return r.rowErr("key is missing")
	}
	switch {
	case haveValue && mapState == 2:
		return r.rowErr("both value and %s are set; a key holds either a string or a hash", r.mapKey.name)
	case haveValue:
		rec.Key, rec.Kind, rec.Value, rec.Hash = r.bytes(key), KindString, r.bytes(value), nil
	case mapState == 2:
		if r.nextVal*2 != len(r.spans) {
			return r.rowErr("hash has %d fields but %d values", len(r.spans)/2, r.nextVal)
		}
		r.p.line, r.p.scratch, r.p.spans = nil, r.scratch, r.p.spans[:0]
		for i := 0; i < len(r.spans); i += 2 {
			r.p.spans = append(r.p.spans, r.spans[i], r.spans[i+1])
		}
		rec.Key, rec.Kind, rec.Value = r.bytes(key), KindHash, nil
		rec.Hash = r.p.resolveHash()
	case mapState == 1:
		return r.rowErr("hash is empty; Redis cannot hold an empty hash")
	default:
		if r.value.index >= 0 {
			return r.rowErr("value is null")
		}
		return r.rowErr("hash is null")
	}
	rec.Line = r.row
	return nil
}

// fillMapValue sets the value of the next map entry still without one.
func (r *parquetReader) fillMapValue(s span) bool {
	i := 2*r.nextVal + 1
	if i >= len(r.spans) {
		return false
	}
	r.spans[i] = s
	r.nextVal++
	return true
}

func (r *parquetReader) append(l leaf, v parquet.Value) span {
	start := len(r.scratch)
	r.scratch = l.conv(v, r.scratch)
	return span{start: start, end: len(r.scratch), inScratch: true}
}

func (r *parquetReader) bytes(s span) []byte { return r.scratch[s.start:s.end:s.end] }
