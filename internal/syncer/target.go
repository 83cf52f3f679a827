package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/release"
)

// ErrNoTarget reports a source with no complete version to serve.
var ErrNoTarget = errors.New("syncer: no complete version at the source")

// pointerKey is the optional object that pins the version to serve.
const pointerKey = "pointer.json"

// target is the version the source says to serve, with its release file.
type target struct {
	version string
	rel     *release.Release
	raw     []byte // the release file as published, copied into the install
	pinned  bool
	seen    int // complete versions found (when listed)
}

// resolveTarget finds the version to serve: the one the pointer names if
// there is a pointer, else the greatest complete version (one whose release
// file exists). The release is fetched and validated before anything else
// happens.
//
// TODO: switch to publish.Target when it lands; this mirrors its contract.
func resolveTarget(ctx context.Context, src objstore.Store) (*target, error) {
	t := &target{}
	b, err := readAll(ctx, src, pointerKey, 1<<20)
	switch {
	case err == nil:
		var p struct {
			Version string `json:"version"`
		}
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, failure(KindSource, fmt.Errorf("syncer: %s/%s: %w", src, pointerKey, err))
		}
		if err := release.ValidName(p.Version); err != nil {
			return nil, failure(KindSource, fmt.Errorf("syncer: %s/%s: %w", src, pointerKey, err))
		}
		t.version, t.pinned = p.Version, true
	case errors.Is(err, objstore.ErrNotExist):
		names, err := src.ListPrefixes(ctx, "versions/")
		if err != nil {
			return nil, failure(KindSource, fmt.Errorf("syncer: list versions: %w", err))
		}
		for i := len(names) - 1; i >= 0; i-- {
			if release.ValidName(names[i]) != nil {
				continue
			}
			_, err := src.Stat(ctx, releaseKey(names[i]))
			if errors.Is(err, objstore.ErrNotExist) {
				continue // incomplete: still being published, or abandoned
			}
			if err != nil {
				return nil, failure(KindSource, fmt.Errorf("syncer: %w", err))
			}
			t.seen++
			if t.version == "" {
				t.version = names[i]
			}
		}
		if t.version == "" {
			return nil, failure(KindNoTarget, fmt.Errorf("%w (%s)", ErrNoTarget, src))
		}
	default:
		return nil, failure(KindSource, fmt.Errorf("syncer: read pointer: %w", err))
	}
	raw, err := readAll(ctx, src, releaseKey(t.version), release.MaxBytes)
	if err != nil {
		if errors.Is(err, objstore.ErrNotExist) {
			return nil, failure(KindNoTarget, fmt.Errorf("%w: version %q has no release file", ErrNoTarget, t.version))
		}
		return nil, failure(KindSource, fmt.Errorf("syncer: read release of %s: %w", t.version, err))
	}
	rel, err := release.Parse(raw)
	if err != nil {
		return nil, failure(KindRelease, fmt.Errorf("syncer: %s: %w", releaseKey(t.version), err))
	}
	if rel.Version != t.version {
		return nil, failure(KindRelease, fmt.Errorf("syncer: %s: %w: names version %q", releaseKey(t.version), release.ErrInvalid, rel.Version))
	}
	t.rel, t.raw = rel, raw
	return t, nil
}

func releaseKey(version string) string { return path.Join("versions", version, release.FileName) }

// readAll reads a whole small object, refusing one over limit bytes.
func readAll(ctx context.Context, src objstore.Store, key string, limit int64) ([]byte, error) {
	rc, err := src.ReadRange(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", src, key, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: %s is over %d bytes", src, key, limit)
	}
	return b, nil
}
