package swap

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/manifest"
	"github.com/batchkv/batchkv/internal/store"
)

// TestMain lets the test binary double as "another server process" that
// holds a version open: Pebble's lock is an fcntl lock, per process, so only a
// real second process can hold it against this one.
func TestMain(m *testing.M) {
	if dir := os.Getenv("BATCHKV_SWAP_TEST_HOLD"); dir != "" {
		db, err := store.Open(dir, nil)
		if err != nil {
			fmt.Println("open failed:", err)
			os.Exit(1)
		}
		fmt.Println("holding")
		// Hold until stdin closes (the parent tells us to let go).
		bufio.NewReader(os.Stdin).ReadString('\n')
		db.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestWatcherWaitsForAnotherProcess: during an overlapping restart the old
// server process still holds the version; the new one must keep retrying and
// serve it once the old one lets go, not give up until the manifest changes.
func TestWatcherWaitsForAnotherProcess(t *testing.T) {
	root := t.TempDir()
	installVersion(t, root, "v1", "one")
	setManifest(t, root, "v1", nil)

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "BATCHKV_SWAP_TEST_HOLD="+manifest.VersionDir(root, "v1"))
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "holding" {
		t.Fatalf("child: %q", line)
	}

	var cur Current
	defer cur.Close()
	w := NewWatcher(&cur, Options{Root: root, PollInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	time.Sleep(200 * time.Millisecond) // several polls against the held lock
	if cur.Live() {
		t.Fatal("opened a version another process holds")
	}
	if st := w.Stats(); st.Failures != 1 || !strings.Contains(st.LastError, "retrying") {
		t.Fatalf("stats while blocked: %+v (want one failure reported once, not per poll)", st)
	}
	stdin.Close() // the old process lets go
	if err := child.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	waitFor(t, 5*time.Second, func() bool { return cur.Live() })
	if got := readK(t, &cur); got != "v1" {
		t.Fatalf("serving %s", got)
	}
}
