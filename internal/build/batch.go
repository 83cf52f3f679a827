package build

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
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

// batch is one parse worker's in-memory buffer of encoded records. Records
// are kept in buckets by the top bits of their order prefix (up to 256), each
// with its own chunks and entry index: sorting is then per bucket, and walking
// the records in sorted order (spilling, merging) touches one bucket's memory
// at a time, about a megabyte, instead of jumping across the whole buffer
// (which made every record a cache and TLB miss). The memory is fixed-size
// chunks, reused after each spill, and the entry indexes; both count against
// the worker's share of the budget.
type batch struct {
	buckets   []bucket
	shift     uint  // order >> shift = bucket
	n         int   // entries in all buckets
	used      int64 // capacity of the chunks and entry indexes
	budget    int64
	chunkSize int
	tmp       []entry // the radix sort's scratch
	// arena holds the chunks of chunkSize (nil: the Go heap); free releases
	// it once nothing reads the batch any more.
	arena *arena
}

// bucket is one range of order prefixes of a batch.
type bucket struct {
	chunks  [][]byte
	cur     int // chunk being filled
	entries []entry
}

func newBatch(budget int64) *batch {
	// 256 buckets of 256 KiB chunks when the budget holds at least four
	// chunks per bucket; fewer buckets for small budgets.
	nb, cs := 256, 256<<10
	for nb > 1 && int64(nb)*int64(cs)*4 > budget {
		nb /= 2
	}
	if nb == 1 {
		cs = int(min(8<<20, max(64<<10, budget/16)))
	}
	return &batch{buckets: make([]bucket, nb), shift: uint(64 - bits.Len(uint(nb-1))), budget: budget, chunkSize: cs, arena: newArena(budget)}
}

// free releases the batch's chunk memory; the batch must not be used again.
func (b *batch) free() {
	b.arena.free()
	b.buckets = nil
}

// chunk returns an empty chunk of capacity size: from the arena if it is
// a regular chunk and there is room, else from the heap.
func (b *batch) chunk(size int) []byte {
	if size == b.chunkSize {
		if c := b.arena.alloc(size); c != nil {
			return c
		}
	}
	return make([]byte, 0, size)
}

func (b *batch) empty() bool { return b.n == 0 }

// reserve returns a chunk of bucket bk with room for need more bytes, or ok
// false when the budget is exhausted and the batch must be spilled first. A
// record larger than a chunk gets a chunk of its own (and may exceed the
// budget: one record always fits).
func (b *batch) reserve(bk *bucket, need int) (ci int, ok bool) {
	if len(bk.entries) == cap(bk.entries) {
		grow := max(64, cap(bk.entries))
		if b.used+int64(grow)*entrySize > b.budget && b.n > 0 {
			return 0, false
		}
		old := cap(bk.entries)
		bk.entries = slices.Grow(bk.entries, grow)
		b.used += int64(cap(bk.entries)-old) * entrySize
	}
	for bk.cur < len(bk.chunks) {
		c := bk.chunks[bk.cur]
		if cap(c)-len(c) >= need {
			return bk.cur, true
		}
		bk.cur++
	}
	size := max(b.chunkSize, need)
	if b.used+int64(size) > b.budget && b.n > 0 {
		return 0, false
	}
	bk.chunks = append(bk.chunks, b.chunk(size))
	b.used += int64(size)
	bk.cur = len(bk.chunks) - 1
	return bk.cur, true
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
	order := store.OrderAt(s, rec.Key)
	bk := &b.buckets[order>>b.shift]
	ci, ok := b.reserve(bk, total)
	if !ok {
		return false, nil
	}
	c := bk.chunks[ci]
	off := len(c)
	c = binary.BigEndian.AppendUint64(c, order)
	c = append(c, rec.Key...)
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
	bk.chunks[ci] = c
	bk.entries = append(bk.entries, entry{
		order: order,
		loc:   uint64(ci)<<32 | uint64(off),
		klen:  uint32(klen),
		vlen:  uint32(vlen),
	})
	b.n++
	return true, nil
}

// record returns the Pebble key, value and source of e.
func (bk *bucket) record(e *entry) (key, value []byte, file uint32, line int64) {
	key, value = bk.kv(e)
	file, line = bk.src(e)
	return key, value, file, line
}

// kv returns the Pebble key and value of e.
func (bk *bucket) kv(e *entry) (key, value []byte) {
	c := bk.chunks[e.loc>>32]
	off := int(uint32(e.loc))
	end := off + int(e.klen)
	return c[off:end:end], c[end : end+int(e.vlen) : end+int(e.vlen)]
}

// raw returns e's bytes in its chunk: key, value and the two source varints.
func (bk *bucket) raw(e *entry) []byte {
	c := bk.chunks[e.loc>>32]
	off := int(uint32(e.loc))
	end := off + int(e.klen) + int(e.vlen)
	// The source is two uvarints: each ends at a byte below 0x80.
	for range 2 {
		for c[end] >= 0x80 {
			end++
		}
		end++
	}
	return c[off:end]
}

// src returns the input file index and line of e.
func (bk *bucket) src(e *entry) (file uint32, line int64) {
	c := bk.chunks[e.loc>>32]
	rest := c[int(uint32(e.loc))+int(e.klen)+int(e.vlen):]
	f, n := binary.Uvarint(rest)
	l, _ := binary.Uvarint(rest[n:])
	return uint32(f), int64(l)
}

// sort orders each bucket's entries by Pebble key, then by input position,
// so that duplicates meet in input order. Buckets are ranges of order
// prefixes in order, so the buckets one after the other are sorted.
//
// A bucket is sorted by one radix pass on the 8 bits of the order prefix
// below the bucket's, then each of the 256 small groups by insertion sort
// (prefixes are hashes, so the groups are even; a large one, from many
// equal prefixes, is sorted by comparison).
func (b *batch) sort() {
	for i := range b.buckets {
		bk := &b.buckets[i]
		es := bk.entries
		if len(es) < 64 {
			bk.insertionSort(es)
			continue
		}
		if cap(b.tmp) < len(es) {
			b.tmp = make([]entry, len(es))
		}
		tmp := b.tmp[:len(es)]
		var count [257]int
		up := 64 - b.shift // bits of the bucket number, above the digit
		for j := range es {
			count[(es[j].order<<up>>56)+1]++
		}
		for d := 1; d < len(count); d++ {
			count[d] += count[d-1]
		}
		next := count
		for j := range es {
			d := es[j].order << up >> 56
			tmp[next[d]] = es[j]
			next[d]++
		}
		copy(es, tmp)
		for d := range 256 {
			g := es[count[d]:count[d+1]]
			if len(g) <= 48 {
				bk.insertionSort(g)
			} else {
				slices.SortFunc(g, bk.compare)
			}
		}
	}
}

// compare orders entries of bk by Pebble key, then input position.
func (bk *bucket) compare(x, y entry) int {
	if x.order != y.order {
		if x.order < y.order {
			return -1
		}
		return 1
	}
	kx, _ := bk.kv(&x)
	ky, _ := bk.kv(&y)
	if c := bytes.Compare(kx, ky); c != 0 {
		return c
	}
	fx, lx := bk.src(&x)
	fy, ly := bk.src(&y)
	if c := cmp.Compare(fx, fy); c != 0 {
		return c
	}
	return cmp.Compare(lx, ly)
}

func (bk *bucket) insertionSort(es []entry) {
	for i := 1; i < len(es); i++ {
		e := es[i]
		j := i
		for j > 0 && (e.order < es[j-1].order || e.order == es[j-1].order && bk.compare(e, es[j-1]) < 0) {
			es[j] = es[j-1]
			j--
		}
		es[j] = e
	}
}

// reset empties the batch, keeping its memory.
func (b *batch) reset() {
	for i := range b.buckets {
		bk := &b.buckets[i]
		for j := range bk.chunks {
			if cap(bk.chunks[j]) > b.chunkSize {
				// An oversized record's chunk is not kept.
				b.used -= int64(cap(bk.chunks[j]) - b.chunkSize)
				bk.chunks[j] = b.chunk(b.chunkSize)
			}
			bk.chunks[j] = bk.chunks[j][:0]
		}
		bk.cur = 0
		bk.entries = bk.entries[:0]
	}
	b.n = 0
}

// span is a partition's part of a sorted run.
type span struct {
	off, n int64 // disk runs: byte offset and entry count; memory runs: bucket<<32 | entry index, and count
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
	// A spilled record is the chunk's bytes (key, value, source varints)
	// after the key and value lengths: one copy per record, into buf.
	buf := make([]byte, 0, 1<<20)
	var off int64
	for bi := range b.buckets {
		bk := &b.buckets[bi]
		for i := range bk.entries {
			e := &bk.entries[i]
			p := pl.partitionOf(e.order)
			if r.parts[p].n == 0 {
				r.parts[p].off = off
			}
			rec := bk.raw(e)
			if len(buf)+len(rec)+2*binary.MaxVarintLen32 > cap(buf) && len(buf) > 0 {
				if _, err := f.Write(buf); err != nil {
					f.Close()
					return nil, fmt.Errorf("build: spill %s: %w", path, err)
				}
				buf = buf[:0]
			}
			n := len(buf)
			buf = binary.AppendUvarint(buf, uint64(e.klen))
			buf = binary.AppendUvarint(buf, uint64(e.vlen))
			buf = append(buf, rec...)
			off += int64(len(buf) - n)
			r.parts[p].n++
			r.parts[p].bytes += int64(len(buf) - n)
		}
	}
	if _, err := f.Write(buf); err != nil {
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
	for bi := range b.buckets {
		for i := range b.buckets[bi].entries {
			p := pl.partitionOf(b.buckets[bi].entries[i].order)
			if r.parts[p].n == 0 {
				r.parts[p].off = int64(bi)<<32 | int64(i)
			}
			r.parts[p].n++
		}
	}
	return r
}
