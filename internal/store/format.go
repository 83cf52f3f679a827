// Package store is batchkv's on-disk format: how a dataset version lays out
// Redis keys and values in a Pebble database, the metadata beside it, and the
// read-only access the server uses.
//
// A version directory holds:
//
//	dataset.json   the Meta below (written last by the builder)
//	db/            a Pebble database, written as ingested sstables
//
// Every Redis key is one Pebble key: an 8-byte big-endian order prefix followed
// by the key's bytes. The prefix puts the key's hash slot in the top 14 bits and
// the top 50 bits of its xxhash below, so
//   - a hash slot is a contiguous key range (CLUSTER COUNTKEYSINSLOT/GETKEYSINSLOT,
//     sharding by slot range);
//   - SCAN's cursor is simply the prefix of the next key to return: stateless,
//     valid across swaps, and it never skips a key present throughout.
//
// A value starts with one type byte. A string's bytes follow it. A hash holds a
// uvarint field count and then, per field, uvarint length + field bytes and
// uvarint length + value bytes, in the order the input gave them (redis-server
// keeps small hashes in insertion order, and replies in it).
package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/batchkv/batchkv/internal/slot"
	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/sstable/block"
)

// FormatVersion is the version of this layout, recorded in Meta.Format.
const FormatVersion = 1

// FormatMajorVersion is the Pebble format every dataset is built with and the
// server opens with. It is pinned so that a newer Pebble in the builder cannot
// produce files an older server cannot read.
const FormatMajorVersion = pebble.FormatTableFormatV6

// Files inside a version directory.
const (
	MetaFile = "dataset.json"
	DBDir    = "db"
)

// PrefixLen is the length of the order prefix in front of every Pebble key.
const PrefixLen = 8

// hashBits is how many bits of the key's hash sit below the slot in the prefix.
const hashBits = 64 - 14

// Type is the Redis type of a stored value.
type Type byte

const (
	TypeString Type = 1
	TypeHash   Type = 2
)

func (t Type) String() string {
	switch t {
	case TypeString:
		return "string"
	case TypeHash:
		return "hash"
	}
	return "none"
}

// Errors of the format.
var (
	ErrNotFound = errors.New("store: key not found")
	ErrCorrupt  = errors.New("store: corrupt value")
)

// Order returns the order prefix of a Redis key: its slot in the top 14 bits,
// then the top 50 bits of its xxhash.
func Order(key []byte) uint64 {
	return uint64(slot.Of(key))<<hashBits | xxhash.Sum64(key)>>14
}

// OrderAt returns the order prefix of a Redis key whose hash slot s the
// caller has computed already (slot.Of(key)).
func OrderAt(s uint16, key []byte) uint64 {
	return uint64(s)<<hashBits | xxhash.Sum64(key)>>14
}

// SlotOrder returns the smallest order prefix of keys in slot s.
func SlotOrder(s uint16) uint64 { return uint64(s) << hashBits }

// OrderSlot returns the hash slot encoded in an order prefix.
func OrderSlot(order uint64) uint16 { return uint16(order >> hashBits) }

// AppendKey appends the Pebble key of a Redis key to dst.
func AppendKey(dst, key []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, Order(key))
	return append(dst, key...)
}

// AppendKeyAt is AppendKey for a key whose hash slot s is known.
func AppendKeyAt(dst []byte, s uint16, key []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, OrderAt(s, key))
	return append(dst, key...)
}

// SplitKey returns the order prefix and the Redis key of a Pebble key.
func SplitKey(k []byte) (order uint64, key []byte, ok bool) {
	if len(k) < PrefixLen {
		return 0, nil, false
	}
	return binary.BigEndian.Uint64(k), k[PrefixLen:], true
}

// AppendString appends the encoded value of a Redis string to dst.
func AppendString(dst, v []byte) []byte {
	dst = append(dst, byte(TypeString))
	return append(dst, v...)
}

// AppendHashHeader starts an encoded hash of n fields; follow it with n calls
// of AppendHashField.
func AppendHashHeader(dst []byte, n int) []byte {
	dst = append(dst, byte(TypeHash))
	return binary.AppendUvarint(dst, uint64(n))
}

// AppendHashField appends one field and its value to an encoded hash.
func AppendHashField(dst, field, value []byte) []byte {
	if len(field) < 0x80 && len(value) < 0x80 {
		// The common case: both lengths are one-byte uvarints.
		dst = append(dst, byte(len(field)))
		dst = append(dst, field...)
		dst = append(dst, byte(len(value)))
		return append(dst, value...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(field)))
	dst = append(dst, field...)
	dst = binary.AppendUvarint(dst, uint64(len(value)))
	return append(dst, value...)
}

// Value is a decoded stored value. Its slices alias the buffer it was decoded
// from (for a value read from Pebble: valid until its closer is closed).
type Value struct {
	Type Type
	// Data is the string's bytes, or the encoded hash fields (see Hash).
	Data []byte
}

// DecodeValue splits a stored value into its type and payload.
func DecodeValue(b []byte) (Value, error) {
	if len(b) == 0 {
		return Value{}, fmt.Errorf("%w: empty", ErrCorrupt)
	}
	switch t := Type(b[0]); t {
	case TypeString, TypeHash:
		return Value{Type: t, Data: b[1:]}, nil
	default:
		return Value{}, fmt.Errorf("%w: unknown type byte %d", ErrCorrupt, b[0])
	}
}

// Hash is an encoded hash: a field count, then fields and values. It is read
// with Len, Range and Get without copying.
type Hash []byte

// Hash returns v's hash payload; v must be a TypeHash value.
func (v Value) Hash() Hash { return Hash(v.Data) }

// Len returns the number of fields in h.
func (h Hash) Len() (int, error) {
	n, w := binary.Uvarint(h)
	if w <= 0 || n > uint64(len(h)) {
		return 0, fmt.Errorf("%w: hash length", ErrCorrupt)
	}
	return int(n), nil
}

// Range calls fn for each field and value of h in stored order until fn
// returns false. The slices alias h.
func (h Hash) Range(fn func(field, value []byte) bool) error {
	n, w := binary.Uvarint(h)
	if w <= 0 {
		return fmt.Errorf("%w: hash length", ErrCorrupt)
	}
	b := h[w:]
	for i := uint64(0); i < n; i++ {
		var f, v []byte
		var ok bool
		if f, b, ok = readBytes(b); !ok {
			return fmt.Errorf("%w: hash field %d", ErrCorrupt, i)
		}
		if v, b, ok = readBytes(b); !ok {
			return fmt.Errorf("%w: hash value %d", ErrCorrupt, i)
		}
		if !fn(f, v) {
			return nil
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes in hash", ErrCorrupt, len(b))
	}
	return nil
}

// Get returns the value of field in h.
func (h Hash) Get(field []byte) (value []byte, found bool, err error) {
	err = h.Range(func(f, v []byte) bool {
		if string(f) == string(field) {
			value, found = v, true
			return false
		}
		return true
	})
	return value, found, err
}

func readBytes(b []byte) (field, rest []byte, ok bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return nil, nil, false
	}
	end := w + int(n)
	return b[w:end:end], b[end:], true
}

// Options returns the Pebble options every dataset is built and opened with:
// the pinned format, bloom filters on every level (Pebble's default has none,
// and lookups of absent keys are common), and per-block compression. cache may
// be nil; the server passes one cache shared by all open versions.
func Options(cache *pebble.Cache) *pebble.Options {
	o := &pebble.Options{
		Cache:              cache,
		FormatMajorVersion: FormatMajorVersion,
	}
	for i := range o.Levels {
		o.Levels[i].BlockSize = 16 << 10
		o.Levels[i].IndexBlockSize = 256 << 10
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		o.Levels[i].FilterType = pebble.TableFilter
		o.Levels[i].Compression = func() *block.CompressionProfile { return Compression }
	}
	o.EnsureDefaults()
	return o
}

// Compression is how data blocks are compressed: zstd (index blocks use the
// fastest codec). Keys are mostly hex or other text of little redundancy that
// Snappy cannot shrink (136 bytes per key on the benchmark dataset, 139
// uncompressed) and zstd's entropy coding can: see the Build section of
// docs/BENCHMARKS.md. The level depends on the zstd Pebble links (zstdData):
// level 1 of the C library with cgo (75 bytes per key), level 3 of the pure-Go
// port without (79; its level 1 leaves 113-122). Adaptive fallback is off, so
// every data block gets zstd whatever the input. Readers decode whatever a
// block says it holds, so this is a builder choice only; the server caches
// decompressed blocks, so a block is decompressed once per cache miss.
var Compression = func() *block.CompressionProfile {
	p := *block.BalancedCompression
	p.Name = "batchkv"
	p.DataBlocks, p.ValueBlocks = zstdData, zstdData
	p.AdaptiveReductionCutoffPercent = 0
	return &p
}()

// WriterOptions returns the options for writing an sstable that will be
// ingested into a database opened with Options: the bottom level's settings at
// the pinned table format.
func WriterOptions() sstable.WriterOptions {
	o := Options(nil)
	w := o.MakeWriterOptions(len(o.Levels)-1, FormatMajorVersion.MaxTableFormat())
	w.WritingToLowestLevel = true
	return w
}
