package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// rawEntry is a Pebble key and its stored value.
type rawEntry struct{ pk, v []byte }

// writeTables writes entries (sorted here) as nTables sstables of disjoint
// key ranges and creates a version from them.
func writeTables(t *testing.T, entries []rawEntry, nTables int) string {
	t.Helper()
	slices.SortFunc(entries, func(a, b rawEntry) int { return bytes.Compare(a.pk, b.pk) })
	tmp := t.TempDir()
	var paths []string
	per := (len(entries) + nTables - 1) / nTables
	for i := 0; i < len(entries); i += per {
		p := filepath.Join(tmp, fmt.Sprintf("t%d.sst", len(paths)))
		w, err := NewTableWriter(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries[i:min(i+per, len(entries))] {
			if err := w.Add(e.pk, e.v); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	dir := filepath.Join(tmp, "v")
	if err := CreateVersion(context.Background(), dir, &Meta{Format: FormatVersion, Name: "t", Version: "v", Keys: int64(len(entries)), Strings: int64(len(entries))}, paths); err != nil {
		t.Fatal(err)
	}
	return dir
}

// testEntries returns n Redis keys with values of varied sizes: small
// counters, hashes, and every 500th a value larger than a data block.
func testEntries(n int, seed uint64) (keys [][]byte, entries []rawEntry) {
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range n {
		k := []byte(fmt.Sprintf("key:%d:%x", i, r.Uint64()))
		var v []byte
		switch {
		case i%500 == 7:
			v = AppendString(nil, bytes.Repeat([]byte{byte(i)}, 20<<10+i))
		case i%3 == 0:
			v = hashValue("a", fmt.Sprint(i), "bb", strings.Repeat("x", i%40))
		default:
			v = AppendString(nil, []byte(fmt.Sprint(r.IntN(1e6))))
		}
		keys = append(keys, k)
		entries = append(entries, rawEntry{AppendKey(nil, k), v})
	}
	return keys, entries
}

func openWith(t *testing.T, dir string, c *Cache) *DB {
	t.Helper()
	db, err := Open(dir, c)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// pebbleGet is the reference: the value through Pebble's own read path.
func pebbleGet(t *testing.T, db *DB, pk []byte) ([]byte, bool) {
	t.Helper()
	v, c, err := db.pdb.Get(pk)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return slices.Clone(v), true
}

func TestPointIndexMatchesPebble(t *testing.T) {
	keys, entries := testEntries(30000, 1)
	for _, tables := range []int{1, 3} {
		t.Run(fmt.Sprintf("tables=%d", tables), func(t *testing.T) {
			db := openWith(t, writeTables(t, slices.Clone(entries), tables), nil)
			defer db.Close()
			if db.idx == nil {
				t.Fatalf("point index not used: %v", db.noIndex)
			}
			if len(db.idx.tables) != tables {
				t.Fatalf("%d tables indexed, want %d", len(db.idx.tables), tables)
			}
			for _, k := range keys {
				pk := AppendKey(nil, k)
				want, _ := pebbleGet(t, db, pk)
				got, err := db.idx.get(pk)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("get(%q) = %d bytes, %v; want %d bytes", k, len(got), err, len(want))
				}
				v, c, err := db.Get(k)
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				if wv, _ := DecodeValue(want); v.Type != wv.Type || !bytes.Equal(v.Data, wv.Data) {
					t.Fatalf("Get(%q) differs from Pebble", k)
				}
			}
			// Absent keys, including ones ordered before, between and after
			// every stored key.
			for i := range 5000 {
				k := []byte(fmt.Sprintf("absent:%d", i))
				if _, err := db.idx.get(AppendKey(nil, k)); !errors.Is(err, ErrNotFound) {
					t.Fatalf("get(%q) = %v, want ErrNotFound", k, err)
				}
			}
			for _, pk := range [][]byte{make([]byte, 8), bytes.Repeat([]byte{0xff}, 80)} {
				if _, err := db.idx.get(pk); !errors.Is(err, ErrNotFound) {
					t.Fatalf("get(%x) = %v, want ErrNotFound", pk, err)
				}
			}
		})
	}
}

// Keys whose order prefixes are equal (a 50-bit hash collision within a slot
// is rare but possible) can straddle data blocks and index separators; the
// full-key comparisons must still find each.
func TestPointIndexEqualPrefixes(t *testing.T) {
	var entries []rawEntry
	prefixes := []uint64{1 << 40, 1<<40 + 1, 7 << 50}
	for _, p := range prefixes {
		for i := range 200 {
			pk := binary.BigEndian.AppendUint64(nil, p)
			pk = fmt.Appendf(pk, "k%04d", i)
			entries = append(entries, rawEntry{pk, AppendString(nil, bytes.Repeat([]byte{byte(i)}, 700))})
		}
	}
	dir := writeTables(t, slices.Clone(entries), 2)
	db := openWith(t, dir, nil)
	defer db.Close()
	if len(db.idx.handles) < 10 {
		t.Fatalf("only %d data blocks: the keys must span many", len(db.idx.handles))
	}
	for _, e := range entries {
		got, err := db.idx.get(e.pk)
		if err != nil || !bytes.Equal(got, e.v) {
			t.Fatalf("get(%x) = %v", e.pk, err)
		}
		miss := append(slices.Clone(e.pk), '!')
		if _, err := db.idx.get(miss); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get(%q) = %v, want ErrNotFound", miss, err)
		}
	}
}

// A cache far smaller than the data evicts as readers on several goroutines
// keep reading: every value stays right, the budget holds, and closing the
// version returns every byte.
func TestBlockCacheEvictsUnderConcurrentReads(t *testing.T) {
	keys, entries := testEntries(20000, 2)
	want := map[string][]byte{}
	for i, k := range keys {
		want[string(k)] = entries[i].v
	}
	dir := writeTables(t, slices.Clone(entries), 2)
	c := &Cache{blocks: &blockCache{budget: 256 << 10}, pebble: pebble.NewCache(8 << 20)}
	defer c.Close()
	db := openWith(t, dir, c)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 9))
			for range 5000 {
				k := keys[r.IntN(len(keys))]
				v, cl, err := db.Get(k)
				if err != nil {
					errs <- err
					return
				}
				stored := append([]byte{byte(v.Type)}, v.Data...)
				cl.Close()
				if !bytes.Equal(stored, want[string(k)]) {
					errs <- fmt.Errorf("Get(%q): wrong value", k)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.Evictions == 0 || st.Loads <= int64(st.Blocks) {
		t.Fatalf("no eviction with a 256 KiB budget: %+v", st)
	}
	// One block over the budget at most (the one just added, if it alone is
	// larger): the largest test value is ~30 KiB.
	if st.BlockBytes > st.BlockBudget+64<<10 {
		t.Fatalf("cache holds %d bytes, budget %d", st.BlockBytes, st.BlockBudget)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.BlockBytes != 0 || st.Blocks != 0 {
		t.Fatalf("after close the cache still holds %d bytes in %d blocks", st.BlockBytes, st.Blocks)
	}
}

// A flipped byte in a data block fails that block's checksum: reads of its
// keys get an error, never a wrong value, and the other keys still read.
func TestPointIndexCorruptBlock(t *testing.T) {
	keys, entries := testEntries(5000, 3)
	entries = slices.Clone(entries)
	dir := writeTables(t, slices.Clone(entries), 1)
	ssts, _ := filepath.Glob(filepath.Join(dir, DBDir, "*.sst"))
	if len(ssts) != 1 {
		t.Fatalf("tables: %v", ssts)
	}
	db := openWith(t, dir, nil)
	h := db.idx.handles[len(db.idx.handles)/2]
	db.Close()
	f, err := os.OpenFile(ssts[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	off := int64(h.off) + int64(h.len)/2
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	f.Close()

	db = openWith(t, dir, nil)
	defer db.Close()
	bad, good := 0, 0
	for i, k := range keys {
		v, c, err := db.Get(k)
		if err != nil {
			if !strings.Contains(err.Error(), "checksum") {
				t.Fatalf("Get(%q): %v, want a checksum error", k, err)
			}
			bad++
			continue
		}
		c.Close()
		if stored := append([]byte{byte(v.Type)}, v.Data...); !bytes.Equal(stored, entries[i].v) {
			t.Fatalf("Get(%q) returned a wrong value", k)
		}
		good++
	}
	if bad == 0 || good == 0 {
		t.Fatalf("%d reads failed and %d succeeded: want both", bad, good)
	}
}

// A database the point index does not serve (here: overlapping tables
// written through Pebble's memtable) is read through Pebble instead.
func TestPointIndexFallback(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "v")
	opts := Options(nil)
	opts.Logger = quietLogger{}
	opts.DisableAutomaticCompactions = true // keep the two flushed tables overlapping
	pdb, err := pebble.Open(filepath.Join(dir, DBDir), opts)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		for i := range 100 {
			k := []byte(fmt.Sprintf("k%d", i))
			if err := pdb.Set(AppendKey(nil, k), AppendString(nil, []byte(fmt.Sprint(round))), pebble.NoSync); err != nil {
				t.Fatal(err)
			}
		}
		if err := pdb.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := pdb.Close(); err != nil {
		t.Fatal(err)
	}
	if err := WriteMeta(dir, &Meta{Format: FormatVersion, Name: "t", Version: "v", Keys: 100, Strings: 100}); err != nil {
		t.Fatal(err)
	}
	db := openWith(t, dir, nil)
	defer db.Close()
	if db.idx != nil || !errors.Is(db.noIndex, errNoIndex) {
		t.Fatalf("point index %v (%v); want the fallback", db.idx != nil, db.noIndex)
	}
	v, c, err := db.Get([]byte("k42"))
	if err != nil || string(v.Data) != "1" {
		t.Fatalf("Get = %q, %v", v.Data, err)
	}
	c.Close()
}

func TestWarmBlocks(t *testing.T) {
	_, entries := testEntries(20000, 4)
	dir := writeTables(t, entries, 2)
	c := NewCache(256 << 20)
	defer c.Close()
	db := openWith(t, dir, c)
	defer db.Close()
	n := len(db.idx.handles)
	if blocks, _, err := db.WarmBlocks(time.Now().Add(-time.Second), 1<<40, 1); err != nil || blocks != 0 {
		t.Fatalf("past deadline: %d blocks, %v", blocks, err)
	}
	blocks, bytes, err := db.WarmBlocks(time.Now().Add(time.Minute), 100<<10, 1)
	if err != nil || blocks == 0 || blocks >= n || bytes < 100<<10 {
		t.Fatalf("100 KiB budget: %d of %d blocks, %d bytes, %v", blocks, n, bytes, err)
	}
	start := time.Now()
	more, _, err := db.WarmBlocks(time.Now().Add(time.Minute), 1<<40, 0.5)
	if err != nil || blocks+more != n {
		t.Fatalf("warmed %d + %d of %d blocks: %v", blocks, more, n, err)
	}
	if st := c.Stats(); st.Blocks != n || st.Loads != int64(n) {
		t.Fatalf("after warming everything: %+v, want %d blocks loaded once", st, n)
	}
	t.Logf("warmed %d blocks at half a CPU in %v", more, time.Since(start))
	// Everything cached: a further warm-up loads nothing.
	if again, _, err := db.WarmBlocks(time.Now().Add(time.Minute), 1<<40, 1); err != nil || again != 0 {
		t.Fatalf("second warm-up loaded %d blocks: %v", again, err)
	}
}

func TestSearchPrefixes(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for _, n := range []int{0, 1, 2, 63, 64, 65, 100, 1000, 20000} {
		for _, skew := range []bool{false, true} {
			p := make([]uint64, n)
			for i := range p {
				v := r.Uint64()
				if skew {
					// Clustered values and duplicates: interpolation guesses
					// badly and the galloping must still bracket.
					v = uint64(r.IntN(50)) << 58
					if i%3 == 0 {
						v = r.Uint64() >> 40
					}
				}
				p[i] = v
			}
			slices.Sort(p)
			probes := []uint64{0, 1, ^uint64(0)}
			for range 2000 {
				probes = append(probes, r.Uint64())
			}
			for _, v := range p {
				probes = append(probes, v, v-1, v+1)
			}
			for _, o := range probes {
				want, _ := slices.BinarySearch(p, o)
				if got := searchPrefixes(p, o); got != want {
					t.Fatalf("n=%d skew=%v: searchPrefixes(%d) = %d, want %d", n, skew, o, got, want)
				}
			}
		}
	}
}

// BenchmarkLoadBlock reads, checks, decompresses and decodes the data blocks
// of the version named by BATCHKV_STORE_BENCH_DIR, one per op, caching none:
// the cost of a block-cache miss and of warming a version block by block.
func BenchmarkLoadBlock(b *testing.B) {
	dir := os.Getenv("BATCHKV_STORE_BENCH_DIR")
	if dir == "" {
		b.Skip("set BATCHKV_STORE_BENCH_DIR to a built version")
	}
	db, err := Open(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	x := db.idx
	bp := new([]byte)
	for i := 0; b.Loop(); i++ {
		h := x.handles[i%len(x.handles)]
		data, err := x.readBlock(h.table, h.off, uint64(h.len), bp)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := decodeBlock(data); err != nil {
			b.Fatal(err)
		}
	}
}

// Readers that miss the same block at once share one load: a block holding
// an 8 MiB value takes long enough to decode that they all arrive meanwhile.
func TestConcurrentMissesShareOneLoad(t *testing.T) {
	big := AppendString(nil, bytes.Repeat([]byte("0123456789abcdef"), 8<<20/16))
	entries := []rawEntry{{AppendKey(nil, []byte("big")), big}, {AppendKey(nil, []byte("small")), AppendString(nil, []byte("1"))}}
	dir := writeTables(t, entries, 1)
	c := NewCache(256 << 20)
	defer c.Close()
	db := openWith(t, dir, c)
	defer db.Close()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			v, cl, err := db.Get([]byte("big"))
			if err != nil || len(v.Data) != 8<<20 {
				t.Errorf("Get(big) = %d bytes, %v", len(v.Data), err)
				return
			}
			cl.Close()
		}()
	}
	close(start)
	wg.Wait()
	if st := c.Stats(); st.Loads != 1 {
		t.Fatalf("%d loads of the block for 8 concurrent readers, want 1", st.Loads)
	}
}
