package store_test

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/batchkv/batchkv/internal/gen"
	"github.com/batchkv/batchkv/internal/store"
	"github.com/cockroachdb/pebble/v2"
)

// BenchmarkGetBuilt reads random keys of a version built from
// `batchkv gen --keys N` (seed 0), named by BATCHKV_STORE_BENCH_DIR (and
// BATCHKV_STORE_BENCH_KEYS = N), through a block cache of
// BATCHKV_STORE_BENCH_CACHE bytes (default 64 MiB: most reads miss it and
// read and decompress a block, which is what the block compression costs).
// Without the variables it is skipped: it needs a large built dataset.
func BenchmarkGetBuilt(b *testing.B) {
	dir := os.Getenv("BATCHKV_STORE_BENCH_DIR")
	if dir == "" {
		b.Skip("set BATCHKV_STORE_BENCH_DIR to a version built from batchkv gen output (and BATCHKV_STORE_BENCH_KEYS)")
	}
	n, err := strconv.ParseInt(os.Getenv("BATCHKV_STORE_BENCH_KEYS"), 10, 64)
	if err != nil {
		b.Fatalf("BATCHKV_STORE_BENCH_KEYS: %v", err)
	}
	cacheBytes := int64(64 << 20)
	if v := os.Getenv("BATCHKV_STORE_BENCH_CACHE"); v != "" {
		if cacheBytes, err = strconv.ParseInt(v, 10, 64); err != nil {
			b.Fatal(err)
		}
	}
	cache := pebble.NewCache(cacheBytes)
	defer cache.Unref()
	db, err := store.Open(dir, cache)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	keys := make([][]byte, 1<<16)
	r := rand.New(rand.NewPCG(1, 1))
	for i := range keys {
		keys[i] = []byte(gen.RecordAt(0, r.Int64N(n)).Key)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_, c, err := db.Get(keys[i&(len(keys)-1)])
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
