package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/s3test"
)

// TestRapidPins flips the pin between versions every few hundred
// milliseconds under the same load as TestLiveSwapS3, so that new manifests
// arrive while the server is still opening, warming or draining a version,
// and rollbacks target versions still draining or already deleted (v1 is
// garbage-collected, then pinned again and downloaded anew; unpins go back
// to the greatest version). Every client rule holds as before; intermediate
// versions may be skipped by the server, never served out of order; the
// last one serves within 2 s of its install.
//
// With --keep 1 the syncer deletes each replaced version as soon as the
// server has closed it, so every rollback downloads again.
func TestRapidPins(t *testing.T) {
	for _, keep := range []string{"2", "1"} {
		t.Run("keep="+keep, func(t *testing.T) { rapidPins(t, keep) })
	}
}

func rapidPins(t *testing.T, keep string) {
	testStart := time.Now()
	u := newUniverse()
	srv := s3test.Start(t)
	const dataset = "e2e/flip"
	dst := srv.Store(t, dataset)
	for v := range nVersions {
		publishVersion(t, dst, u.writeVersion(t, v))
	}
	pin := func(v int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := publish.Pin(ctx, dst, versionNames[v]); err != nil {
			t.Fatalf("pin v%d: %v", v+1, err)
		}
	}
	pin(0)
	root, vw, syncer, s := startPod(t, u, srv, dataset, "--keep", keep)
	l, err := startLoad(s.addr, nClients, u, time.Now().Add(loadCap))
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	defer l.stopLoad() // on a t.Fatal below: clients stop before the servers do

	time.Sleep(500 * time.Millisecond)
	// Pins land every 60-300 ms, not waiting for installs: the syncer (200 ms
	// polls) may skip some, the server may get a new manifest while it
	// opens, warms or drains a version.
	// -1 unpins: the syncers go back to the greatest version, v3.
	flips := []int{1, 2, 1, 2, 0, -1, 0, 1, 2, 1, -1}
	rng := rand.New(rand.NewPCG(7, 7))
	for _, v := range flips {
		if v < 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := publish.Unpin(ctx, dst)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
		} else {
			pin(v)
		}
		time.Sleep(time.Duration(60+rng.IntN(240)) * time.Millisecond)
	}
	last := nVersions - 1 // unpinned: the greatest
	deadline := time.Now().Add(stepTimeout)
	for {
		ins, _ := vw.snapshot()
		if ins[len(ins)-1].version == versionNames[last] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("last pin v%d not installed within %v (installs: %+v)", last+1, stepTimeout, ins)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := waitInfoVersion(s.addr, versionNames[last], stepTimeout); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	l.stopLoad()

	// The versions went live in the order the manifest named them (the
	// volume watcher polls every 5 ms; the syncer writes at most one
	// manifest per 200 ms poll).
	installs, problems := vw.snapshot()
	byName := map[string]int{}
	for v, name := range versionNames {
		byName[name] = v
	}
	var phases []int
	for _, in := range installs {
		phases = append(phases, byName[in.version])
	}
	a, batches, _ := checkClients(t, l, phases)
	for _, p := range problems {
		t.Errorf("shared volume: %s", p)
	}
	q := len(phases) - 1
	if a.firstSeen[q] < 0 {
		t.Errorf("no reply attributed to the last version")
	} else if lat := l.t0.Add(a.firstSeen[q]).Sub(installs[q].at); lat > liveWithin {
		t.Errorf("last version served %v after its install, want within %v", lat, liveWithin)
	} else {
		t.Logf("last version served %v after its install", lat.Round(time.Millisecond))
	}

	// The server made some of the versions live (it may skip one whose
	// manifest was replaced while it opened it); each one replaced is closed.
	var live []string
	for _, line := range s.logLines("version live") {
		live = append(live, fmt.Sprint(line["version"]))
	}
	var closed []string
	deadline = time.Now().Add(stepTimeout)
	for {
		closed = closed[:0]
		for _, line := range s.logLines("replaced version closed") {
			closed = append(closed, fmt.Sprint(line["version"]))
		}
		if len(closed) >= len(live)-1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(live) < 2 || live[len(live)-1] != versionNames[last] {
		t.Errorf("server made live %v: want at least one swap, ending on %s", live, versionNames[last])
	}
	// Each replaced version closes when its last reader leaves, so the
	// closes need not come in the order of the swaps.
	replaced := slices.Clone(live[:max(len(live)-1, 0)])
	slices.Sort(replaced)
	slices.Sort(closed)
	if !slices.Equal(closed, replaced) {
		t.Errorf("server closed %v, want every replaced version %v", closed, replaced)
	}
	// versions/ comes down to --keep versions, the live one among them.
	nKeep, _ := strconv.Atoi(keep)
	var dirs []string
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(50 * time.Millisecond) {
		dirs, err = installedVersions(root)
		if err == nil && len(dirs) <= nKeep && slices.Contains(dirs, versionNames[last]) || time.Now().After(deadline) {
			break
		}
	}
	if len(dirs) > nKeep || !slices.Contains(dirs, versionNames[last]) {
		t.Errorf("versions/ holds %v (%v): want at most %d, %s among them", dirs, err, nKeep, versionNames[last])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := infoDataset(ctx, s.addr)
	if err != nil {
		t.Fatal(err)
	}
	if info["version"] != versionNames[last] || info["swap_failures"] != "0" || info["swaps"] != fmt.Sprint(len(live)-1) {
		t.Errorf("INFO dataset %v: want version %s, %d swaps, no failures", info, versionNames[last], len(live)-1)
	}
	checkLogs(t, syncer, s.child)
	t.Logf("%d pins, %d manifests, server made %d versions live (%v); %d batches; total %v",
		len(flips), len(installs)-1, len(live), live, batches, time.Since(testStart).Round(time.Millisecond))
}
