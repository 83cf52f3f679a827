package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/batchkv/batchkv/internal/gen"
	"github.com/batchkv/batchkv/internal/manifest"
	"github.com/batchkv/batchkv/internal/proc"
)

// StringRecord returns the first string record of the dataset of seed: a
// key and the value a GET must answer.
func StringRecord(seed uint64) (key, value string) {
	for i := int64(0); ; i++ {
		if r := gen.RecordAt(seed, i); r.Fields == nil {
			return r.Key, r.Value
		}
	}
}

// Startup is one timed start of a batchkv-server (and, for a new pod, a
// batchkv-syncer started at the same moment).
type Startup struct {
	// Ready is from the exec of the processes to the first GET answered
	// with the right value.
	Ready time.Duration
	// Installed is from the exec to the manifest's appearance on the volume
	// (a new pod: download, verify and install by the syncer); 0 when the
	// version was already there.
	Installed time.Duration
}

// AfterInstall is how long after the install the server answered (Ready −
// Installed; Ready when the version was already on the volume).
func (s Startup) AfterInstall() time.Duration { return s.Ready - s.Installed }

// StartPod starts the server on root (and the syncer, when syncerArgs is
// not nil) at the same moment and measures when the manifest appears and
// when GET key first answers want. The processes are left running: the
// caller stops them (stop is safe to call more than once).
func StartPod(ctx context.Context, serverBin string, serverArgs []string, syncerArgs []string, root, key, want string, timeout time.Duration) (st Startup, stop func(), err error) {
	var procs []*proc.Process
	stop = func() {
		for _, p := range procs {
			p.Stop(5 * time.Second)
		}
	}
	port, err := freePort()
	if err != nil {
		return st, stop, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	start := time.Now()
	if syncerArgs != nil {
		p, err := proc.Start("batchkv-syncer", exec.Command(syncerArgs[0], syncerArgs[1:]...), 64<<10)
		if err != nil {
			return st, stop, err
		}
		procs = append(procs, p)
	}
	args := append([]string{"--addr", addr, "--root", root}, serverArgs...)
	p, err := proc.Start("batchkv-server", exec.Command(serverBin, args...), 64<<10)
	if err != nil {
		return st, stop, err
	}
	procs = append(procs, p)
	mpath := filepath.Join(root, manifest.FileName)
	if _, err := os.Stat(mpath); err != nil {
		// Watch for the manifest while the server is polled.
		found := make(chan time.Duration, 1)
		wctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		go func() { // owned: ends with wctx, at the latest when StartPod returns
			defer close(found)
			for wctx.Err() == nil {
				if _, err := os.Stat(mpath); err == nil {
					found <- time.Since(start)
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		at, err := WaitServing(ctx, addr, key, want, timeout)
		if err != nil {
			return st, stop, fmt.Errorf("%w\n--- server ---\n%s\n--- syncer ---\n%s", err, p.Output(), procs[0].Output())
		}
		st.Ready = at.Sub(start)
		d, ok := <-found
		if !ok {
			return st, stop, fmt.Errorf("bench: serving, yet no manifest at %s", mpath)
		}
		st.Installed = d
		return st, stop, nil
	}
	at, err := WaitServing(ctx, addr, key, want, timeout)
	if err != nil {
		return st, stop, fmt.Errorf("%w\n--- server ---\n%s", err, p.Output())
	}
	st.Ready = at.Sub(start)
	return st, stop, nil
}

// medianOf returns the median of ds (the lower middle when even).
func medianOf(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
