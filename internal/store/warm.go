package store

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// WarmTables loads every sstable's index and filter blocks (and one data
// block) into the block cache by looking up the table's smallest key, so that
// the first client reads after a swap do not pay for them. It returns the
// number of tables touched.
func (d *DB) WarmTables() (int, error) {
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
