package syncer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/batchkv/batchkv/internal/manifest"
	"github.com/batchkv/batchkv/internal/release"
	"go.uber.org/zap"
)

// Repair of a damaged installed version.
//
// An installed version is never modified, but it can still be damaged under
// the syncer and the server: a file deleted or truncated by an operator, a
// bug, a disk. Every pass checks the installed copy of the target version
// against the release (every listed file present with its listed size, and
// the release file itself: the checks cost one stat per file, no reading;
// the SHA-256 sums were verified at install). A damaged copy is moved to the
// trash, and the pass then downloads, verifies and installs the version
// again and rewrites the manifest, as for a new version; the server, which
// fails readiness meanwhile (swap/health.go), reopens the fresh copy. A
// version directory deleted outright needs no repair step: the pass finds it
// missing and installs it again the same way.

// checkInstalledCopy checks dir, an installed copy of rel's version.
func checkInstalledCopy(dir string, rel *release.Release) error {
	if _, err := os.Stat(filepath.Join(dir, release.FileName)); err != nil {
		return fmt.Errorf("release file: %w", err)
	}
	for _, f := range rel.Files {
		fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			return fmt.Errorf("file %s: %w", f.Path, err)
		}
		if fi.Size() != f.Size {
			return fmt.Errorf("file %s: size %d, release says %d", f.Path, fi.Size(), f.Size)
		}
	}
	return nil
}

// repairInstalled moves a damaged installed copy of t out of versions/ so
// that the pass installs it again. A missing copy is left to the pass.
func (s *Syncer) repairInstalled(t *target) error {
	dir := manifest.VersionDir(s.opts.Root, t.version)
	if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) || err == nil && !fi.IsDir() {
		return nil
	}
	err := checkInstalledCopy(dir, t.rel)
	if err == nil {
		return nil
	}
	s.log.Error("installed version damaged on disk: reinstalling it", zap.String(keyVersion, t.version), zap.Error(err))
	if err := s.trash(dir, t.version); err != nil {
		return failure(KindInstall, fmt.Errorf("syncer: remove damaged version %s: %w", t.version, err))
	}
	return nil
}
