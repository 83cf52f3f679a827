package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/batchkv/batchkv/internal/manifest"
)

// install is one manifest change the test saw on the shared volume.
type install struct {
	version string
	// at is the manifest's installed_at (the syncer's clock, this machine),
	// seen when the test noticed the new manifest.
	at, seen time.Time
}

// volumeWatcher polls <root>/manifest.json and versions/ every few
// milliseconds, recording each manifest change and checking that the live
// version's directory is always there.
type volumeWatcher struct {
	root string
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	installs []install
	problems []string
}

func watchVolume(root string) *volumeWatcher {
	w := &volumeWatcher{root: root, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run() // owned by w: close stops it and waits
	return w
}

func (w *volumeWatcher) run() {
	defer close(w.done)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		m, err := manifest.Read(w.root)
		if err != nil {
			// Before the first install it is missing; once there it is
			// replaced by rename, so it must always read whole.
			if last != "" {
				w.problem("manifest unreadable after the first install: " + err.Error())
			}
			continue
		}
		if m.Version != last {
			w.mu.Lock()
			w.installs = append(w.installs, install{version: m.Version, at: m.InstalledAt, seen: time.Now()})
			w.mu.Unlock()
			last = m.Version
		}
		if _, err := os.Stat(filepath.Join(manifest.VersionDir(w.root, m.Version), "dataset.json")); err != nil {
			// Only a problem if that version is still the live one: between
			// the read and the stat, the manifest may have moved on.
			if m2, err2 := manifest.Read(w.root); err2 == nil && m2.Version == m.Version {
				w.problem("live version " + m.Version + " missing from versions/: " + err.Error())
			}
		}
	}
}

func (w *volumeWatcher) problem(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.problems) < 20 {
		w.problems = append(w.problems, time.Now().Format("15:04:05.000")+" "+s)
	}
}

func (w *volumeWatcher) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *volumeWatcher) snapshot() ([]install, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.installs), slices.Clone(w.problems)
}

// waitInstall waits until the manifest names version (as its n-th change,
// counting from 1), or timeout.
func (w *volumeWatcher) waitInstall(n int, version string, timeout time.Duration) (install, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ins, _ := w.snapshot()
		if len(ins) >= n && ins[n-1].version == version {
			return ins[n-1], true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return install{}, false
}

// installedVersions lists <root>/versions/.
func installedVersions(root string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(root, manifest.VersionsDir))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names, nil
}
