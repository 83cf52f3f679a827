package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkSwap is `make bench-swap`: 50 connections of GET against a
// batchkv-server --root while the real syncer installs three new versions
// from a file:// source. It prints the summary, writes the per-window CSV to
// $BATCHKV_SWAP_CSV and the plot to $BATCHKV_SWAP_PNG (when set), and fails
// on any error reply. $BATCHKV_SERVER_BIN names the server binary
// (required); $BATCHKV_SWAP_KEYS the dataset size (default 500 000);
// $BATCHKV_SWAP_STEADY the steady time between swaps (default 8s).
func BenchmarkSwap(b *testing.B) {
	bin := os.Getenv("BATCHKV_SERVER_BIN")
	if bin == "" {
		b.Fatal("$BATCHKV_SERVER_BIN must name a batchkv-server binary (make bench-swap builds one)")
	}
	o := SwapOptions{ServerBin: bin, WorkDir: b.TempDir(), Progress: os.Stderr}
	if v := os.Getenv("BATCHKV_SWAP_KEYS"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		o.Keys = n
	}
	if v := os.Getenv("BATCHKV_SWAP_STEADY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		o.Steady = d
	}
	o.ServerFlags = strings.Fields(os.Getenv("BATCHKV_SWAP_SERVER_FLAGS"))
	for range b.N {
		r, err := RunSwap(context.Background(), o)
		if err != nil {
			b.Fatal(err)
		}
		if p := os.Getenv("BATCHKV_SWAP_CSV"); p != "" {
			writeFile(b, p, r.WriteCSV)
		}
		if p := os.Getenv("BATCHKV_SWAP_PNG"); p != "" {
			writeFile(b, p, r.WritePNG)
		}
		fmt.Print(r.Summary())
		b.ReportMetric(float64(r.Errors), "errors")
		b.ReportMetric(r.Swap.P99.Seconds()/max(r.Steady.P99.Seconds(), 1e-9), "p99_swap/steady")
		if r.Errors > 0 {
			b.Fatalf("%d of %d requests failed", r.Errors, r.Requests)
		}
	}
}

func writeFile(b *testing.B, path string, write func(w io.Writer) error) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := write(f); err != nil {
		f.Close()
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}
