package syncer

import (
	"context"
	"errors"
	"fmt"

	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/release"
)

// ErrNoTarget reports a source with no complete version to serve.
var ErrNoTarget = errors.New("syncer: no complete version at the source")

// target is the version the source says to serve, with its release file.
type target struct {
	version string
	rel     *release.Release
	raw     []byte // the release file, copied into the installed version
}

// resolveTarget finds the version to serve (publish.Target: the pinned
// version if there is a pointer, else the greatest complete version) and its
// validated release, and classifies failures.
func resolveTarget(ctx context.Context, src objstore.Store) (*target, error) {
	v, rel, err := publish.Target(ctx, src)
	switch {
	case err == nil:
	case errors.Is(err, publish.ErrNoVersion), errors.Is(err, publish.ErrIncomplete):
		return nil, failure(KindNoTarget, fmt.Errorf("%w: %w", ErrNoTarget, err))
	case errors.Is(err, release.ErrInvalid):
		return nil, failure(KindRelease, fmt.Errorf("syncer: %w", err))
	default:
		return nil, failure(KindSource, fmt.Errorf("syncer: resolve target: %w", err))
	}
	// Re-encoded rather than copied byte for byte: what is installed is
	// exactly what was validated.
	raw, err := rel.Marshal()
	if err != nil {
		return nil, failure(KindRelease, fmt.Errorf("syncer: %w", err))
	}
	return &target{version: v, rel: rel, raw: raw}, nil
}
