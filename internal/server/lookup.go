package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/batchkv/batchkv/internal/store"
)

// iterBatchMin is the batch size from which point lookups go through one
// Pebble iterator for the whole batch instead of one DB.Get each, for a
// version that Get serves through Pebble (not batchkv's point index): a
// Pebble Get builds and tears down a merging iterator over every level per
// key, while a reused iterator keeps its per-file iterators open across
// seeks. Below it, creating the iterator costs more than it saves.
const iterBatchMin = 4

// get looks key up in the batch's version. The value is valid until closer
// is closed or the next lookup, whichever comes first; a missing key is
// store.ErrNotFound.
func (c *conn) get(key []byte) (store.Value, io.Closer, error) {
	if len(c.cmds) < iterBatchMin || c.v.DB.Indexed() {
		return c.v.DB.Get(key)
	}
	if c.it == nil {
		it, err := c.v.DB.Pebble().NewIter(nil)
		if err != nil {
			return store.Value{}, nil, fmt.Errorf("store: get: %w", err)
		}
		c.it = it
	}
	c.keyBuf = store.AppendKey(c.keyBuf[:0], key)
	// The comparer's prefix is the whole key, so SeekPrefixGE consults the
	// bloom filters exactly as Get does.
	if !c.it.SeekPrefixGE(c.keyBuf) || !bytes.Equal(c.it.Key(), c.keyBuf) {
		if err := c.it.Error(); err != nil {
			return store.Value{}, nil, fmt.Errorf("store: get: %w", err)
		}
		return store.Value{}, nil, store.ErrNotFound
	}
	raw, err := c.it.ValueAndErr()
	if err != nil {
		return store.Value{}, nil, fmt.Errorf("store: get: %w", err)
	}
	v, err := store.DecodeValue(raw)
	if err != nil {
		return store.Value{}, nil, err
	}
	return v, store.NopCloser{}, nil
}

// has reports whether key exists in the batch's version.
func (c *conn) has(key []byte) (bool, error) {
	_, cl, err := c.get(key)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	cl.Close()
	return true, nil
}

// closeIter closes the batch's iterator; it must happen before the version
// is released (a Pebble DB must not close with iterators open).
func (c *conn) closeIter() {
	if c.it != nil {
		c.it.Close()
		c.it = nil
	}
}
