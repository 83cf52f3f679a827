package build

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/batchkv/batchkv/internal/store"
)

// iterator walks one run's records of one partition in order.
type iterator interface {
	// next advances; false at the end (check err).
	next() bool
	// cur returns the current record; slices are valid until next.
	cur() (key, value []byte)
	// src returns the input position of the current record.
	src() (file uint32, line int64)
	// order returns the order prefix of the current key.
	order() uint64
	err() error
}

type memIter struct {
	b    *batch
	bi   int // bucket and index of the next entry
	i    int
	left int64
	bk   *bucket // of the current entry
	e    *entry
	k, v []byte
}

func (m *memIter) next() bool {
	if m.left == 0 {
		return false
	}
	for m.i >= len(m.b.buckets[m.bi].entries) {
		m.bi, m.i = m.bi+1, 0
	}
	m.bk = &m.b.buckets[m.bi]
	m.e = &m.bk.entries[m.i]
	m.k, m.v = m.bk.kv(m.e)
	m.i++
	m.left--
	return true
}

func (m *memIter) cur() ([]byte, []byte) { return m.k, m.v }
func (m *memIter) src() (uint32, int64)  { return m.bk.src(m.e) }
func (m *memIter) err() error            { return nil }
func (m *memIter) order() uint64         { return m.e.order }

type diskIter struct {
	path string
	r    *bufio.Reader
	left int64
	buf  []byte
	k, v []byte
	f    uint32
	l    int64
	e    error
}

func (d *diskIter) next() bool {
	if d.left == 0 || d.e != nil {
		return false
	}
	d.left--
	if d.nextBuffered() {
		return true
	}
	klen, err := binary.ReadUvarint(d.r)
	if err != nil {
		return d.fail(err)
	}
	vlen, err := binary.ReadUvarint(d.r)
	if err != nil {
		return d.fail(err)
	}
	n := int(klen + vlen)
	if cap(d.buf) < n {
		d.buf = make([]byte, n, n+n/4)
	}
	d.buf = d.buf[:n]
	if _, err := io.ReadFull(d.r, d.buf); err != nil {
		return d.fail(err)
	}
	f, err := binary.ReadUvarint(d.r)
	if err != nil {
		return d.fail(err)
	}
	l, err := binary.ReadUvarint(d.r)
	if err != nil {
		return d.fail(err)
	}
	d.k, d.v, d.f, d.l = d.buf[:klen:klen], d.buf[klen:], uint32(f), int64(l)
	return true
}

// nextBuffered reads the next record in place, its key and value slices of
// the reader's buffer (valid until the next read), when it fits the buffer:
// false (having read nothing) otherwise, or on any irregularity, which the
// copying path then reads or reports.
func (d *diskIter) nextBuffered() bool {
	const maxHdr = 2 * binary.MaxVarintLen64
	if d.r.Buffered() < maxHdr {
		d.r.Peek(maxHdr) // fills the buffer; short at the end of the run
	}
	b, _ := d.r.Peek(d.r.Buffered())
	klen, n1 := binary.Uvarint(b)
	if n1 <= 0 || klen > uint64(d.r.Size()) {
		return false
	}
	vlen, n2 := binary.Uvarint(b[n1:])
	if n2 <= 0 || vlen > uint64(d.r.Size()) {
		return false
	}
	body := n1 + n2 + int(klen) + int(vlen)
	if body+maxHdr > len(b) && body+maxHdr <= d.r.Size() {
		d.r.Peek(body + maxHdr)
		b, _ = d.r.Peek(d.r.Buffered())
	}
	if body > len(b) {
		return false
	}
	f, n3 := binary.Uvarint(b[body:])
	if n3 <= 0 {
		return false
	}
	l, n4 := binary.Uvarint(b[body+n3:])
	if n4 <= 0 {
		return false
	}
	kv := b[n1+n2 : body : body]
	d.k, d.v, d.f, d.l = kv[:klen:klen], kv[klen:], uint32(f), int64(l)
	d.r.Discard(body + n3 + n4)
	return true
}

func (d *diskIter) fail(err error) bool {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	d.e = fmt.Errorf("build: read run %s: %w", d.path, err)
	return false
}

func (d *diskIter) cur() ([]byte, []byte) { return d.k, d.v }
func (d *diskIter) src() (uint32, int64)  { return d.f, d.l }
func (d *diskIter) order() uint64         { return binary.BigEndian.Uint64(d.k) }
func (d *diskIter) err() error            { return d.e }

// newSectionReader reads n bytes of f at off, buffered.
func newSectionReader(f *os.File, off, n int64) *bufio.Reader {
	return bufio.NewReaderSize(io.NewSectionReader(f, off, n), 64<<10)
}

// mergeHeap orders iterators by their current record: key, then input
// position. Each item caches its iterator's order prefix, which decides
// almost every comparison without an interface call or touching key bytes.
type mergeHeap []heapItem

type heapItem struct {
	order uint64
	it    iterator
}

func (h mergeHeap) less(i, j int) bool {
	if oi, oj := h[i].order, h[j].order; oi != oj {
		return oi < oj
	}
	ki, _ := h[i].it.cur()
	kj, _ := h[j].it.cur()
	if c := bytes.Compare(ki, kj); c != 0 {
		return c < 0
	}
	fi, li := h[i].it.src()
	fj, lj := h[j].it.src()
	if c := cmp.Compare(fi, fj); c != 0 {
		return c < 0
	}
	return li < lj
}

func (h mergeHeap) down(i int) {
	for {
		j := 2*i + 1
		if j >= len(h) {
			return
		}
		if r := j + 1; r < len(h) && h.less(r, j) {
			j = r
		}
		if !h.less(j, i) {
			return
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}

func (h mergeHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// partStats are the counts of what one partition wrote.
type partStats struct {
	strings, hashes, fields, keyBytes, valueBytes int64
	tables                                        []string
}

func (s *partStats) add(o partStats) {
	s.strings += o.strings
	s.hashes += o.hashes
	s.fields += o.fields
	s.keyBytes += o.keyBytes
	s.valueBytes += o.valueBytes
	s.tables = append(s.tables, o.tables...)
}

// DuplicateError reports a key given twice in the input.
type DuplicateError struct {
	Key           []byte
	First, Second string // positions, in input order
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("build: duplicate key %s at %s and at %s (pass --on-duplicate first or last to keep one)", quoteKey(e.Key), e.First, e.Second)
}

// ErrDuplicate matches every DuplicateError with errors.Is.
var ErrDuplicate = errors.New("build: duplicate key")

func (e *DuplicateError) Is(target error) bool { return target == ErrDuplicate }

// quoteKey quotes a key for messages, escaping binary bytes and shortening
// very long keys.
func quoteKey(k []byte) string {
	const maxShown = 256
	if len(k) > maxShown {
		return strconv.Quote(string(k[:maxShown])) + fmt.Sprintf("… (%d bytes)", len(k))
	}
	return strconv.Quote(string(k))
}

// mergePartition merges partition p of every run into sstables in the
// tables directory, cutting a new table after TableBytes.
func (bl *builder) mergePartition(ctx context.Context, p int) (partStats, error) {
	var st partStats
	h := make(mergeHeap, 0, len(bl.runs))
	for _, r := range bl.runs {
		sp := r.parts[p]
		if sp.n == 0 {
			continue
		}
		var it iterator
		if r.mem != nil {
			it = &memIter{b: r.mem, bi: int(sp.off >> 32), i: int(uint32(sp.off)), left: sp.n}
		} else {
			it = &diskIter{path: r.path, r: newSectionReader(r.file, sp.off, sp.bytes), left: sp.n}
		}
		if !it.next() {
			if err := it.err(); err != nil {
				return st, err
			}
			continue
		}
		h = append(h, heapItem{it.order(), it})
	}
	h.init()

	var tw *store.TableWriter
	var tableBytes int64
	finish := func() error {
		if tw == nil {
			return nil
		}
		err := tw.Close()
		tw = nil
		return err
	}
	defer finish()

	// held is the record to write once we know the next key differs.
	var heldKey, heldVal []byte
	var heldFile uint32
	var heldLine int64
	held := false
	write := func() error {
		if tw == nil || tableBytes >= bl.opts.TableBytes {
			if err := finish(); err != nil {
				return err
			}
			path := filepath.Join(bl.tablesDir, fmt.Sprintf("p%05d-%04d.sst", p, len(st.tables)))
			w, err := store.NewTableWriter(path)
			if err != nil {
				return err
			}
			tw, tableBytes = w, 0
			st.tables = append(st.tables, path)
		}
		if err := tw.Add(heldKey, heldVal); err != nil {
			return err
		}
		tableBytes += int64(len(heldKey) + len(heldVal))
		st.keyBytes += int64(len(heldKey) - store.PrefixLen)
		st.valueBytes += int64(len(heldVal))
		v, err := store.DecodeValue(heldVal)
		if err != nil {
			return err
		}
		if v.Type == store.TypeHash {
			n, err := v.Hash().Len()
			if err != nil {
				return err
			}
			st.hashes++
			st.fields += int64(n)
		} else {
			st.strings++
		}
		return nil
	}
	// The held record's source is only needed for a duplicate's message,
	// so it is read then, from the iterator that held it, if still there.
	// A memory run's record stays put until the build ends: hold it by
	// reference; a disk run's is copied, since its buffer is reused. The
	// source position is only needed for a duplicate's message: for a
	// memory run it is decoded then, from the held entry.
	var bufKey, bufVal []byte
	var heldOrder uint64
	var heldEntry *entry
	var heldBucket *bucket
	hold := func(it iterator) {
		k, v := it.cur()
		if m, ok := it.(*memIter); ok {
			heldKey, heldVal = k, v
			heldBucket, heldEntry = m.bk, m.e
		} else {
			bufKey = append(bufKey[:0], k...)
			bufVal = append(bufVal[:0], v...)
			heldKey, heldVal = bufKey, bufVal
			heldBucket, heldEntry = nil, nil
			heldFile, heldLine = it.src()
		}
		heldOrder = it.order()
		held = true
	}
	heldSrc := func() (uint32, int64) {
		if heldEntry != nil {
			return heldBucket.src(heldEntry)
		}
		return heldFile, heldLine
	}
	var n int
	for len(h) > 0 {
		if n++; n&0xffff == 0 && ctx.Err() != nil {
			return st, context.Cause(ctx)
		}
		it := h[0].it
		k, _ := it.cur()
		switch {
		case !held:
			hold(it)
		case it.order() != heldOrder || !bytes.Equal(k, heldKey):
			if err := write(); err != nil {
				return st, err
			}
			hold(it)
		default:
			switch bl.opts.OnDuplicate {
			case DuplicateFirst:
				// Keep the held (earlier) record.
			case DuplicateLast:
				hold(it)
			default:
				f, l := it.src()
				hf, hl := heldSrc()
				return st, &DuplicateError{
					Key:    append([]byte(nil), k[store.PrefixLen:]...),
					First:  bl.pos(hf, hl),
					Second: bl.pos(f, l),
				}
			}
		}
		if it.next() {
			h[0].order = it.order()
		} else {
			if err := it.err(); err != nil {
				return st, err
			}
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		}
		h.down(0)
	}
	if held {
		if err := write(); err != nil {
			return st, err
		}
	}
	return st, finish()
}
