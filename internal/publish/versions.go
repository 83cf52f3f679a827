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
	// Version is the version to serve; empty with Latest.
	Version  string    `json:"version,omitempty"`
	PinnedAt time.Time `json:"pinned_at"`
	// Latest: serve the greatest complete version, as without a pointer;
	// written by `pin --latest` on a sharded dataset so that the move back
	// to the latest version is coordinated (ActivateAt) like a pin.
	Latest bool `json:"latest,omitempty"`
	// ActivateAt, on a sharded dataset, is when every shard moves to the
	// pinned version (see ActivationTime). Absent: PinnedAt plus the
	// syncer's --activate-delay.
	ActivateAt *time.Time `json:"activate_at,omitempty"`
}

// Activation returns the pointer's activation time: ActivateAt, else
// PinnedAt + delay.
func (p *Pointer) Activation(delay time.Duration) time.Time {
	if p.ActivateAt != nil {
		return *p.ActivateAt
	}
	return p.PinnedAt.Add(delay)
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
	if p.Latest {
		if p.Version != "" {
			return nil, fmt.Errorf("%w: both latest and version %q", ErrInvalidPointer, p.Version)
		}
		return &p, nil
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
	if err != nil || p == nil || p.Latest {
		return "", false, err
	}
	return p.Version, true, nil
}

// ReadPointerFile returns the pointer file, nil when there is none.
func ReadPointerFile(ctx context.Context, src objstore.Store) (*Pointer, error) {
	return readPointer(ctx, src)
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

// Resolved is the version syncers serve and the pointer that chose it.
type Resolved struct {
	Set *Set
	// Pointer is pointer.json (nil without one); it names Set's version
	// unless it is a "latest" pointer.
	Pointer *Pointer
}

// Version returns the resolved version's name.
func (r *Resolved) Version() string { return r.Set.Version }

// Resolve returns the version syncers serve: the pinned version if
// pointer.json names one (an error if that version is not complete: the
// operator asked for it), else the greatest complete version, sharded or
// not. It costs one GET of the pointer, one listing of versions/ and, per
// version tried newest first, one GET of a release (a sharded version: one
// listing and one GET per shard). Incomplete versions (an upload in
// progress, a sharded version still missing shards) are skipped; an invalid
// release file or shards that disagree are an error (alert, keep serving
// what you have; pin an older version to get past it). With no complete
// version at all the error wraps ErrNoVersion.
func Resolve(ctx context.Context, src objstore.Store) (*Resolved, error) {
	p, err := readPointer(ctx, src)
	if err != nil {
		return nil, err
	}
	if p != nil && !p.Latest {
		set, err := ReadSet(ctx, src, p.Version)
		if err != nil {
			return nil, fmt.Errorf("publish: pinned version %s: %w", p.Version, err)
		}
		if !set.Complete() {
			return nil, fmt.Errorf("publish: pinned version %s: %w: shards %v of %d have no release", p.Version, ErrIncomplete, set.Missing(), set.Count)
		}
		return &Resolved{Set: set, Pointer: p}, nil
	}
	set, err := latest(ctx, src)
	if err != nil {
		return nil, err
	}
	return &Resolved{Set: set, Pointer: p}, nil
}

// latest returns the greatest complete version.
func latest(ctx context.Context, src objstore.Store) (*Set, error) {
	names, err := versionNames(ctx, src)
	if err != nil {
		return nil, err
	}
	for i := len(names) - 1; i >= 0; i-- {
		set, err := ReadSet(ctx, src, names[i])
		if errors.Is(err, ErrIncomplete) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !set.Complete() {
			continue
		}
		return set, nil
	}
	return nil, fmt.Errorf("%w: no complete version under %s/%s", ErrNoVersion, src, VersionsDir)
}

// Target is Resolve for callers that want the version's name and, for an
// unsharded version, its release (nil for a sharded one: see Resolve).
func Target(ctx context.Context, src objstore.Store) (string, *release.Release, error) {
	r, err := Resolve(ctx, src)
	if err != nil {
		return "", nil, err
	}
	return r.Set.Version, r.Set.Release, nil
}

// VersionNames lists versions/ and returns the valid version names, sorted
// (complete or not).
func VersionNames(ctx context.Context, src objstore.Store) ([]string, error) {
	return versionNames(ctx, src)
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
	// Complete: the release file is present and valid (sharded: every
	// shard's).
	Complete bool
	// Invalid says why a present release file cannot be used (or why the
	// shards disagree).
	Invalid string
	// Shards is the shard count (0: unsharded); ShardsPublished how many of
	// them have their release.
	Shards, ShardsPublished int
	// Pinned: pointer.json names this version.
	Pinned bool
	// Target: this is what syncers serve now (see Resolve).
	Target bool
	// Files and Size count the releases' files, or for a version without
	// any release the objects uploaded so far.
	Files int
	Size  int64
	// Keys is the dataset's key count (over the published shards).
	Keys int64
	// CreatedAt is the (newest) release's creation time, or for a version
	// without any release the time of its newest object.
	CreatedAt time.Time
	// Release is the parsed release of a complete unsharded version.
	Release *release.Release
	// Set is what the store holds of the version (nil without any release).
	Set *Set
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
	// Each worker writes only its own element of infos.
	err = forEach(ctx, 8, seq(len(infos)), func(ctx context.Context, i int) error {
		info := VersionInfo{Version: infos[i].Version}
		set, err := ReadSet(ctx, src, info.Version)
		switch {
		case err == nil:
			info.Set = set
			info.Complete = set.Complete()
			info.Release = set.Release
			info.Shards, info.ShardsPublished = set.Count, set.Published()
			rels := set.Shards
			if !set.Sharded() {
				rels = []*release.Release{set.Release}
			}
			for _, r := range rels {
				if r == nil {
					continue
				}
				info.Files += len(r.Files)
				info.Size += r.TotalSize()
				info.Keys += r.Meta.Keys
				if r.CreatedAt.After(info.CreatedAt) {
					info.CreatedAt = r.CreatedAt
				}
			}
		case errors.Is(err, ErrIncomplete), errors.Is(err, release.ErrInvalid), errors.Is(err, ErrShards):
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
	if p != nil && !p.Latest {
		for i := range infos {
			if infos[i].Version == p.Version {
				infos[i].Pinned = true
				infos[i].Target = infos[i].Complete
			}
		}
		return infos, nil
	}
	// As Resolve: the greatest complete version, unless an invalid release
	// stands above it (then Resolve fails and nothing is marked).
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

// DefaultPinActivateDelay is PinOptions.ActivateDelay's default: longer
// than the syncers' default poll interval (30 s ±10%), so that every
// syncer sees the pointer before the time it names.
const DefaultPinActivateDelay = time.Minute

// PinOptions configures Pin and Unpin.
type PinOptions struct {
	// ActivateDelay: for a sharded version the pointer carries
	// activate_at = now + ActivateDelay, the time every shard moves
	// together; it must exceed the syncers' poll interval. Default
	// DefaultPinActivateDelay; negative: none (each shard moves when it
	// polls). Unsharded versions move at once.
	ActivateDelay time.Duration
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

func (o *PinOptions) defaults() {
	if o.ActivateDelay == 0 {
		o.ActivateDelay = DefaultPinActivateDelay
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Pin writes pointer.json naming version, which must be complete (every
// shard of a sharded version): syncers move to it (forward or back) on
// their next poll; the shards of a sharded version at the pointer's
// activation time.
func Pin(ctx context.Context, dst objstore.Store, version string) error {
	_, err := PinWith(ctx, dst, version, PinOptions{})
	return err
}

// PinWith is Pin with options; it returns the pointer written.
func PinWith(ctx context.Context, dst objstore.Store, version string, opts PinOptions) (*Pointer, error) {
	opts.defaults()
	set, err := ReadSet(ctx, dst, version)
	if err != nil {
		if errors.Is(err, ErrIncomplete) {
			objs, lerr := dst.List(ctx, VersionPrefix(version))
			if lerr == nil && len(objs) == 0 {
				return nil, fmt.Errorf("%w: %s/%s is empty", ErrNoVersion, dst, VersionPrefix(version))
			}
		}
		return nil, fmt.Errorf("publish: pin %s: %w", version, err)
	}
	if !set.Complete() {
		return nil, fmt.Errorf("%w: pin %s: partial %d/%d, shards %v have no release", ErrIncomplete, version, set.Published(), set.Count, set.Missing())
	}
	p := &Pointer{Version: version, PinnedAt: opts.Now().UTC()}
	if set.Sharded() && opts.ActivateDelay > 0 {
		at := p.PinnedAt.Add(opts.ActivateDelay)
		p.ActivateAt = &at
	}
	return p, writePointer(ctx, dst, p)
}

func writePointer(ctx context.Context, dst objstore.Store, p *Pointer) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("publish: pin: %w", err)
	}
	b = append(b, '\n')
	if err := dst.Put(ctx, PointerFile, bytes.NewReader(b), int64(len(b))); err != nil {
		return fmt.Errorf("publish: pin %s: %w", p.Version, err)
	}
	return nil
}

// Unpin removes the pin (`pin --latest`): syncers go back to the greatest
// complete version. Unpinning an unpinned dataset is not an error.
func Unpin(ctx context.Context, dst objstore.Store) error {
	_, err := UnpinWith(ctx, dst, PinOptions{})
	return err
}

// UnpinWith is Unpin with options. When the greatest complete version is
// sharded it writes a "latest" pointer with an activation time instead of
// deleting the pointer, so that the shards move back together; it returns
// that pointer (nil when the pointer was deleted).
func UnpinWith(ctx context.Context, dst objstore.Store, opts PinOptions) (*Pointer, error) {
	opts.defaults()
	if opts.ActivateDelay > 0 {
		set, err := latest(ctx, dst)
		if err == nil && set.Sharded() {
			p := &Pointer{Latest: true, PinnedAt: opts.Now().UTC()}
			at := p.PinnedAt.Add(opts.ActivateDelay)
			p.ActivateAt = &at
			return p, writePointer(ctx, dst, p)
		}
	}
	if err := dst.Delete(ctx, PointerFile); err != nil {
		return nil, fmt.Errorf("publish: unpin: %w", err)
	}
	return nil, nil
}
