package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TableWriter writes one sstable of entries in strictly increasing Pebble key
// order, ready to be ingested by CreateVersion.
type TableWriter struct {
	path string
	w    *sstable.Writer
	n    int64
}

// NewTableWriter creates the sstable file at path.
func NewTableWriter(path string) (*TableWriter, error) {
	f, err := vfs.Default.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("store: create table: %w", err)
	}
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), WriterOptions())
	return &TableWriter{path: path, w: w}, nil
}

// Add appends an entry. pebbleKey comes from AppendKey, value from
// AppendString or AppendHashHeader/AppendHashField.
func (t *TableWriter) Add(pebbleKey, value []byte) error {
	if err := t.w.Set(pebbleKey, value); err != nil {
		return fmt.Errorf("store: write table %s: %w", t.path, err)
	}
	t.n++
	return nil
}

// Entries returns the number of entries added so far.
func (t *TableWriter) Entries() int64 { return t.n }

// Close finishes the table (and fsyncs it).
func (t *TableWriter) Close() error {
	if err := t.w.Close(); err != nil {
		return fmt.Errorf("store: finish table %s: %w", t.path, err)
	}
	return nil
}

// CreateVersion creates the version directory dir (which must not exist)
// from sstables whose key ranges do not overlap: it creates a fresh Pebble
// database, ingests the tables (they land directly in the bottom level: no
// write amplification), closes it so no WAL or memtable is left behind, and
// writes meta last. The ingested table files are moved into the database.
func CreateVersion(ctx context.Context, dir string, meta *Meta, tables []string) error {
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("store: create version: %s already exists", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("store: create version: %w", err)
	}
	opts := Options(nil)
	opts.Logger = quietLogger{}
	// Nothing is ever written through the WAL: every byte arrives by ingestion.
	opts.DisableWAL = true
	db, err := pebble.Open(filepath.Join(dir, DBDir), opts)
	if err != nil {
		return fmt.Errorf("store: create version: %w", err)
	}
	nonEmpty := tables[:0:0]
	for _, p := range tables {
		if fi, err := os.Stat(p); err == nil && fi.Size() > 0 {
			nonEmpty = append(nonEmpty, p)
		}
	}
	if len(nonEmpty) > 0 {
		if err := db.Ingest(ctx, nonEmpty); err != nil {
			db.Close()
			return fmt.Errorf("store: ingest: %w", err)
		}
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("store: create version: close: %w", err)
	}
	// Pebble still creates a WAL file with the WAL disabled; it holds no
	// records (every byte arrived by ingestion), so drop it: a version carries
	// no WAL for a reader to replay.
	logs, err := filepath.Glob(filepath.Join(dir, DBDir, "*.log"))
	if err != nil {
		return fmt.Errorf("store: create version: %w", err)
	}
	for _, p := range logs {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("store: create version: %w", err)
		}
	}
	if err := SyncDir(filepath.Join(dir, DBDir)); err != nil {
		return err
	}
	return WriteMeta(dir, meta)
}

// Entry is one Redis key and its encoded value (see AppendString, AppendHashHeader).
type Entry struct {
	Key   []byte
	Value []byte
}

// WriteVersion writes a small dataset held in memory as the version dir: it
// sorts the entries, writes one table and calls CreateVersion, filling in the
// counts of meta. For tests and tools; the builder streams instead.
func WriteVersion(ctx context.Context, dir string, meta *Meta, entries []Entry) error {
	type kv struct{ k, v []byte }
	sorted := make([]kv, len(entries))
	meta.Keys, meta.Strings, meta.Hashes, meta.HashFields, meta.KeyBytes, meta.ValueBytes = 0, 0, 0, 0, 0, 0
	for i, e := range entries {
		v, err := DecodeValue(e.Value)
		if err != nil {
			return fmt.Errorf("store: entry %q: %w", e.Key, err)
		}
		switch v.Type {
		case TypeString:
			meta.Strings++
		case TypeHash:
			meta.Hashes++
			n, err := v.Hash().Len()
			if err != nil {
				return err
			}
			meta.HashFields += int64(n)
		}
		meta.KeyBytes += int64(len(e.Key))
		meta.ValueBytes += int64(len(e.Value))
		sorted[i] = kv{AppendKey(nil, e.Key), e.Value}
	}
	meta.Keys = meta.Strings + meta.Hashes
	if meta.Format == 0 {
		meta.Format = FormatVersion
	}
	slices.SortFunc(sorted, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	for i := 1; i < len(sorted); i++ {
		if bytes.Equal(sorted[i].k, sorted[i-1].k) {
			return fmt.Errorf("store: duplicate key %q", sorted[i].k[PrefixLen:])
		}
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dir)), 0o755); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dir)), ".tables-*")
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "000001.sst")
	tw, err := NewTableWriter(path)
	if err != nil {
		return err
	}
	for _, e := range sorted {
		if err := tw.Add(e.k, e.v); err != nil {
			tw.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	tables := []string{path}
	if len(sorted) == 0 {
		tables = nil
	}
	return CreateVersion(ctx, dir, meta, tables)
}
