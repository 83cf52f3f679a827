package gen

import (
	"context"
	"path/filepath"
	"testing"
)

// BenchmarkGenerate reports generated records per second per format.
func BenchmarkGenerate(b *testing.B) {
	for _, format := range []string{FormatJSONL, FormatParquet} {
		b.Run(format, func(b *testing.B) {
			const n = 200000
			for range b.N {
				dir := filepath.Join(b.TempDir(), "d")
				if _, err := Generate(context.Background(), Options{Dir: dir, Keys: n, Parts: 2, Format: format}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
