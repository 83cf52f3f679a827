package server

import (
	"slices"
	"testing"

	"github.com/batchkv/batchkv/internal/swap"
)

// TestSamplerSeesReads: the keys clients read reach the sampler the swap
// watcher warms new versions with; missing keys do not.
func TestSamplerSeesReads(t *testing.T) {
	sampler := swap.NewSampler(1024, 1) // keep every read
	ts := startServer(t, Config{Sampler: sampler}, testData)
	// Each key read 20 times: a sampled key lands in a random slot, so a
	// later one may replace it; 20 copies make losing them all negligible.
	var req []byte
	for range 20 {
		req = appendCmd(req, "GET", "s")
		req = appendCmd(req, "HGETALL", "h")
		req = appendCmd(req, "GET", "missing")
	}
	exchange(t, ts.addr, req, 60, false)
	var got []string
	for _, k := range sampler.Keys() {
		got = append(got, string(k))
	}
	if !slices.Contains(got, "s") || !slices.Contains(got, "h") || slices.Contains(got, "missing") {
		t.Fatalf("sampled keys %q, want s and h and not missing", got)
	}
}
