package store

import (
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// Cache is the memory a server lends every open version: the point-lookup
// block cache (decoded data blocks, see index.go) and a small Pebble block
// cache for what still goes through Pebble's iterators (SCAN, KEYS,
// RANDOMKEY, the slot commands, opening tables). One Cache is shared by all
// versions a process has open, so a new version warming up and the live one
// draining compete for the same budget.
type Cache struct {
	blocks *blockCache
	pebble *pebble.Cache
}

// pebbleShare is the part of a Cache that Pebble's own block cache gets:
// 1/16 of the budget between 8 and 64 MiB. Scans are sequential and do not
// profit from a large cache; point lookups are what the budget is for.
func pebbleShare(bytes int64) int64 {
	return min(max(bytes/16, 8<<20), 64<<20)
}

// NewCache returns a cache of about bytes in total (the --cache-bytes of the
// server). Close it after every version using it is closed.
func NewCache(bytes int64) *Cache {
	p := pebbleShare(bytes)
	return &Cache{
		blocks: &blockCache{budget: max(bytes-p, 0)},
		pebble: pebble.NewCache(p),
	}
}

// Close releases the Pebble cache's memory.
func (c *Cache) Close() { c.pebble.Unref() }

// CacheStats describe a Cache's use.
type CacheStats struct {
	// BlockBytes is the memory held by decoded blocks and BlockBudget its
	// limit; Blocks is their number.
	BlockBytes, BlockBudget int64
	Blocks                  int
	// Loads counts blocks read from disk (and decoded) for the cache,
	// Evictions the blocks dropped to stay within the budget.
	Loads, Evictions int64
	// PebbleBytes is the memory in use by Pebble's block cache, PebbleBudget
	// its limit.
	PebbleBytes, PebbleBudget int64
}

// Stats returns the cache's current use.
func (c *Cache) Stats() CacheStats {
	c.blocks.mu.Lock()
	st := CacheStats{
		BlockBytes:  c.blocks.used,
		BlockBudget: c.blocks.budget,
		Blocks:      len(c.blocks.ring),
		Evictions:   c.blocks.evictions,
	}
	c.blocks.mu.Unlock()
	st.Loads = c.blocks.loads.Load()
	m := c.pebble.Metrics()
	st.PebbleBytes, st.PebbleBudget = m.Size, c.pebble.MaxSize()
	return st
}

// blockCache bounds the memory of decoded blocks across every open version
// with the CLOCK algorithm: a block read since the hand last passed gets a
// second chance, the others are dropped.
//
// A lookup of a cached block takes no lock and touches no shared counter: the
// block is an ordinary Go object that a version's slot points to, and a
// reader that loaded the pointer keeps the block alive (the garbage collector
// frees it after eviction once no reply still refers to it). That is what
// makes a cached lookup cheaper than Pebble's, which reference-counts every
// block it hands out with atomic operations on a cache line every core shares.
type blockCache struct {
	budget int64

	mu        sync.Mutex
	used      int64
	ring      []cacheEntry
	hand      int
	evictions int64

	loads atomic.Int64
}

type cacheEntry struct {
	x *pointIndex
	i int
	b *dataBlock
}

// add accounts for a block just published in x.blocks[i], evicting others
// (or itself) to stay within the budget.
func (c *blockCache) add(x *pointIndex, i int, b *dataBlock) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if x.closed {
		// The version closed while the block loaded (only warm-ups race
		// with Close): do not keep it.
		x.blocks[i].CompareAndSwap(b, nil)
		return
	}
	c.ring = append(c.ring, cacheEntry{x: x, i: i, b: b})
	c.used += b.size
	for c.used > c.budget && len(c.ring) > 0 {
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		e := &c.ring[c.hand]
		if e.b.ref.Load() {
			e.b.ref.Store(false)
			c.hand++
			continue
		}
		e.x.blocks[e.i].CompareAndSwap(e.b, nil)
		c.used -= e.b.size
		c.evictions++
		c.removeAt(c.hand)
	}
}

func (c *blockCache) removeAt(k int) {
	last := len(c.ring) - 1
	c.ring[k] = c.ring[last]
	c.ring[last] = cacheEntry{}
	c.ring = c.ring[:last]
}

// drop forgets every block of x (its version is closing).
func (c *blockCache) drop(x *pointIndex) {
	c.mu.Lock()
	defer c.mu.Unlock()
	x.closed = true
	for k := 0; k < len(c.ring); {
		if c.ring[k].x == x {
			c.used -= c.ring[k].b.size
			c.removeAt(k)
			continue
		}
		k++
	}
	for i := range x.blocks {
		x.blocks[i].Store(nil)
	}
}
