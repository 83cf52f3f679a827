package syncer

import (
	"errors"
	"sync/atomic"
	"time"
)

// Kind classifies a failed pass, for logs and metrics.
type Kind int

// Failure kinds.
const (
	KindSource   Kind = iota // listing or reading the source failed
	KindNoTarget             // no complete version to serve
	KindRelease              // the release file is invalid
	KindNoSpace              // not enough free disk space
	KindDownload             // a part could not be downloaded
	KindMissing              // a file the release lists is missing
	KindChecksum             // a file's size or SHA-256 did not match
	KindMetadata             // dataset.json is invalid or disagrees with the release
	KindInstall              // staging, renaming or writing the manifest failed
	KindGC                   // deleting an old version failed
	KindShard                // sharded and unsharded (or shard counts) do not match
	numKinds
)

var kindNames = [numKinds]string{"source", "no_target", "release", "no_space", "download", "missing", "checksum", "metadata", "install", "gc", "shard"}

func (k Kind) String() string {
	if k < 0 || k >= numKinds {
		return "unknown"
	}
	return kindNames[k]
}

// Kinds lists every failure kind, for exporting metrics.
func Kinds() []Kind {
	out := make([]Kind, numKinds)
	for i := range out {
		out[i] = Kind(i)
	}
	return out
}

// Error is a failed step of a pass, with its kind.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func failure(k Kind, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err // keep the innermost, most precise kind
	}
	return &Error{Kind: k, Err: err}
}

// KindOf returns the kind of a pass's error (KindSource if unclassified).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindSource
}

// Stats are the syncer's counters, safe to read while it runs.
type Stats struct {
	// Passes counts sync passes; VersionsSeen the distinct target versions
	// the source named, one per change of target.
	Passes       atomic.Int64
	VersionsSeen atomic.Int64
	// Installs counts versions downloaded and installed; Rollbacks the manifest
	// rewrites to a version already on disk.
	Installs  atomic.Int64
	Rollbacks atomic.Int64
	// BytesDownloaded counts bytes received from the source (retries
	// included); DownloadNanos the wall time spent downloading.
	BytesDownloaded atomic.Int64
	DownloadNanos   atomic.Int64
	// FilesVerified and VersionsDeleted count verifications and GC deletions.
	FilesVerified   atomic.Int64
	VersionsDeleted atomic.Int64
	// FreeBytes is the free space on the root filesystem at the last check.
	FreeBytes atomic.Int64
	// LastSuccess is when a pass last ended with the target live (Unix ns).
	LastSuccess atomic.Int64

	// Coordinated activation (sharded datasets). Waiting is 1 while an
	// installed version waits for other shards, since WaitingSince (Unix
	// ns); Missing lists the shards not ready yet. ActivateAt is the last
	// activation time written to the manifest (Unix ns); Late counts
	// activations found already past (this shard was late), Activations all
	// coordinated activations.
	Waiting      atomic.Int64
	WaitingSince atomic.Int64
	Missing      atomic.Pointer[[]int]
	ActivateAt   atomic.Int64
	Late         atomic.Int64
	Activations  atomic.Int64

	failures [numKinds]atomic.Int64
}

// Failures returns how many passes failed with kind k.
func (s *Stats) Failures(k Kind) int64 {
	if k < 0 || k >= numKinds {
		return 0
	}
	return s.failures[k].Load()
}

func (s *Stats) fail(err error) {
	s.failures[KindOf(err)].Add(1)
}

// Snapshot is a copy of Stats at one moment, for logs and tests.
type Snapshot struct {
	Passes, VersionsSeen, Installs, Rollbacks int64
	BytesDownloaded                           int64
	DownloadDuration                          time.Duration
	FilesVerified, VersionsDeleted            int64
	FreeBytes                                 int64
	LastSuccess                               time.Time
	Failures                                  map[string]int64
	// Coordinated activation: see Stats.
	Waiting           bool
	WaitingSince      time.Time
	Missing           []int
	ActivateAt        time.Time
	Late, Activations int64
}

// Snapshot copies the counters.
func (s *Stats) Snapshot() Snapshot {
	out := Snapshot{
		Passes:           s.Passes.Load(),
		VersionsSeen:     s.VersionsSeen.Load(),
		Installs:         s.Installs.Load(),
		Rollbacks:        s.Rollbacks.Load(),
		BytesDownloaded:  s.BytesDownloaded.Load(),
		DownloadDuration: time.Duration(s.DownloadNanos.Load()),
		FilesVerified:    s.FilesVerified.Load(),
		VersionsDeleted:  s.VersionsDeleted.Load(),
		FreeBytes:        s.FreeBytes.Load(),
		Failures:         map[string]int64{},
	}
	if ns := s.LastSuccess.Load(); ns != 0 {
		out.LastSuccess = time.Unix(0, ns)
	}
	out.Waiting = s.Waiting.Load() != 0
	if ns := s.WaitingSince.Load(); ns != 0 && out.Waiting {
		out.WaitingSince = time.Unix(0, ns)
	}
	if m := s.Missing.Load(); m != nil && out.Waiting {
		out.Missing = append([]int(nil), (*m)...)
	}
	if ns := s.ActivateAt.Load(); ns != 0 {
		out.ActivateAt = time.Unix(0, ns).UTC()
	}
	out.Late, out.Activations = s.Late.Load(), s.Activations.Load()
	for k := range numKinds {
		if n := s.failures[k].Load(); n != 0 {
			out.Failures[k.String()] = n
		}
	}
	return out
}
