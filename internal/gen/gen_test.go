package gen

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/batchkv/batchkv/internal/input"
)

// TestGenerateReadsBack checks every format against RecordAt through the
// input readers the builder uses.
func TestGenerateReadsBack(t *testing.T) {
	for _, tt := range []struct {
		name   string
		format string
		gzip   bool
	}{
		{"jsonl", FormatJSONL, false},
		{"jsonl.gz", FormatJSONL, true},
		{"parquet", FormatParquet, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			const n = 3000
			paths, err := Generate(context.Background(), Options{Dir: dir, Keys: n, Seed: 7, Parts: 3, Format: tt.format, Gzip: tt.gzip})
			if err != nil {
				t.Fatal(err)
			}
			if len(paths) != 3 {
				t.Fatalf("paths = %v", paths)
			}
			files, err := input.Expand([]string{dir}, input.FormatAuto)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != 3 {
				t.Fatalf("Expand found %d files, want 3 (the _SUCCESS marker is skipped)", len(files))
			}
			var i int64
			hashes := 0
			for _, f := range files {
				rd, err := input.Open(f, input.Options{})
				if err != nil {
					t.Fatal(err)
				}
				var rec input.Record
				for {
					err := rd.Next(&rec)
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					want := RecordAt(7, i)
					if string(rec.Key) != want.Key || len(rec.Key) != 64 {
						t.Fatalf("record %d key %q, want %q", i, rec.Key, want.Key)
					}
					if want.Fields == nil {
						if rec.Kind != input.KindString || string(rec.Value) != want.Value {
							t.Fatalf("record %d = %v %q, want string %q", i, rec.Kind, rec.Value, want.Value)
						}
					} else {
						hashes++
						if rec.Kind != input.KindHash || len(rec.Hash) != len(want.Fields) || len(want.Fields) > 20 {
							t.Fatalf("record %d = %v %d fields, want %d", i, rec.Kind, len(rec.Hash), len(want.Fields))
						}
						for j, f := range want.Fields {
							if string(rec.Hash[j].Name) != f.Name || string(rec.Hash[j].Value) != strconv.FormatInt(f.Value, 10) {
								t.Fatalf("record %d field %d = %s=%s, want %s=%d", i, j, rec.Hash[j].Name, rec.Hash[j].Value, f.Name, f.Value)
							}
						}
					}
					i++
				}
				rd.Close()
			}
			if i != n {
				t.Fatalf("read %d records, want %d", i, n)
			}
			if hashes < n*30/100 || hashes > n*50/100 {
				t.Fatalf("%d hashes of %d records, want about 40%%", hashes, n)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	a, b := RecordAt(1, 42), RecordAt(1, 42)
	if a.Key != b.Key || a.Value != b.Value || len(a.Fields) != len(b.Fields) {
		t.Fatalf("RecordAt is not deterministic: %+v %+v", a, b)
	}
	if RecordAt(2, 42).Key == a.Key {
		t.Fatal("seeds 1 and 2 give the same key")
	}
	seen := map[string]bool{}
	for i := range int64(10000) {
		k := RecordAt(3, i).Key
		if seen[k] {
			t.Fatalf("key %s repeats", k)
		}
		seen[k] = true
	}
}
