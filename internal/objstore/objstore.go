// Package objstore is the small interface the publisher and the syncer need
// from a remote store of dataset versions, with implementations for S3
// (package objstore/s3) and local directories (package objstore/file).
// Package remote opens one from a URL: s3://bucket/prefix/dataset or
// file:///path/dataset.
//
// Keys are '/'-separated and relative to the dataset's root URL, for example
// "versions/20261122T000000Z/release.json".
package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrNotExist is returned (wrapped) for a key that does not exist.
var ErrNotExist = errors.New("objstore: object does not exist")

// Object describes one stored object.
type Object struct {
	Key     string
	Size    int64
	ETag    string
	ModTime time.Time
}

// Store is a remote store of objects under one dataset root.
type Store interface {
	// List returns every object whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Object, error)
	// ListPrefixes returns the distinct next path elements under prefix
	// (prefix must end in "/" or be empty), like an S3 delimiter listing:
	// ListPrefixes("versions/") -> ["v1", "v2"]. Sorted.
	ListPrefixes(ctx context.Context, prefix string) ([]string, error)
	// Stat returns the object's size and ETag, or ErrNotExist.
	Stat(ctx context.Context, key string) (Object, error)
	// ReadRange returns length bytes of the object from offset (length < 0:
	// to the end). The caller closes the reader. A missing key is ErrNotExist.
	ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Put stores size bytes read from r under key, replacing any object there;
	// readers never see a partial object.
	Put(ctx context.Context, key string, r io.ReaderAt, size int64) error
	// Delete removes the object; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// String returns the store's root URL, for messages.
	String() string
}

// ValidKey reports whether key is a clean relative '/'-separated key: no
// empty, "." or ".." elements, no leading '/', no backslash or NUL. Both
// implementations refuse other keys, so a key can never escape the root.
func ValidKey(key string) error {
	if key == "" || len(key) > 1024 {
		return errors.New("objstore: key must be 1 to 1024 bytes")
	}
	start := 0
	for i := 0; i <= len(key); i++ {
		if i < len(key) && key[i] != '/' {
			if key[i] == '\\' || key[i] == 0 {
				return fmt.Errorf("objstore: key %q contains a backslash or NUL", key)
			}
			continue
		}
		switch key[start:i] {
		case "", ".", "..":
			return fmt.Errorf("objstore: key %q has an empty, '.' or '..' element", key)
		}
		start = i + 1
	}
	return nil
}
