package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/store"
)

// TestBinary builds batchkv-server, serves a dataset on a port the OS picks
// (read back from the "listening" log line), talks to it, and stops it with
// SIGTERM.
func TestBinary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "batchkv-server")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ds := filepath.Join(dir, "v1")
	err := store.WriteVersion(context.Background(), ds, &store.Meta{Name: "demo", Version: "v1"}, []store.Entry{
		{Key: []byte("k"), Value: store.AppendString(nil, []byte("v"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--addr", "127.0.0.1:0", "--dataset", ds, "--cache-bytes", "8388608",
		"--metrics-addr", "", "--shutdown-drain", "0")
	cmd.Env = append(os.Environ(), "BATCHKV_REQUIREPASS=s3cret")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addrc <- line.Addr
			}
		}
		close(addrc)
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(20 * time.Second):
		t.Fatal("no listening line")
	}
	if addr == "" || strings.HasSuffix(addr, ":0") {
		t.Fatalf("listening on %q", addr)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("GET k\r\nAUTH s3cret\r\nGET k\r\nQUIT\r\n"))
	got, _ := io.ReadAll(c)
	want := "-NOAUTH Authentication required.\r\n+OK\r\n$1\r\nv\r\n+OK\r\n"
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "batchkv-server")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, args := range [][]string{{}, {"--root", dir, "--dataset", dir}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "give exactly one of --root and --dataset") {
			t.Fatalf("%q: %v %s", args, err, out)
		}
	}
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "BATCHKV_MAXCLIENTS") || !strings.Contains(string(out), "BATCHKV_REQUIREPASS_FILE") || !strings.Contains(string(out), "BATCHKV_ROOT") ||
		!strings.Contains(string(out), "BATCHKV_METRICS_ADDR") || !strings.Contains(string(out), "BATCHKV_SHUTDOWN_DRAIN") || !strings.Contains(string(out), "BATCHKV_PPROF") {
		t.Fatalf("--help: %v %s", err, out)
	}
}
