package syncer

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/manifest"
	"github.com/batchkv/batchkv/internal/objstore/file"
	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/swap"
)

// watchEnv makes the test binary a child process that follows the root in
// its value with the server's swap.Watcher, reads the live version in a
// loop as clients would (one of them slowly), prints "live <version>" after each swap, and on
// stdin's EOF prints "reads <n> errors <n>" and exits.
const watchEnv = "BATCHKV_SYNCER_TEST_WATCH"

func serveWatcher(root string) int {
	var cur swap.Current
	w := swap.NewWatcher(&cur, swap.Options{Root: root, PollInterval: 50 * time.Millisecond,
		OnSwap: func(st swap.Stats, _ time.Duration, err error) {
			if err != nil {
				fmt.Println("swap-error", err)
				return
			}
			fmt.Println("live", st.Version)
		}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { // owned here: cancelled and awaited below
		defer close(done)
		w.Run(ctx)
	}()
	var reads, errs atomic.Int64
	readerDone := make(chan struct{})
	go func() { // owned here: stops with ctx
		defer close(readerDone)
		for ctx.Err() == nil {
			v := cur.Acquire()
			if v == nil {
				time.Sleep(time.Millisecond)
				continue
			}
			// Keys are "<version>-key-NNNNNN"; every version has key 0..19.
			k := fmt.Sprintf("%s-key-%06d", v.DB.Meta().Version, reads.Load()%20)
			val, c, err := v.DB.Get([]byte(k))
			if err != nil || val.Data == nil {
				errs.Add(1)
			} else {
				c.Close()
			}
			reads.Add(1)
			v.Release()
		}
	}()
	// A slow reader holds each version it takes for 300ms, so a replaced
	// version keeps draining for a while after the swap, as with a client
	// reading a long reply.
	slowDone := make(chan struct{})
	go func() { // owned here: stops with ctx
		defer close(slowDone)
		for ctx.Err() == nil {
			if v := cur.Acquire(); v != nil {
				time.Sleep(300 * time.Millisecond)
				v.Release()
			} else {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	io.Copy(io.Discard, os.Stdin)
	cancel()
	<-done
	<-readerDone
	<-slowDone
	cur.Close()
	fmt.Printf("reads %d errors %d\n", reads.Load(), errs.Load())
	return 0
}

// TestWithServerWatcher runs the server's real swap.Watcher in another
// process while the syncer installs versions with keep 1: the version the
// server still has open is never deleted, it goes once the server let go,
// and the server's reads never fail.
func TestWithServerWatcher(t *testing.T) {
	ctx := context.Background()
	src, root := t.TempDir(), t.TempDir()
	for _, v := range []string{"v1", "v2", "v3"} {
		publishVersion(t, src, v, 20, 100)
	}
	fs := file.New(src)
	s := newTestSyncer(t, src, root, func(o *Options) { o.Keep = 1 })
	if err := publish.Pin(ctx, fs, "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), watchEnv+"="+root)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() { // ends when the child's stdout closes
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	expect := func(want string) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("child exited before %q", want)
				}
				if strings.HasPrefix(l, "swap-error") {
					t.Fatalf("server: %s", l)
				}
				if strings.HasPrefix(l, want) {
					return
				}
			case <-deadline:
				t.Fatalf("no %q from the server in 20s", want)
			}
		}
	}
	expect("live v1")

	for _, next := range []string{"v2", "v3"} {
		prev := readManifest(t, root).Version
		if err := publish.Pin(ctx, fs, next); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SyncOnce(ctx); err != nil {
			t.Fatal(err)
		}
		// The pass's GC ran right after the manifest changed, while the
		// server still had prev open (live, or draining for its slow reader).
		if got := versionsOnDisk(t, root); !slices.Equal(got, []string{prev, next}) {
			t.Fatalf("after installing %s with keep 1: %v, want the held %s kept", next, got, prev)
		}
		expect("live " + next)
		waitFor(t, func() bool {
			held, err := heldOpen(manifest.VersionDir(root, prev))
			return err == nil && !held
		})
		if _, err := s.SyncOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if got := versionsOnDisk(t, root); !slices.Equal(got, []string{next}) {
			t.Fatalf("after the server let go of %s: %v", prev, got)
		}
	}
	stdin.Close()
	var summary string
	for l := range lines {
		if strings.HasPrefix(l, "reads") {
			summary = l
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	var reads, errs int
	if _, err := fmt.Sscanf(summary, "reads %d errors %d", &reads, &errs); err != nil || reads == 0 || errs != 0 {
		t.Fatalf("server reads: %q", summary)
	}
	t.Logf("server: %s", summary)
}
