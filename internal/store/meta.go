package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Meta describes one built dataset version. It is stored as dataset.json in the
// version directory and copied into the release file when published.
type Meta struct {
	// Format is the layout version (FormatVersion).
	Format int `json:"format"`
	// Name is the dataset's name, Version the version's name (by default a UTC
	// timestamp, so that versions sort in time order).
	Name    string `json:"name"`
	Version string `json:"version"`

	// Keys = Strings + Hashes. HashFields counts the fields of all hashes.
	Keys       int64 `json:"keys"`
	Strings    int64 `json:"strings"`
	Hashes     int64 `json:"hashes"`
	HashFields int64 `json:"hash_fields"`
	// KeyBytes and ValueBytes are the summed lengths of keys and encoded values.
	KeyBytes   int64 `json:"key_bytes"`
	ValueBytes int64 `json:"value_bytes"`

	BuiltAt     time.Time `json:"built_at"`
	ToolVersion string    `json:"tool_version"`
	Inputs      []Input   `json:"inputs"`

	// Shard is set when the dataset is partitioned by hash slot.
	Shard *Shard `json:"shard,omitempty"`
}

// Input describes one input file of a build.
type Input struct {
	Path        string `json:"path"`
	Format      string `json:"format"`
	Compression string `json:"compression,omitempty"`
	Bytes       int64  `json:"bytes"`
	Records     int64  `json:"records"`
}

// Shard places a sharded dataset's part in the cluster: shard Index of Count,
// holding the hash slots SlotStart..SlotEnd (inclusive).
type Shard struct {
	Index     int    `json:"index"`
	Count     int    `json:"count"`
	SlotStart uint16 `json:"slot_start"`
	SlotEnd   uint16 `json:"slot_end"`
}

// ErrInvalidMeta reports dataset metadata that cannot be trusted.
var ErrInvalidMeta = errors.New("store: invalid dataset metadata")

// Validate checks that m is internally consistent.
func (m *Meta) Validate() error {
	switch {
	case m.Format != FormatVersion:
		return fmt.Errorf("%w: format %d, this build reads format %d", ErrInvalidMeta, m.Format, FormatVersion)
	case m.Version == "":
		return fmt.Errorf("%w: empty version", ErrInvalidMeta)
	case m.Keys < 0 || m.Strings < 0 || m.Hashes < 0 || m.HashFields < 0:
		return fmt.Errorf("%w: negative count", ErrInvalidMeta)
	case m.Keys != m.Strings+m.Hashes:
		return fmt.Errorf("%w: keys %d != strings %d + hashes %d", ErrInvalidMeta, m.Keys, m.Strings, m.Hashes)
	}
	if s := m.Shard; s != nil {
		if s.Count < 1 || s.Index < 0 || s.Index >= s.Count || s.SlotStart > s.SlotEnd || s.SlotEnd > 16383 {
			return fmt.Errorf("%w: shard %d of %d, slots %d-%d", ErrInvalidMeta, s.Index, s.Count, s.SlotStart, s.SlotEnd)
		}
	}
	return nil
}

// ParseMeta decodes and validates dataset metadata. Unknown fields are
// ignored so that older servers read newer metadata.
func ParseMeta(b []byte) (*Meta, error) {
	var m Meta
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidMeta, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalidMeta)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// ReadMeta reads and validates the metadata of the version in dir.
func ReadMeta(dir string) (*Meta, error) {
	b, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		return nil, fmt.Errorf("store: read metadata: %w", err)
	}
	m, err := ParseMeta(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, MetaFile), err)
	}
	return m, nil
}

// WriteMeta writes m into dir atomically: temp file, fsync, rename, fsync dir.
func WriteMeta(dir string, m *Meta) error {
	if err := m.Validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("store: encode metadata: %w", err)
	}
	return WriteFileAtomic(filepath.Join(dir, MetaFile), append(b, '\n'), 0o644)
}

// WriteFileAtomic replaces path with data so that a reader sees either the old
// file or the new one, also across a crash: write a temp file in the same
// directory, fsync it, rename it over path, fsync the directory.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so that renames and creations in it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// ShardDir returns the version directory of shard i inside a sharded build
// directory (docs/CLUSTER.md: DIR/shard-<i>, decimal, no padding).
func ShardDir(dir string, i int) string { return filepath.Join(dir, fmt.Sprintf("shard-%d", i)) }

// IsSharded reports whether dir is a sharded build directory: no dataset.json
// of its own, and at least one shard-<i> subdirectory.
func IsSharded(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, MetaFile)); err == nil {
		return false
	}
	m, _ := filepath.Glob(filepath.Join(dir, "shard-*", MetaFile))
	return len(m) > 0
}

// ReadShards reads the metadata of the shard-<i> version directories in the
// sharded build directory dir (all of them, or the ones a --shard job wrote),
// by shard index. Every shard must be the one its directory names and all
// must agree on the dataset, version and shard count.
func ReadShards(dir string) (map[int]*Meta, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	out := map[int]*Meta{}
	var first *Meta
	for _, e := range ents {
		var i int
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "shard-") {
			continue
		}
		if _, err := fmt.Sscanf(e.Name(), "shard-%d", &i); err != nil || e.Name() != fmt.Sprintf("shard-%d", i) {
			continue
		}
		m, err := ReadMeta(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		switch {
		case m.Shard == nil:
			return nil, fmt.Errorf("%w: %s is not a shard", ErrInvalidMeta, filepath.Join(dir, e.Name()))
		case m.Shard.Index != i:
			return nil, fmt.Errorf("%w: %s holds shard %d", ErrInvalidMeta, filepath.Join(dir, e.Name()), m.Shard.Index)
		case first != nil && (m.Shard.Count != first.Shard.Count || m.Name != first.Name || m.Version != first.Version):
			return nil, fmt.Errorf("%w: %s (dataset %s version %s, %d shards) disagrees with shard %d (dataset %s version %s, %d shards)",
				ErrInvalidMeta, filepath.Join(dir, e.Name()), m.Name, m.Version, m.Shard.Count, first.Shard.Index, first.Name, first.Version, first.Shard.Count)
		}
		if first == nil {
			first = m
		}
		out[i] = m
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("store: %s holds no shard-<i> version directory", dir)
	}
	return out, nil
}
