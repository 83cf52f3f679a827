package build

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/batchkv/batchkv/internal/input"
	"github.com/batchkv/batchkv/internal/slot"
)

// TestBatchSortAndSpill fills batches (several sizes: one bucket to 256)
// with keys that repeat, in several files and lines, and checks that the
// radix-and-insertion sort gives the order of a plain comparison sort, and
// that a spill writes exactly the records (in that order) the disk iterator
// reads back.
func TestBatchSortAndSpill(t *testing.T) {
	pl, err := newPlan(0, -1, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		budget int64
		keys   int
	}{{1 << 20, 3000}, {4 << 20, 3000}, {4 << 20, 20}, {300 << 20, 3000}} {
		budget := tc.budget
		t.Run(fmt.Sprint(budget, "/", tc.keys), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(budget), uint64(tc.keys)))
			b := newBatch(budget)
			defer b.free()
			n := 0
			for ; n < 20000; n++ {
				// Few distinct keys at small n, so equal prefixes and equal
				// keys (duplicates) meet; long values in some.
				key := []byte(fmt.Sprintf("key-%d", rng.IntN(tc.keys)))
				rec := input.Record{Key: key, Kind: input.KindString, Value: bytes.Repeat([]byte{'v'}, rng.IntN(300)), Line: int64(rng.IntN(1 << 40))}
				if rng.IntN(200) == 0 {
					// Larger than the disk iterator's buffer: read by copying.
					rec.Value = bytes.Repeat([]byte{'w'}, 64<<10+rng.IntN(5000))
				}
				if rng.IntN(3) == 0 {
					rec.Kind, rec.Value = input.KindHash, nil
					rec.Hash = []input.Field{{Name: []byte("f"), Value: []byte(fmt.Sprint(n))}}
				}
				ok, err := b.add(&rec, uint32(rng.IntN(300)), slot.Of(key))
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
			}
			type rec struct {
				key, value []byte
				file       uint32
				line       int64
			}
			var want []rec
			for bi := range b.buckets {
				bk := &b.buckets[bi]
				ref := slices.Clone(bk.entries)
				slices.SortFunc(ref, bk.compare)
				for i := range ref {
					k, v, f, l := bk.record(&ref[i])
					want = append(want, rec{k, v, f, l})
				}
			}
			if len(want) != b.n || b.n < 100 {
				t.Fatalf("%d records, batch holds %d", len(want), b.n)
			}
			b.sort()
			i := 0
			for bi := range b.buckets {
				bk := &b.buckets[bi]
				for j := range bk.entries {
					k, v, f, l := bk.record(&bk.entries[j])
					if w := want[i]; !bytes.Equal(k, w.key) || !bytes.Equal(v, w.value) || f != w.file || l != w.line {
						t.Fatalf("record %d: %q %d:%d, want %q %d:%d", i, k, f, l, w.key, w.file, w.line)
					}
					i++
				}
			}
			// Copy want: the spill resets the batch, whose chunks it aliases.
			for i := range want {
				want[i].key, want[i].value = slices.Clone(want[i].key), slices.Clone(want[i].value)
			}
			r, err := b.spill(t.TempDir(), 0, pl)
			if err != nil {
				t.Fatal(err)
			}
			defer r.file.Close()
			fi, _ := r.file.Stat()
			var total int64
			i = 0
			for p, sp := range r.parts {
				if sp.n > 0 && sp.off != total {
					t.Fatalf("partition %d at %d, want %d", p, sp.off, total)
				}
				total += sp.bytes
				it := &diskIter{path: r.path, r: newSectionReader(r.file, sp.off, sp.bytes), left: sp.n}
				for it.next() {
					k, v := it.cur()
					f, l := it.src()
					if w := want[i]; !bytes.Equal(k, w.key) || !bytes.Equal(v, w.value) || f != w.file || l != w.line {
						t.Fatalf("spilled record %d: %q %d:%d, want %q %d:%d", i, k, f, l, w.key, w.file, w.line)
					}
					i++
				}
				if err := it.err(); err != nil {
					t.Fatal(err)
				}
			}
			if i != len(want) || total != fi.Size() {
				t.Fatalf("read back %d of %d records, %d of %d bytes", i, len(want), total, fi.Size())
			}
			if !b.empty() {
				t.Fatal("batch not reset after the spill")
			}
		})
	}
}
