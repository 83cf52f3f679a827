package store_test

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/batchkv/batchkv/internal/gen"
	"github.com/batchkv/batchkv/internal/store"
)

// BenchmarkGetBuilt reads random keys of a version built from
// `batchkv gen --keys N` (seed 0), named by BATCHKV_STORE_BENCH_DIR (and
// BATCHKV_STORE_BENCH_KEYS = N), through a block cache of
// BATCHKV_STORE_BENCH_CACHE bytes (default 64 MiB: most reads miss it and
// read and decompress a block, which is what the block compression costs).
// With BATCHKV_STORE_BENCH_WARM set, the keys are read once before timing,
// so only cached lookups are measured. Without the variables it is skipped: it needs a large built dataset.
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
	cache := store.NewCache(cacheBytes)
	defer cache.Close()
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
	if os.Getenv("BATCHKV_STORE_BENCH_WARM") != "" {
		// Measure cached lookups only: read every benchmark key once first.
		for _, k := range keys {
			if _, c, err := db.Get(k); err == nil {
				c.Close()
			}
		}
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
