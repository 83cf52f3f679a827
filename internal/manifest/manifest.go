// Package manifest is the shared volume's contract between the syncer, which
// writes it, and the server, which follows it:
//
//	<root>/manifest.json        names the live version (replaced atomically)
//	<root>/versions/<version>/  complete, verified, never modified after install
//	<root>/staging/             downloads in progress (resumable)
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/batchkv/batchkv/internal/release"
	"github.com/batchkv/batchkv/internal/store"
)

// Names inside the root directory.
const (
	FileName    = "manifest.json"
	VersionsDir = "versions"
	StagingDir  = "staging"
)

// FormatVersion is the version of the manifest format.
const FormatVersion = 1

// MaxBytes bounds the manifest file; a real one is a few hundred bytes.
const MaxBytes = 1 << 20

// Manifest names the version the server must serve.
type Manifest struct {
	Format  int    `json:"format"`
	Dataset string `json:"dataset,omitempty"`
	// Version is live: <root>/versions/<Version>.
	Version string `json:"version"`
	// Previous is the version served before, kept for instant rollback.
	Previous    string    `json:"previous,omitempty"`
	InstalledAt time.Time `json:"installed_at"`
	// ActivateAt, when set, is the earliest time to make Version live (the
	// coordinated swap of sharded datasets).
	ActivateAt *time.Time `json:"activate_at,omitempty"`
}

// ErrInvalid reports a manifest that must not be acted on.
var ErrInvalid = errors.New("manifest: invalid manifest")

// Validate checks the fields the server relies on.
func (m *Manifest) Validate() error {
	if m.Format != FormatVersion {
		return fmt.Errorf("%w: format %d, this build reads format %d", ErrInvalid, m.Format, FormatVersion)
	}
	if err := release.ValidName(m.Version); err != nil {
		return fmt.Errorf("%w: version: %v", ErrInvalid, err)
	}
	if m.Previous != "" {
		if err := release.ValidName(m.Previous); err != nil {
			return fmt.Errorf("%w: previous: %v", ErrInvalid, err)
		}
	}
	if m.Dataset != "" {
		if err := release.ValidName(m.Dataset); err != nil {
			return fmt.Errorf("%w: dataset: %v", ErrInvalid, err)
		}
	}
	return nil
}

// Parse decodes and validates a manifest; unknown fields are ignored.
func Parse(b []byte) (*Manifest, error) {
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrInvalid, len(b))
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalid)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Read reads the manifest of root. A missing manifest is an error wrapping
// fs.ErrNotExist: nothing is installed yet.
func Read(root string) (*Manifest, error) {
	p := filepath.Join(root, FileName)
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	defer f.Close()
	// Read one byte past the limit so that an oversized file is reported as
	// such rather than parsed truncated.
	b, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("manifest: read %s: %w", p, err)
	}
	m, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return m, nil
}

// Write replaces root's manifest atomically (temp, fsync, rename, fsync dir).
func Write(root string, m *Manifest) error {
	if m.Format == 0 {
		m.Format = FormatVersion
	}
	if err := m.Validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("manifest: encode: %w", err)
	}
	return store.WriteFileAtomic(filepath.Join(root, FileName), append(b, '\n'), 0o644)
}

// VersionDir returns the directory of an installed version.
func VersionDir(root, version string) string {
	return filepath.Join(root, VersionsDir, version)
}
