package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/sstable/block"
	"github.com/cockroachdb/pebble/v2/sstable/colblk"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// The point-lookup path.
//
// A GET through pebble.DB.Get builds a merging iterator over the version's
// levels, finds the table, binary-searches its index block, takes the data
// block from the block cache (a hash-map lookup and two atomic reference
// count updates) and binary-searches the block's columnar key encoding. That
// is ~3.5 µs per key with every block cached on this machine, more than a
// whole redis-server request. A dataset version is immutable and batchkv
// builds it as one run of non-overlapping tables, so a point lookup can go
// straight to the block instead:
//
//   - At open, the index blocks of every table are read once into one flat
//     array of block upper bounds (the first 8 bytes of each separator as a
//     uint64, the whole separator for ties) and block handles. That is
//     ~30 bytes per 16 KiB data block (< 0.3 bytes per key).
//   - A lookup binary-searches that array on the key's 8-byte order prefix,
//     which is a uniformly distributed hash, with integer comparisons.
//   - A data block is read with pread, its checksum verified, decompressed
//     and decoded once into a dataBlock: the order prefixes as []uint64 and
//     the keys and values back to back. The blockCache bounds their memory.
//   - Within a block, the key is found by a binary search on the prefixes and
//     one comparison of the key's bytes.
//
// The Pebble database stays open: it validated the version, and scans and
// iteration keep using it. A version whose layout this path does not know
// (tables that overlap, value blocks, a non-columnar format, another key
// schema) is served by pebble.DB.Get as before; see openIndex.

// pointIndex is the point-lookup path of one open version.
type pointIndex struct {
	cache  *blockCache
	tables []indexTable

	// Per data block, in key order across all tables: the first 8 bytes of
	// its separator (an upper bound of its keys, zero-padded), the
	// separator's end in seps, and where the block is.
	sepPrefix []uint64
	sepEnd    []uint32
	seps      []byte
	handles   []blockHandle

	blocks []atomic.Pointer[dataBlock]
	closed bool // set under cache.mu by drop

	// loading holds the block loads in flight, so that readers missing the
	// same block wait for one read and decompression instead of each doing
	// it (a burst of clients on a block just evicted, or a huge value's).
	loadMu  sync.Mutex
	loading map[int]*blockLoad
}

type blockLoad struct {
	done chan struct{}
	b    *dataBlock
	err  error
}

type indexTable struct {
	r        *sstable.Reader
	readable objstorage.Readable
	checksum block.ChecksumType
	name     string
}

type blockHandle struct {
	off   uint64
	len   uint32
	table uint32
}

// keySchema is the columnar key layout Pebble writes by default, the one
// every batchkv table has.
var keySchema = colblk.DefaultKeySchema(pebble.DefaultComparer, 16)

// errNoIndex says a version's layout is not one the point-lookup path serves.
var errNoIndex = errors.New("layout not served by the point index")

// openIndex reads the index blocks of every table of pdb. It returns
// errNoIndex (wrapped) when the layout does not allow this path, other errors
// when a table cannot be read.
func openIndex(dbDir string, pdb *pebble.DB, cache *blockCache) (*pointIndex, error) {
	levels, err := pdb.SSTables()
	if err != nil {
		return nil, fmt.Errorf("store: list tables: %w", err)
	}
	var infos []pebble.SSTableInfo
	for _, lvl := range levels {
		for _, t := range lvl {
			if t.Virtual || t.BackingType != pebble.BackingTypeLocal {
				return nil, fmt.Errorf("%w: table %s is not a local physical table", errNoIndex, t.FileNum)
			}
			infos = append(infos, t)
		}
	}
	slices.SortFunc(infos, func(a, b pebble.SSTableInfo) int { return bytes.Compare(a.Smallest.UserKey, b.Smallest.UserKey) })
	for i := 1; i < len(infos); i++ {
		if bytes.Compare(infos[i-1].Largest.UserKey, infos[i].Smallest.UserKey) >= 0 {
			return nil, fmt.Errorf("%w: tables %s and %s overlap", errNoIndex, infos[i-1].FileNum, infos[i].FileNum)
		}
	}
	x := &pointIndex{cache: cache}
	ok := false
	defer func() {
		if !ok {
			x.closeTables()
		}
	}()
	for _, t := range infos {
		if err := x.addTable(filepath.Join(dbDir, fmt.Sprintf("%06d.sst", t.BackingSSTNum)), t.Largest.UserKey); err != nil {
			return nil, err
		}
	}
	x.blocks = make([]atomic.Pointer[dataBlock], len(x.handles))
	ok = true
	return x, nil
}

// addTable opens the table at path, whose largest key is largest, and
// appends its data blocks to the index.
func (x *pointIndex) addTable(path string, largest []byte) error {
	f, err := vfs.Default.Open(path)
	if err != nil {
		return fmt.Errorf("store: open table: %w", err)
	}
	readable, err := sstable.NewSimpleReadable(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("store: open table %s: %w", path, err)
	}
	r, err := sstable.NewReader(context.Background(), readable, sstable.ReaderOptions{})
	if err != nil {
		readable.Close()
		return fmt.Errorf("store: open table %s: %w", path, err)
	}
	x.tables = append(x.tables, indexTable{r: r, readable: readable, checksum: r.BlockReader().ChecksumType(), name: filepath.Base(path)})
	ti := uint32(len(x.tables) - 1)

	format, err := r.TableFormat()
	if err != nil {
		return fmt.Errorf("store: table %s: %w", path, err)
	}
	if !format.BlockColumnar() {
		return fmt.Errorf("%w: table %s has the row format %s", errNoIndex, path, format)
	}
	props, err := r.ReadPropertiesBlock(context.Background(), nil)
	if err != nil {
		return fmt.Errorf("store: table %s properties: %w", path, err)
	}
	if props.KeySchemaName != keySchema.Name {
		return fmt.Errorf("%w: table %s has key schema %q", errNoIndex, path, props.KeySchemaName)
	}
	if props.NumRangeDeletions != 0 || props.NumRangeKeys() != 0 || props.NumValuesInValueBlocks != 0 {
		return fmt.Errorf("%w: table %s has range deletions, range keys or value blocks", errNoIndex, path)
	}
	layout, err := r.Layout()
	if err != nil {
		return fmt.Errorf("store: table %s layout: %w", path, err)
	}
	if layout.ValueIndex.Length != 0 || layout.BlobReferenceIndex.Length != 0 {
		return fmt.Errorf("%w: table %s has value or blob blocks", errNoIndex, path)
	}
	first := len(x.handles)
	var it colblk.IndexIter
	for _, ih := range layout.Index {
		data, err := x.readBlock(ti, ih.Offset, ih.Length, nil)
		if err != nil {
			return fmt.Errorf("store: table %s index block: %w", path, err)
		}
		if err := it.Init(pebble.DefaultComparer, data, block.NoTransforms); err != nil {
			return fmt.Errorf("store: table %s index block: %w", path, err)
		}
		for valid := it.First(); valid; valid = it.Next() {
			h, err := it.BlockHandleWithProperties()
			if err != nil {
				return fmt.Errorf("store: table %s index entry: %w", path, err)
			}
			if h.Length > 1<<31 {
				return fmt.Errorf("store: table %s: data block of %d bytes", path, h.Length)
			}
			x.addBlock(it.Separator(), blockHandle{off: h.Offset, len: uint32(h.Length), table: ti})
		}
		it.Close()
	}
	if len(x.handles) == first {
		return fmt.Errorf("store: table %s has no data blocks", path)
	}
	// The last block's separator is a successor of the table's last key,
	// which can reach past the next table's first key ("ab" after "aa95…"
	// when the next table starts at "aaa5…"): bound it by the table's
	// largest key instead, so that the concatenation stays ordered.
	h := x.handles[len(x.handles)-1]
	x.handles = x.handles[:len(x.handles)-1]
	x.sepPrefix = x.sepPrefix[:len(x.sepPrefix)-1]
	x.sepEnd = x.sepEnd[:len(x.sepEnd)-1]
	x.seps = x.seps[:x.sepStart(len(x.handles))]
	x.addBlock(largest, h)
	if len(x.seps) > 1<<32-1 {
		return fmt.Errorf("store: table %s: index separators over 4 GiB", path)
	}
	return nil
}

// addBlock appends a data block whose keys are all <= sep.
func (x *pointIndex) addBlock(sep []byte, h blockHandle) {
	var p [8]byte
	copy(p[:], sep)
	x.sepPrefix = append(x.sepPrefix, binary.BigEndian.Uint64(p[:]))
	x.seps = append(x.seps, sep...)
	x.sepEnd = append(x.sepEnd, uint32(len(x.seps)))
	x.handles = append(x.handles, h)
}

func (x *pointIndex) sepStart(i int) uint32 {
	if i == 0 {
		return 0
	}
	return x.sepEnd[i-1]
}

// rawPool holds the buffers blocks are read into, bufPool those they are
// decompressed into: the decoded dataBlock copies what it keeps, so both are
// reused.
var rawPool, bufPool = sync.Pool{New: func() any { return new([]byte) }}, sync.Pool{New: func() any { return new([]byte) }}

// readBlock reads the block at off (length n, without trailer) of table ti,
// verifies its checksum and returns it decompressed, in *buf if it fits
// (buf may be nil).
func (x *pointIndex) readBlock(ti uint32, off uint64, n uint64, buf *[]byte) ([]byte, error) {
	t := &x.tables[ti]
	rp := rawPool.Get().(*[]byte)
	defer rawPool.Put(rp)
	if uint64(cap(*rp)) < n+block.TrailerLen {
		*rp = make([]byte, n+block.TrailerLen)
	}
	raw := (*rp)[:n+block.TrailerLen]
	if err := t.readable.ReadAt(context.Background(), raw, int64(off)); err != nil {
		return nil, fmt.Errorf("read %s at %d: %w", t.name, off, err)
	}
	bh := block.Handle{Offset: off, Length: n}
	if err := block.ValidateChecksum(t.checksum, raw, bh); err != nil {
		return nil, fmt.Errorf("%s: %w", t.name, err)
	}
	ci := block.CompressionIndicator(raw[n])
	data := raw[:n]
	if ci == block.NoCompressionIndicator {
		// raw goes back to its pool: hand out a copy.
		out := sized(buf, int(n))
		copy(out, data)
		return out, nil
	}
	dn, err := block.DecompressedLen(ci, data)
	if err != nil {
		return nil, fmt.Errorf("%s block at %d: %w", t.name, off, err)
	}
	out := sized(buf, dn)
	if err := decompress(ci, data, out); err != nil {
		return nil, fmt.Errorf("%s block at %d: %w", t.name, off, err)
	}
	return out, nil
}

// sized returns a slice of n bytes: *buf's if it is large enough, else a new
// one that replaces it (buf may be nil). Both start 8-byte aligned, as the
// columnar decoders require.
func sized(buf *[]byte, n int) []byte {
	if buf != nil && cap(*buf) >= n {
		return (*buf)[:n]
	}
	out := make([]byte, n)
	if buf != nil {
		*buf = out
	}
	return out
}

// dataBlock is a decoded data block: per key its order prefix and where its
// bytes (without prefix) and its value's are in data. A lookup touches the
// block's header, one or two entries and the key's bytes: three or four cache
// lines, where a binary search over a columnar block touches a dozen.
type dataBlock struct {
	ref         atomic.Bool // read since the cache's hand last passed
	first, last uint64      // orders of the first and last entries
	entries     []blockEntry
	data        []byte
	size        int64
}

type blockEntry struct {
	order            uint64
	key, value, vend uint32
}

// find returns the value of the Redis key with the given order prefix.
//
// Order prefixes are hashes, spread evenly between a block's first and last,
// so the position is first guessed by interpolation and then found by a
// short linear walk: one or two cache lines of entries instead of the seven
// a binary search over ~120 keys touches, each a likely cache miss.
func (b *dataBlock) find(order uint64, key []byte) ([]byte, bool) {
	if order < b.first || order > b.last {
		return nil, false
	}
	e := b.entries
	n := len(e)
	i := 0
	if span := b.last - b.first; span > 0 {
		// A float estimate is plenty: it only picks where the walk starts.
		i = min(int(float64(order-b.first)/float64(span)*float64(n-1)), n-1)
	}
	for i > 0 && e[i-1].order >= order {
		i--
	}
	for i < n && e[i].order < order {
		i++
	}
	for ; i < n && e[i].order == order; i++ {
		if string(b.data[e[i].key:e[i].value]) == string(key) {
			return b.data[e[i].value:e[i].vend:e[i].vend], true
		}
	}
	return nil, false
}

// get returns the stored value of the Redis key whose Pebble key is pk. The
// value stays valid as long as the caller holds it (the garbage collector
// keeps its block alive).
func (x *pointIndex) get(pk []byte) ([]byte, error) {
	order := binary.BigEndian.Uint64(pk)
	n := len(x.sepPrefix)
	lo := searchPrefixes(x.sepPrefix, order)
	// Separators whose first 8 bytes equal the key's need the full
	// comparison: the first block whose separator is >= pk holds it.
	for lo < n && x.sepPrefix[lo] == order && bytes.Compare(x.sep(lo), pk) < 0 {
		lo++
	}
	if lo == n {
		return nil, ErrNotFound
	}
	b := x.blocks[lo].Load()
	if b == nil {
		var err error
		if b, err = x.load(lo); err != nil {
			return nil, err
		}
	} else if !b.ref.Load() {
		b.ref.Store(true)
	}
	v, ok := b.find(order, pk[PrefixLen:])
	if !ok {
		return nil, ErrNotFound
	}
	return v, nil
}

// searchPrefixes returns the first i with p[i] >= order (len(p) if none) of
// the sorted p. Order prefixes are hashes, spread evenly over the range of a
// version's (or shard's) keys, so it starts where interpolation puts order
// and gallops to bracket it before the binary search: a few cache lines even
// for the millions of blocks of a dataset of hundreds of GB, where a plain
// binary search would take a cache miss on most of its ~23 steps.
func searchPrefixes(p []uint64, order uint64) int {
	n := len(p)
	lo, hi := 0, n
	if n > 64 {
		first, last := p[0], p[n-1]
		if order <= first {
			return 0
		}
		if order > last {
			return n
		}
		est := min(int(float64(order-first)/float64(last-first)*float64(n-1)), n-1)
		step := 16
		if p[est] < order {
			// The answer is above est: widen upwards until p[hi] >= order.
			lo, hi = est+1, est+1+step
			for hi < n && p[hi] < order {
				lo = hi + 1
				step *= 2
				hi = lo + step
			}
			hi = min(hi, n)
		} else {
			// The answer is at or below est: widen downwards until
			// p[lo] < order.
			hi, lo = est, est-step
			for lo > 0 && p[lo] >= order {
				hi = lo
				step *= 2
				lo = hi - step
			}
			lo = max(lo, 0)
		}
	}
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if p[m] < order {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (x *pointIndex) sep(i int) []byte { return x.seps[x.sepStart(i):x.sepEnd[i]] }

// load reads, decodes and caches block i; readers missing the same block at
// once share one load.
func (x *pointIndex) load(i int) (*dataBlock, error) {
	x.loadMu.Lock()
	if l, ok := x.loading[i]; ok {
		x.loadMu.Unlock()
		<-l.done
		return l.b, l.err
	}
	if x.loading == nil {
		x.loading = make(map[int]*blockLoad)
	}
	l := &blockLoad{done: make(chan struct{})}
	x.loading[i] = l
	x.loadMu.Unlock()
	l.b, l.err = x.loadOnce(i)
	x.loadMu.Lock()
	delete(x.loading, i)
	x.loadMu.Unlock()
	close(l.done)
	return l.b, l.err
}

func (x *pointIndex) loadOnce(i int) (*dataBlock, error) {
	x.cache.loads.Add(1)
	h := x.handles[i]
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	data, err := x.readBlock(h.table, h.off, uint64(h.len), bp)
	if err != nil {
		return nil, fmt.Errorf("store: get: %w", err)
	}
	b, err := decodeBlock(data)
	if err != nil {
		return nil, fmt.Errorf("store: get: %s block at %d: %w", x.tables[h.table].name, h.off, err)
	}
	b.ref.Store(true)
	if !x.blocks[i].CompareAndSwap(nil, b) {
		if cur := x.blocks[i].Load(); cur != nil {
			return cur, nil
		}
		return b, nil
	}
	x.cache.add(x, i, b)
	return b, nil
}

// decodeBlock decodes a columnar data block.
func decodeBlock(data []byte) (b *dataBlock, err error) {
	if uintptr(len(data)) < 8 {
		return nil, fmt.Errorf("%w: data block of %d bytes", ErrCorrupt, len(data))
	}
	// The decoder trusts the block's internal offsets; the checksum matched,
	// so a panic here means a bug or a format change, not bad input. Turn it
	// into an error for the one request rather than a crashed server.
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("%w: data block: %v", ErrCorrupt, r)
		}
	}()
	var dec colblk.DataBlockDecoder
	dec.Init(&keySchema, data)
	var it colblk.DataBlockIter
	it.InitOnce(&keySchema, pebble.DefaultComparer, nil)
	if err := it.Init(&dec, block.NoTransforms); err != nil {
		return nil, err
	}
	// Two passes: the first checks every entry and sizes the block, so the
	// second fills allocations of exactly the right size (what the cache
	// accounts for is what the heap holds).
	n, size := 0, 0
	for kv := it.First(); kv != nil; kv = it.Next() {
		if k := kv.K.Kind(); k != pebble.InternalKeyKindSet && k != pebble.InternalKeyKindSetWithDelete {
			return nil, fmt.Errorf("%w: key of kind %s in a data block", ErrCorrupt, k)
		}
		if !kv.V.IsInPlaceValue() {
			return nil, fmt.Errorf("%w: value stored outside its data block", ErrCorrupt)
		}
		if len(kv.K.UserKey) < PrefixLen {
			return nil, fmt.Errorf("%w: short key", ErrCorrupt)
		}
		n++
		size += len(kv.K.UserKey) - PrefixLen + len(kv.V.InPlaceValue())
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if size > math.MaxUint32 {
		return nil, fmt.Errorf("%w: data block of %d bytes decoded", ErrCorrupt, size)
	}
	b = &dataBlock{data: make([]byte, 0, size), entries: make([]blockEntry, 0, n)}
	for kv := it.First(); kv != nil; kv = it.Next() {
		uk := kv.K.UserKey
		e := blockEntry{order: binary.BigEndian.Uint64(uk), key: uint32(len(b.data))}
		b.data = append(b.data, uk[PrefixLen:]...)
		e.value = uint32(len(b.data))
		b.data = append(b.data, kv.V.InPlaceValue()...)
		e.vend = uint32(len(b.data))
		b.entries = append(b.entries, e)
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	it.Close()
	if len(b.entries) == 0 {
		return nil, fmt.Errorf("%w: empty data block", ErrCorrupt)
	}
	if len(b.entries) != n || len(b.data) != size {
		return nil, fmt.Errorf("%w: data block changed between passes", ErrCorrupt)
	}
	b.first, b.last = b.entries[0].order, b.entries[len(b.entries)-1].order
	b.size = int64(cap(b.data) + 24*cap(b.entries) + 96)
	return b, nil
}

// close drops the version's cached blocks and closes its table readers.
func (x *pointIndex) close() error {
	x.cache.drop(x)
	return x.closeTables()
}

func (x *pointIndex) closeTables() error {
	var first error
	for _, t := range x.tables {
		if err := t.r.Close(); err != nil && first == nil {
			first = err
		}
	}
	x.tables = nil
	return first
}
