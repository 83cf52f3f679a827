package build

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"unsafe"

	"github.com/batchkv/batchkv/internal/input"
	"github.com/batchkv/batchkv/internal/store"
)

// entry indexes one encoded record in a batch's chunks. The record's bytes
// are: Pebble key (klen bytes, starting with the 8-byte order prefix), encoded
// value (vlen bytes), uvarint input file index, uvarint line.
type entry struct {
	order uint64 // the key's order prefix, for fast comparison
	loc   uint64 // chunk index << 32 | offset in the chunk
	klen  uint32
	vlen  uint32
}

const entrySize = int64(unsafe.Sizeof(entry{}))

// batch is one parse worker's in-memory buffer of encoded records. Its memory
// is fixed-size chunks, reused after each spill, and the entry index; both
// count against the worker's share of the budget.
type batch struct {
	chunks    [][]byte
	cur       int // chunk being filled
	entries   []entry
	budget    int64
	chunkSize int
}

func newBatch(budget int64) *batch {
	cs := int(min(8<<20, max(64<<10, budget/16)))
	return &batch{budget: budget, chunkSize: cs}
}

// used is the memory the batch holds: chunk capacity, entry index capacity
// and the slice headers of the chunk list.
func (b *batch) used() int64 {
	n := int64(cap(b.entries))*entrySize + int64(cap(b.chunks))*24
	for _, c := range b.chunks {
		n += int64(cap(c))
	}
	return n
}

func (b *batch) empty() bool { return len(b.entries) == 0 }

// reserve returns a chunk with room for need more bytes, or ok false when the
// budget is exhausted and the batch must be spilled first. A record larger
// than a chunk gets a chunk of its own (and may exceed the budget: one record
// always fits).
func (b *batch) reserve(need int) (ci int, ok bool) {
	if len(b.entries) == cap(b.entries) {
		// Double while the budget allows, then grow by a quarter, so that
		// the index neither copies often nor strands much of the budget.
		grow := max(4096, cap(b.entries))
		if b.used()+int64(grow)*entrySize > b.budget {
			grow = max(1024, cap(b.entries)/4)
		}
		if b.used()+int64(grow)*entrySize > b.budget && len(b.entries) > 0 {
			return 0, false
		}
		b.entries = slices.Grow(b.entries, grow)
	}
	for b.cur < len(b.chunks) {
		c := b.chunks[b.cur]
		if cap(c)-len(c) >= need {
			return b.cur, true
		}
		b.cur++
	}
	size := max(b.chunkSize, need)
	if b.used()+int64(size) > b.budget && len(b.entries) > 0 {
		return 0, false
	}
	b.chunks = append(b.chunks, make([]byte, 0, size))
	b.cur = len(b.chunks) - 1
	return b.cur, true
}

// encodedLen returns the bytes rec takes in a batch.
func encodedLen(rec *input.Record, file uint32) (klen, vlen, total int) {
	klen = store.PrefixLen + len(rec.Key)
	if rec.Kind == input.KindHash {
		vlen = 1 + uvarintLen(uint64(len(rec.Hash)))
		for _, f := range rec.Hash {
			vlen += uvarintLen(uint64(len(f.Name))) + len(f.Name) + uvarintLen(uint64(len(f.Value))) + len(f.Value)
		}
	} else {
		vlen = 1 + len(rec.Value)
	}
	return klen, vlen, klen + vlen + uvarintLen(uint64(file)) + uvarintLen(uint64(rec.Line))
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// add encodes rec, whose key is in hash slot s, into the batch; ok false
// means the batch is full.
func (b *batch) add(rec *input.Record, file uint32, s uint16) (ok bool, err error) {
	klen, vlen, total := encodedLen(rec, file)
	if klen > math.MaxUint32 || vlen > math.MaxUint32 {
		return false, fmt.Errorf("record of %d bytes is too large", klen+vlen)
	}
	ci, ok := b.reserve(total)
	if !ok {
		return false, nil
	}
	c := b.chunks[ci]
	off := len(c)
	c = store.AppendKeyAt(c, s, rec.Key)
	if rec.Kind == input.KindHash {
		c = store.AppendHashHeader(c, len(rec.Hash))
		for _, f := range rec.Hash {
			c = store.AppendHashField(c, f.Name, f.Value)
		}
	} else {
		c = store.AppendString(c, rec.Value)
	}
	c = binary.AppendUvarint(c, uint64(file))
	c = binary.AppendUvarint(c, uint64(rec.Line))
	b.chunks[ci] = c
	b.entries = append(b.entries, entry{
		order: binary.BigEndian.Uint64(c[off:]),
		loc:   uint64(ci)<<32 | uint64(off),
		klen:  uint32(klen),
		vlen:  uint32(vlen),
	})
	return true, nil
}

// record returns the Pebble key, value and source of e.
func (b *batch) record(e *entry) (key, value []byte, file uint32, line int64) {
	key, value = b.kv(e)
	file, line = b.src(e)
	return key, value, file, line
}

// kv returns the Pebble key and value of e.
func (b *batch) kv(e *entry) (key, value []byte) {
	c := b.chunks[e.loc>>32]
	off := int(uint32(e.loc))
	end := off + int(e.klen)
	return c[off:end:end], c[end : end+int(e.vlen) : end+int(e.vlen)]
}

// src returns the input file index and line of e.
func (b *batch) src(e *entry) (file uint32, line int64) {
	c := b.chunks[e.loc>>32]
	rest := c[int(uint32(e.loc))+int(e.klen)+int(e.vlen):]
	f, n := binary.Uvarint(rest)
	l, _ := binary.Uvarint(rest[n:])
	return uint32(f), int64(l)
}

// sort orders the entries by Pebble key, then by input position, so that
// duplicates meet in input order.
func (b *batch) sort() {
	slices.SortFunc(b.entries, func(x, y entry) int {
		if c := cmp.Compare(x.order, y.order); c != 0 {
			return c
		}
		kx, _ := b.kv(&x)
		ky, _ := b.kv(&y)
		if c := bytes.Compare(kx, ky); c != 0 {
			return c
		}
		fx, lx := b.src(&x)
		fy, ly := b.src(&y)
		if c := cmp.Compare(fx, fy); c != 0 {
			return c
		}
		return cmp.Compare(lx, ly)
	})
}

// reset empties the batch, keeping its memory.
func (b *batch) reset() {
	for i := range b.chunks {
		if cap(b.chunks[i]) > b.chunkSize {
			// An oversized record's chunk is not kept.
			b.chunks[i] = make([]byte, 0, b.chunkSize)
		}
		b.chunks[i] = b.chunks[i][:0]
	}
	b.cur = 0
	b.entries = b.entries[:0]
}

// span is a partition's part of a sorted run.
type span struct {
	off, n int64 // disk runs: byte offset and entry count; memory runs: entry index and count
	bytes  int64 // disk runs: byte length
}

// run is a sorted sequence of records: spilled to a file, or the final batch
// of a worker kept in memory.
type run struct {
	path  string
	file  *os.File
	mem   *batch
	parts []span
}

// spill sorts b and writes it as a run file in dir, then resets b.
func (b *batch) spill(dir string, seq int, pl *plan) (*run, error) {
	b.sort()
	path := filepath.Join(dir, fmt.Sprintf("run-%06d", seq))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("build: spill: %w", err)
	}
	r := &run{path: path, file: f, parts: make([]span, len(pl.parts))}
	w := bufio.NewWriterSize(f, 1<<20)
	var off int64
	var hdr [2 * binary.MaxVarintLen64]byte
	for i := range b.entries {
		e := &b.entries[i]
		p := pl.partitionOf(e.order)
		if r.parts[p].n == 0 {
			r.parts[p].off = off
		}
		key, value, file, line := b.record(e)
		h := binary.PutUvarint(hdr[:], uint64(len(key)))
		h += binary.PutUvarint(hdr[h:], uint64(len(value)))
		w.Write(hdr[:h])
		w.Write(key)
		w.Write(value)
		h = binary.PutUvarint(hdr[:], uint64(file))
		h += binary.PutUvarint(hdr[h:], uint64(line))
		w.Write(hdr[:h])
		n := int64(h) + int64(len(key)) + int64(len(value))
		n += int64(uvarintLen(uint64(len(key))) + uvarintLen(uint64(len(value))))
		off += n
		r.parts[p].n++
		r.parts[p].bytes += n
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return nil, fmt.Errorf("build: spill %s: %w", path, err)
	}
	b.reset()
	return r, nil
}

// keep sorts b and turns it into a memory run.
func (b *batch) keep(pl *plan) *run {
	b.sort()
	r := &run{mem: b, parts: make([]span, len(pl.parts))}
	for i := range b.entries {
		p := pl.partitionOf(b.entries[i].order)
		if r.parts[p].n == 0 {
			r.parts[p].off = int64(i)
		}
		r.parts[p].n++
	}
	return r
}
