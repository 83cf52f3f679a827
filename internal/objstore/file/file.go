// Package file implements objstore.Store over a local directory, with the
// same layout as S3: file:///path/dataset is the local twin of
// s3://bucket/path/dataset. It is the embedded default for local runs and
// tests.
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/store"
)

var _ objstore.Store = (*Store)(nil)

// tmpPrefix marks files being written by Put; List never shows them.
const tmpPrefix = ".tmp-"

// Store is an objstore.Store rooted at a directory.
type Store struct {
	root string
}

// New returns a store rooted at dir (created on first Put).
func New(dir string) *Store { return &Store{root: filepath.Clean(dir)} }

func (s *Store) String() string { return "file://" + filepath.ToSlash(s.root) }

func (s *Store) path(key string) (string, error) {
	if err := objstore.ValidKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// List walks the directory under prefix.
func (s *Store) List(ctx context.Context, prefix string) ([]objstore.Object, error) {
	var out []objstore.Object
	// Walk the deepest directory the prefix names, then filter by prefix.
	dir := s.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		if err := objstore.ValidKey(prefix[:i]); err != nil {
			return nil, err
		}
		dir = filepath.Join(s.root, filepath.FromSlash(prefix[:i]))
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), tmpPrefix) {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		out = append(out, objectOf(key, fi))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: list %q: %w", s, prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// ListPrefixes lists the directory named by prefix.
func (s *Store) ListPrefixes(ctx context.Context, prefix string) ([]string, error) {
	dir := s.root
	if prefix != "" {
		if !strings.HasSuffix(prefix, "/") {
			return nil, fmt.Errorf("%s: list prefixes: prefix %q must end in /", s, prefix)
		}
		p, err := s.path(strings.TrimSuffix(prefix, "/"))
		if err != nil {
			return nil, err
		}
		dir = p
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: list prefixes %q: %w", s, prefix, err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), tmpPrefix) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// Stat returns the file's size; the ETag is derived from size and mtime.
func (s *Store) Stat(ctx context.Context, key string) (objstore.Object, error) {
	p, err := s.path(key)
	if err != nil {
		return objstore.Object{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return objstore.Object{}, fmt.Errorf("%s: %s: %w", s, key, objstore.ErrNotExist)
		}
		return objstore.Object{}, fmt.Errorf("%s: stat %s: %w", s, key, err)
	}
	if fi.IsDir() {
		return objstore.Object{}, fmt.Errorf("%s: %s: %w", s, key, objstore.ErrNotExist)
	}
	return objectOf(key, fi), nil
}

func objectOf(key string, fi fs.FileInfo) objstore.Object {
	etag := strconv.FormatInt(fi.Size(), 16) + "-" + strconv.FormatInt(fi.ModTime().UnixNano(), 16)
	return objstore.Object{Key: key, Size: fi.Size(), ETag: etag, ModTime: fi.ModTime()}
}

// ReadRange opens the file and returns a reader over the range.
func (s *Store) ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %s: %w", s, key, objstore.ErrNotExist)
		}
		return nil, fmt.Errorf("%s: open %s: %w", s, key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: stat %s: %w", s, key, err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s: %s: %w", s, key, objstore.ErrNotExist)
	}
	if offset < 0 || offset > fi.Size() {
		f.Close()
		return nil, fmt.Errorf("%s: read %s: offset %d outside 0..%d", s, key, offset, fi.Size())
	}
	if length < 0 || offset+length > fi.Size() {
		length = fi.Size() - offset
	}
	return readCloser{io.NewSectionReader(f, offset, length), f}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// Put writes a temp file beside the target, fsyncs it and renames it into
// place, so readers see the old object or the complete new one.
func (s *Store) Put(ctx context.Context, key string, r io.ReaderAt, size int64) (err error) {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%s: put %s: %w", s, key, err)
	}
	f, err := os.CreateTemp(dir, tmpPrefix+filepath.Base(p)+"-*")
	if err != nil {
		return fmt.Errorf("%s: put %s: %w", s, key, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	n, err := io.Copy(f, io.NewSectionReader(r, 0, size))
	if err != nil {
		return fmt.Errorf("%s: put %s: %w", s, key, err)
	}
	if n != size {
		return fmt.Errorf("%s: put %s: read %d of %d bytes", s, key, n, size)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("%s: put %s: fsync: %w", s, key, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("%s: put %s: %w", s, key, err)
	}
	if err = os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("%s: put %s: %w", s, key, err)
	}
	return store.SyncDir(dir)
}

// Delete removes the file and any directories it leaves empty.
func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: delete %s: %w", s, key, err)
	}
	for dir := filepath.Dir(p); dir != s.root && strings.HasPrefix(dir, s.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil { // not empty (or gone): stop
			break
		}
	}
	return nil
}
