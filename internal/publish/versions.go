package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/release"
)

// Pointer is pointer.json at the dataset root: the version syncers serve
// instead of the greatest complete one (pin, rollback).
type Pointer struct {
	Version  string    `json:"version"`
	PinnedAt time.Time `json:"pinned_at"`
}

// ErrInvalidPointer reports a pointer.json that must not be acted on.
var ErrInvalidPointer = errors.New("publish: invalid pointer file")

// maxPointerBytes bounds what ReadPointer reads.
const maxPointerBytes = 64 << 10

// ParsePointer decodes and validates a pointer file. Unknown fields are
// ignored (newer writers, older readers).
func ParsePointer(b []byte) (*Pointer, error) {
	if len(b) > maxPointerBytes {
		return nil, fmt.Errorf("%w: %d bytes, over the %d limit", ErrInvalidPointer, len(b), maxPointerBytes)
	}
	var p Pointer
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPointer, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalidPointer)
	}
	if err := release.ValidName(p.Version); err != nil {
		return nil, fmt.Errorf("%w: version: %v", ErrInvalidPointer, err)
	}
	return &p, nil
}

// ReadPointer returns the version pointer.json names; ok is false when there
// is no pointer. A malformed pointer is an error wrapping ErrInvalidPointer,
// never "no pointer": the operator asked for a specific version.
func ReadPointer(ctx context.Context, src objstore.Store) (version string, ok bool, err error) {
	p, err := readPointer(ctx, src)
	if err != nil || p == nil {
		return "", false, err
	}
	return p.Version, true, nil
}

func readPointer(ctx context.Context, src objstore.Store) (*Pointer, error) {
	b, err := readAll(ctx, src, PointerFile, maxPointerBytes)
	if errors.Is(err, objstore.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		// An oversized pointer is a bad pointer, not a transport error.
		if errors.Is(err, errTooLarge) {
			return nil, fmt.Errorf("%w: %v", ErrInvalidPointer, err)
		}
		return nil, err
	}
	p, err := ParsePointer(b)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", src, PointerFile, err)
	}
	return p, nil
}

// ReadRelease reads and validates the release file of a version. A version
// without one is ErrIncomplete; a release that fails validation (or names
// another version than the one it is stored under) wraps release.ErrInvalid.
func ReadRelease(ctx context.Context, src objstore.Store, version string) (*release.Release, error) {
	if err := release.ValidName(version); err != nil {
		return nil, fmt.Errorf("publish: version: %v", err)
	}
	b, err := readAll(ctx, src, ReleaseKey(version), release.MaxBytes)
	if errors.Is(err, objstore.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s/%s has no %s", ErrIncomplete, src, VersionPrefix(version), release.FileName)
	}
	if errors.Is(err, errTooLarge) {
		return nil, fmt.Errorf("%w: %v", release.ErrInvalid, err)
	}
	if err != nil {
		return nil, err
	}
	r, err := release.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", src, ReleaseKey(version), err)
	}
	if r.Version != version {
		return nil, fmt.Errorf("%s/%s: %w: names version %q", src, ReleaseKey(version), release.ErrInvalid, r.Version)
	}
	return r, nil
}

var errTooLarge = errors.New("over the size limit")

func readAll(ctx context.Context, src objstore.Store, key string, limit int64) ([]byte, error) {
	rc, err := src.ReadRange(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", src, key, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s/%s: %w of %d bytes", src, key, errTooLarge, limit)
	}
	return b, nil
}

// Target returns the version a syncer should serve and its release: the
// pinned version if pointer.json exists (an error if that version is not
// complete: the operator asked for it), else the greatest complete version.
// It costs one GET of the pointer, one listing of versions/ and one GET of a
// release per version tried, newest first; incomplete versions (an upload
// in progress) are skipped, an invalid release file is an error (alert, keep
// serving what you have; pin an older version to get past it). With no
// complete version at all the error wraps ErrNoVersion.
func Target(ctx context.Context, src objstore.Store) (string, *release.Release, error) {
	p, err := readPointer(ctx, src)
	if err != nil {
		return "", nil, err
	}
	if p != nil {
		r, err := ReadRelease(ctx, src, p.Version)
		if err != nil {
			return "", nil, fmt.Errorf("publish: pinned version %s: %w", p.Version, err)
		}
		return p.Version, r, nil
	}
	names, err := versionNames(ctx, src)
	if err != nil {
		return "", nil, err
	}
	for i := len(names) - 1; i >= 0; i-- {
		r, err := ReadRelease(ctx, src, names[i])
		if errors.Is(err, ErrIncomplete) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		return names[i], r, nil
	}
	return "", nil, fmt.Errorf("%w: no complete version under %s/%s", ErrNoVersion, src, VersionsDir)
}

// versionNames lists versions/ and keeps the valid version names, sorted.
func versionNames(ctx context.Context, src objstore.Store) ([]string, error) {
	all, err := src.ListPrefixes(ctx, VersionsDir)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	names := all[:0]
	for _, n := range all {
		if release.ValidName(n) == nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// VersionInfo describes one version in the store.
type VersionInfo struct {
	Version string
	// Complete: the release file is present and valid.
	Complete bool
	// Invalid says why a present release file cannot be used.
	Invalid string
	// Pinned: pointer.json names this version.
	Pinned bool
	// Target: this is what syncers serve now (see Target).
	Target bool
	// Files and Size count the release's files, or for an incomplete
	// version the objects uploaded so far.
	Files int
	Size  int64
	// Keys is the dataset's key count (complete versions only).
	Keys int64
	// CreatedAt is the release's creation time, or for an incomplete
	// version the time of its newest object.
	CreatedAt time.Time
	// Release is the parsed release of a complete version.
	Release *release.Release
}

// Versions lists every version under versions/, complete or not, sorted by
// name, and marks the pinned one and the one syncers serve.
func Versions(ctx context.Context, src objstore.Store) ([]VersionInfo, error) {
	p, err := readPointer(ctx, src)
	if err != nil {
		return nil, err
	}
	names, err := versionNames(ctx, src)
	if err != nil {
		return nil, err
	}
	infos := make([]VersionInfo, len(names))
	for i, n := range names {
		infos[i].Version = n
	}
	idx := make([]int, len(infos))
	for i := range idx {
		idx[i] = i
	}
	// Each worker writes only its own element of infos.
	err = forEach(ctx, 8, idx, func(ctx context.Context, i int) error {
		info := VersionInfo{Version: infos[i].Version}
		r, err := ReadRelease(ctx, src, info.Version)
		switch {
		case err == nil:
			info.Complete = true
			info.Release = r
			info.Files = len(r.Files)
			info.Size = r.TotalSize()
			info.Keys = r.Meta.Keys
			info.CreatedAt = r.CreatedAt
		case errors.Is(err, ErrIncomplete), errors.Is(err, release.ErrInvalid):
			if !errors.Is(err, ErrIncomplete) {
				info.Invalid = err.Error()
			}
			objs, lerr := src.List(ctx, VersionPrefix(info.Version))
			if lerr != nil {
				return fmt.Errorf("publish: %w", lerr)
			}
			for _, o := range objs {
				info.Files++
				info.Size += o.Size
				if o.ModTime.After(info.CreatedAt) {
					info.CreatedAt = o.ModTime
				}
			}
		default:
			return err
		}
		infos[i] = info
		return nil
	})
	if err != nil {
		return nil, err
	}
	if p != nil {
		for i := range infos {
			if infos[i].Version == p.Version {
				infos[i].Pinned = true
				infos[i].Target = infos[i].Complete
			}
		}
		return infos, nil
	}
	// As Target: the greatest complete version, unless an invalid release
	// stands above it (then Target fails and nothing is marked).
	for i := len(infos) - 1; i >= 0; i-- {
		if infos[i].Invalid != "" {
			break
		}
		if infos[i].Complete {
			infos[i].Target = true
			break
		}
	}
	return infos, nil
}

// Pin writes pointer.json naming version, which must be complete: syncers
// move to it (forward or back) on their next poll.
func Pin(ctx context.Context, dst objstore.Store, version string) error {
	if _, err := ReadRelease(ctx, dst, version); err != nil {
		if errors.Is(err, ErrIncomplete) {
			objs, lerr := dst.List(ctx, VersionPrefix(version))
			if lerr == nil && len(objs) == 0 {
				return fmt.Errorf("%w: %s/%s is empty", ErrNoVersion, dst, VersionPrefix(version))
			}
		}
		return fmt.Errorf("publish: pin %s: %w", version, err)
	}
	b, err := json.MarshalIndent(Pointer{Version: version, PinnedAt: time.Now().UTC()}, "", "  ")
	if err != nil {
		return fmt.Errorf("publish: pin: %w", err)
	}
	b = append(b, '\n')
	if err := dst.Put(ctx, PointerFile, bytes.NewReader(b), int64(len(b))); err != nil {
		return fmt.Errorf("publish: pin %s: %w", version, err)
	}
	return nil
}

// Unpin deletes pointer.json (`pin --latest`): syncers go back to the
// greatest complete version. Unpinning an unpinned dataset is not an error.
func Unpin(ctx context.Context, dst objstore.Store) error {
	if err := dst.Delete(ctx, PointerFile); err != nil {
		return fmt.Errorf("publish: unpin: %w", err)
	}
	return nil
}
