package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/s3test"
)

// activateWindow is how close to its activation time a version must go
// live (the SPEC's aim for the shards of one dataset: within 1 s).
const activateWindow = time.Second

// TestActivateAt publishes v2 with an activation time 2 s ahead, under
// load: the server opens it once installed but serves v1 until that time,
// then swaps within activateWindow; no client ever sees v2 before it.
func TestActivateAt(t *testing.T) {
	u := newUniverse()
	srv := s3test.Start(t)
	const dataset = "e2e/activate"
	dst := srv.Store(t, dataset)
	publishVersion(t, dst, u.writeVersion(t, 0))
	v2 := u.writeVersion(t, 1)
	_, vw, syncer, s := startPod(t, u, srv, dataset)
	l, err := startLoad(s.addr, nClients, u, time.Now().Add(loadCap))
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	defer l.stopLoad() // on a t.Fatal below: clients stop before the servers do

	time.Sleep(300 * time.Millisecond)
	// Whole seconds: the release and manifest may keep less than
	// nanoseconds.
	activateAt := time.Now().Add(2500 * time.Millisecond).Truncate(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := publish.Publish(ctx, v2, dst, publish.Options{ActivateAt: activateAt}); err != nil {
		t.Fatal(err)
	}
	ins, ok := vw.waitInstall(2, versionNames[1], stepTimeout)
	if !ok {
		t.Fatalf("v2 not installed within %v", stepTimeout)
	}
	if !ins.at.Before(activateAt) {
		t.Fatalf("v2 installed at %v, after its activation time %v: the test did not exercise the wait", ins.at, activateAt)
	}
	if _, err := waitInfoVersion(s.addr, versionNames[1], stepTimeout); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	l.stopLoad()

	a, _, _ := checkClients(t, l, []int{0, 1})
	if a.firstSeen[1] < 0 {
		t.Fatal("no reply from v2")
	}
	first := l.t0.Add(a.firstSeen[1])
	// The earliest a batch could have been answered from v2 is its
	// activation time: every batch that started before it must be v1's.
	var early int
	for _, lc := range l.clients {
		for _, x := range lc.samples {
			if l.t0.Add(x.end).Before(activateAt) && x.m&1 == 0 {
				early++
			}
		}
	}
	t.Logf("v2 installed %v before its activation time; first reply from it %v after", activateAt.Sub(ins.at).Round(time.Millisecond),
		first.Sub(activateAt).Round(time.Millisecond))
	if early > 0 {
		t.Errorf("%d batches answered from v2 before its activation time", early)
	}
	if d := first.Sub(activateAt); d > activateWindow {
		t.Errorf("v2 went live %v after its activation time, want within %v", d, activateWindow)
	}
	if lines := s.logLines("version ready, waiting for its activation time"); len(lines) != 1 {
		t.Errorf("server logged %d waits for an activation time, want 1", len(lines))
	}
	checkLogs(t, syncer, s.child)
}
