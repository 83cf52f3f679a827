package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// WarmTables loads every sstable's index and filter blocks (and one data
// block) into the block cache by looking up the table's smallest key, so that
// the first client reads after a swap do not pay for them. It returns the
// number of tables touched. A version served by the point index needs
// nothing of this: Open read its index blocks, and its point lookups never
// use Pebble's.
func (d *DB) WarmTables() (int, error) {
	if d.idx != nil {
		return len(d.idx.tables), nil
	}
	levels, err := d.pdb.SSTables()
	if err != nil {
		return 0, fmt.Errorf("store: warm: %w", err)
	}
	n := 0
	for _, tables := range levels {
		for _, t := range tables {
			_, closer, err := d.pdb.Get(t.Smallest.UserKey)
			if err == nil {
				closer.Close()
			} else if !errors.Is(err, pebble.ErrNotFound) {
				return n, fmt.Errorf("store: warm table %s: %w", t.FileNum, err)
			}
			n++
		}
	}
	return n, nil
}

// WarmKeys looks up each key so its blocks are cached; missing keys are fine
// (their filter blocks get cached). It returns the first read error.
func (d *DB) WarmKeys(keys [][]byte) error {
	for _, k := range keys {
		_, closer, err := d.Get(k)
		if err == nil {
			closer.Close()
		} else if !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("store: warm: %w", err)
		}
	}
	return nil
}

// WarmBlocks reads the version's data blocks in key order into the
// point-lookup cache until maxBytes of decoded blocks were loaded, every
// block is cached, or deadline passes. So that warming a new version beside a
// live one does not starve the live one's clients, it keeps to about share
// of one CPU (0 < share <= 1) by sleeping between blocks. A version not
// served by the point index is not warmed. It returns the blocks and bytes
// loaded.
//
// For a dataset that fits the cache this makes a swapped-in version as warm
// as the one it replaces: without it the first seconds after a swap read
// and decompress a block for most requests (docs/BENCHMARKS.md, swap).
func (d *DB) WarmBlocks(deadline time.Time, maxBytes int64, share float64) (blocks int, bytes int64, err error) {
	x := d.idx
	if x == nil {
		return 0, 0, nil
	}
	share = min(max(share, 0.01), 1)
	// Sleeps are taken once they add up to 2 ms: a block takes ~0.1 ms and
	// timers do not sleep that briefly.
	var debt time.Duration
	for i := range x.blocks {
		if bytes >= maxBytes || !time.Now().Before(deadline) {
			break
		}
		if x.blocks[i].Load() != nil {
			continue
		}
		start := time.Now()
		b, err := x.load(i)
		if err != nil {
			return blocks, bytes, fmt.Errorf("store: warm: %w", err)
		}
		// Not marked as read: warmed blocks are the first to go if clients
		// turn out to need others.
		b.ref.Store(false)
		blocks++
		bytes += b.size
		if share < 1 {
			debt += time.Duration(float64(time.Since(start)) * (1 - share) / share)
			if debt >= 2*time.Millisecond {
				slept := time.Now()
				time.Sleep(min(debt, time.Until(deadline)))
				debt -= time.Since(slept)
			}
		}
	}
	return blocks, bytes, nil
}
