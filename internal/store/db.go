package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// DB is one dataset version opened read-only. All methods are safe for
// concurrent use. Close must not be called while reads are in flight (the
// swap package's reference counting guarantees that).
type DB struct {
	dir  string
	meta *Meta
	pdb  *pebble.DB
	// idx is the point-lookup path (index.go); nil when the version's layout
	// is not one it serves, and Get goes through Pebble.
	idx *pointIndex
	// noIndex says why idx is nil.
	noIndex error
	// own is the private cache of a DB opened without one.
	own *Cache
}

// Open opens the version in dir read-only. cache is the memory shared by
// every open version (nil: a private cache of 64 MiB, for tools).
//
// Pebble creates a LOCK file in the database directory even when read-only,
// and refuses to open the same directory twice in one process: dir/db must be
// writable by the server, and a version must be closed before it is reopened.
func Open(dir string, cache *Cache) (*DB, error) {
	meta, err := ReadMeta(dir)
	if err != nil {
		return nil, err
	}
	dbDir := filepath.Join(dir, DBDir)
	if _, err := os.Stat(dbDir); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	d := &DB{dir: dir, meta: meta}
	if cache == nil {
		d.own = NewCache(64 << 20)
		cache = d.own
	}
	opts := Options(cache.pebble)
	opts.ReadOnly = true
	opts.ErrorIfNotExists = true
	opts.Logger = quietLogger{}
	if d.pdb, err = pebble.Open(dbDir, opts); err != nil {
		d.closeOwn()
		return nil, fmt.Errorf("store: open %s: %w", dbDir, err)
	}
	d.idx, err = openIndex(dbDir, d.pdb, cache.blocks)
	if errors.Is(err, errNoIndex) {
		d.noIndex, err = err, nil
	}
	if err != nil {
		d.pdb.Close()
		d.closeOwn()
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	return d, nil
}

func (d *DB) closeOwn() {
	if d.own != nil {
		d.own.Close()
		d.own = nil
	}
}

// Indexed reports whether point lookups take batchkv's own path.
func (d *DB) Indexed() bool { return d.idx != nil }

// Dir returns the version directory.
func (d *DB) Dir() string { return d.dir }

// Meta returns the version's metadata. The caller must not modify it.
func (d *DB) Meta() *Meta { return d.meta }

// Pebble returns the underlying database, for warming and metrics.
func (d *DB) Pebble() *pebble.DB { return d.pdb }

// Close closes the database.
func (d *DB) Close() error {
	var err error
	if d.idx != nil {
		err = d.idx.close()
	}
	if perr := d.pdb.Close(); perr != nil && err == nil {
		err = perr
	}
	d.closeOwn()
	if err != nil {
		return fmt.Errorf("store: close %s: %w", d.dir, err)
	}
	return nil
}

var keyBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 128); return &b }}

// Get looks up a Redis key. The returned value is valid until closer is
// closed, which the caller must do; on error there is nothing to close.
// A missing key is ErrNotFound.
func (d *DB) Get(key []byte) (Value, io.Closer, error) {
	if d.idx != nil {
		var kb [PrefixLen + 120]byte
		raw, err := d.idx.get(AppendKey(kb[:0], key))
		if err != nil {
			return Value{}, nil, err
		}
		v, err := DecodeValue(raw)
		if err != nil {
			return Value{}, nil, err
		}
		return v, NopCloser{}, nil
	}
	bp := keyBufPool.Get().(*[]byte)
	k := AppendKey((*bp)[:0], key)
	raw, closer, err := d.pdb.Get(k)
	*bp = k
	keyBufPool.Put(bp)
	if err != nil {
		if errors.Is(err, pebble.ErrNotFound) {
			return Value{}, nil, ErrNotFound
		}
		return Value{}, nil, fmt.Errorf("store: get: %w", err)
	}
	v, err := DecodeValue(raw)
	if err != nil {
		closer.Close()
		return Value{}, nil, err
	}
	return v, closer, nil
}

// NopCloser is the closer of a value that needs no release (Get's through
// the point index: the garbage collector keeps its block alive).
type NopCloser struct{}

func (NopCloser) Close() error { return nil }

// Has reports whether key exists.
func (d *DB) Has(key []byte) (bool, error) {
	_, closer, err := d.Get(key)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	closer.Close()
	return true, nil
}

// Scan visits keys in order prefix order starting at cursor (0: the
// beginning), calling fn with each key and its value until at least count keys
// were visited, and returns the cursor to resume from (0 when the scan is
// complete). Keys that share an order prefix are always visited in the same
// call, so a cursor never splits them. Slices passed to fn are valid only
// during the call.
func (d *DB) Scan(cursor uint64, count int, fn func(key []byte, v Value) error) (next uint64, err error) {
	return d.ScanRange(cursor, 0, count, fn)
}

// ScanRange is Scan limited to order prefixes below end (0: no limit).
func (d *DB) ScanRange(cursor, end uint64, count int, fn func(key []byte, v Value) error) (next uint64, err error) {
	if count < 1 {
		count = 1
	}
	var lower [PrefixLen]byte
	binary.BigEndian.PutUint64(lower[:], cursor)
	opts := &pebble.IterOptions{LowerBound: lower[:]}
	if end != 0 {
		var upper [PrefixLen]byte
		binary.BigEndian.PutUint64(upper[:], end)
		opts.UpperBound = upper[:]
	}
	it, err := d.pdb.NewIter(opts)
	if err != nil {
		return 0, fmt.Errorf("store: scan: %w", err)
	}
	defer it.Close()
	visited := 0
	var last uint64
	for ok := it.First(); ok; ok = it.Next() {
		order, key, valid := SplitKey(it.Key())
		if !valid {
			return 0, fmt.Errorf("%w: short key", ErrCorrupt)
		}
		if visited >= count && order != last {
			return order, nil
		}
		raw, err := it.ValueAndErr()
		if err != nil {
			return 0, fmt.Errorf("store: scan: %w", err)
		}
		v, err := DecodeValue(raw)
		if err != nil {
			return 0, err
		}
		if err := fn(key, v); err != nil {
			return 0, err
		}
		visited++
		last = order
	}
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("store: scan: %w", err)
	}
	return 0, nil
}

// RandomKey returns the first key at or after the order prefix r (wrapping
// around), so a uniformly random r picks a near-uniformly random key. It
// returns ErrNotFound for an empty dataset.
func (d *DB) RandomKey(r uint64) ([]byte, error) {
	var lower [PrefixLen]byte
	binary.BigEndian.PutUint64(lower[:], r)
	it, err := d.pdb.NewIter(nil)
	if err != nil {
		return nil, fmt.Errorf("store: randomkey: %w", err)
	}
	defer it.Close()
	ok := it.SeekGE(lower[:])
	if !ok {
		ok = it.First()
	}
	if !ok {
		if err := it.Error(); err != nil {
			return nil, fmt.Errorf("store: randomkey: %w", err)
		}
		return nil, ErrNotFound
	}
	_, key, valid := SplitKey(it.Key())
	if !valid {
		return nil, fmt.Errorf("%w: short key", ErrCorrupt)
	}
	return append([]byte(nil), key...), nil
}

// CountSlot returns the number of keys in hash slot s.
func (d *DB) CountSlot(s uint16) (int64, error) {
	var n int64
	_, err := d.ScanRange(SlotOrder(s), SlotOrder(s)+1<<hashBits, 1<<62, func([]byte, Value) error {
		n++
		return nil
	})
	return n, err
}

// quietLogger keeps Pebble's informational chatter out of the server's log;
// errors surface through returned errors. Fatalf still stops the process, as
// Pebble requires.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble: fatal: "+format+"\n", args...)
	os.Exit(2)
}
