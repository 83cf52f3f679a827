// Package release is the release file: the last object a publisher writes
// under <prefix>/<dataset>/versions/<version>/, listing every file of the
// version with its size and SHA-256, plus the dataset metadata. A version
// without it is incomplete. The syncer never trusts it: Parse validates every
// name and bound before anything is downloaded.
package release

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/batchkv/batchkv/internal/store"
)

// FileName is the release file's name inside the version's prefix.
const FileName = "release.json"

// FormatVersion is the version of the release file format.
const FormatVersion = 1

// Limits on what a release may claim, so that a hostile or corrupt release
// cannot make the syncer allocate, download or create without bound.
const (
	MaxFiles     = 1_000_000
	MaxFileSize  = 1 << 40 // 1 TiB
	MaxTotalSize = 1 << 46 // 64 TiB
	MaxPathLen   = 512
	MaxBytes     = 256 << 20 // size of the release file itself
)

// File is one file of a version, by its path relative to the version root.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Release describes one complete published version.
type Release struct {
	Format    int         `json:"format"`
	Dataset   string      `json:"dataset"`
	Version   string      `json:"version"`
	CreatedAt time.Time   `json:"created_at"`
	Files     []File      `json:"files"`
	Meta      *store.Meta `json:"meta"`
	// ActivateAt, when set, is the earliest time servers may make the version
	// live, so that shards that finish downloading at different times swap
	// together.
	ActivateAt *time.Time `json:"activate_at,omitempty"`
}

// ErrInvalid reports a release file that must not be acted on.
var ErrInvalid = errors.New("release: invalid release file")

// TotalSize returns the summed size of the files.
func (r *Release) TotalSize() int64 {
	var n int64
	for _, f := range r.Files {
		n += f.Size
	}
	return n
}

// Parse decodes and validates a release file. Unknown fields are ignored
// (newer publishers, older syncers); anything malformed is an error.
func Parse(b []byte) (*Release, error) {
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, over the %d limit", ErrInvalid, len(b), MaxBytes)
	}
	var r Release
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalid)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Validate checks every field a syncer relies on.
func (r *Release) Validate() error {
	if r.Format != FormatVersion {
		return fmt.Errorf("%w: format %d, this build reads format %d", ErrInvalid, r.Format, FormatVersion)
	}
	if err := ValidName(r.Version); err != nil {
		return fmt.Errorf("%w: version: %v", ErrInvalid, err)
	}
	if r.Dataset != "" {
		if err := ValidName(r.Dataset); err != nil {
			return fmt.Errorf("%w: dataset: %v", ErrInvalid, err)
		}
	}
	if r.Meta == nil {
		return fmt.Errorf("%w: no dataset metadata", ErrInvalid)
	}
	if err := r.Meta.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if r.Meta.Version != r.Version {
		return fmt.Errorf("%w: metadata names version %q, release names %q", ErrInvalid, r.Meta.Version, r.Version)
	}
	if len(r.Files) == 0 || len(r.Files) > MaxFiles {
		return fmt.Errorf("%w: %d files (want 1 to %d)", ErrInvalid, len(r.Files), MaxFiles)
	}
	seen := make(map[string]bool, len(r.Files))
	var total int64
	hasMeta := false
	for i, f := range r.Files {
		if err := ValidPath(f.Path); err != nil {
			return fmt.Errorf("%w: file %d: %v", ErrInvalid, i, err)
		}
		// A name that differs only in case would collide on a case-insensitive
		// volume; a file and a directory of the same name cannot both exist.
		low := strings.ToLower(f.Path)
		if seen[low] {
			return fmt.Errorf("%w: file %q listed twice", ErrInvalid, f.Path)
		}
		seen[low] = true
		if f.Size < 0 || f.Size > MaxFileSize {
			return fmt.Errorf("%w: file %q: size %d out of range", ErrInvalid, f.Path, f.Size)
		}
		if total += f.Size; total > MaxTotalSize {
			return fmt.Errorf("%w: total size over %d", ErrInvalid, int64(MaxTotalSize))
		}
		if len(f.SHA256) != 64 || strings.ToLower(f.SHA256) != f.SHA256 {
			return fmt.Errorf("%w: file %q: sha256 must be 64 lowercase hex digits", ErrInvalid, f.Path)
		}
		if _, err := hex.DecodeString(f.SHA256); err != nil {
			return fmt.Errorf("%w: file %q: sha256: %v", ErrInvalid, f.Path, err)
		}
		if f.Path == store.MetaFile {
			hasMeta = true
		}
	}
	for p := range seen {
		// "db" as a file and "db/x" as a file cannot both be installed.
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if seen[dir] {
				return fmt.Errorf("%w: %q is both a file and a directory", ErrInvalid, dir)
			}
		}
	}
	if !hasMeta {
		return fmt.Errorf("%w: %s is not listed", ErrInvalid, store.MetaFile)
	}
	return nil
}

// ValidName checks a dataset or version name: 1 to 128 characters of
// [A-Za-z0-9._-], not "." or "..", so it is safe as one path element and as
// part of an object key.
func ValidName(s string) error {
	if s == "" || len(s) > 128 {
		return fmt.Errorf("name %q: must be 1 to 128 characters", s)
	}
	if s == "." || s == ".." {
		return fmt.Errorf("name %q is not allowed", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("name %q: character %q not allowed (use A-Z a-z 0-9 . _ -)", s, c)
		}
	}
	return nil
}

// ValidPath checks a file's path inside a version: relative, '/'-separated,
// already clean, every element a valid name (so no "..", no empty elements,
// no backslashes or control characters), at most 4 deep.
func ValidPath(p string) error {
	if p == "" || len(p) > MaxPathLen {
		return fmt.Errorf("path %q: must be 1 to %d bytes", p, MaxPathLen)
	}
	if path.IsAbs(p) || path.Clean(p) != p {
		return fmt.Errorf("path %q: must be relative and clean", p)
	}
	parts := strings.Split(p, "/")
	if len(parts) > 4 {
		return fmt.Errorf("path %q: nested too deep", p)
	}
	for _, e := range parts {
		if err := ValidName(e); err != nil {
			return fmt.Errorf("path %q: %v", p, err)
		}
	}
	if p == FileName {
		return fmt.Errorf("path %q: the release file cannot list itself", p)
	}
	return nil
}

// Marshal encodes r for publishing, after validating it.
func (r *Release) Marshal() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("release: encode: %w", err)
	}
	return append(b, '\n'), nil
}
