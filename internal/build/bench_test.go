package build

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/batchkv/batchkv/internal/gen"
)

// BenchmarkBuildJSONL builds b.N × 100k generated feature-shaped records from
// 4 JSON Lines parts and reports records per second.
func BenchmarkBuildJSONL(b *testing.B) {
	dir := b.TempDir()
	n := int64(b.N) * 100000
	if _, err := gen.Generate(context.Background(), gen.Options{Dir: filepath.Join(dir, "in"), Keys: n, Parts: 4}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if _, err := Build(context.Background(), Options{Inputs: []string{filepath.Join(dir, "in")}, Out: filepath.Join(dir, "out"), Version: "v1"}); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
