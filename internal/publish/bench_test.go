package publish_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/objstore/file"
	s3store "github.com/batchkv/batchkv/internal/objstore/s3"
	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/s3test"
	"github.com/batchkv/batchkv/internal/store"
)

// BenchmarkPublish publishes a version of one small table plus four 32 MiB
// files (standing in for large sstables) to a local directory and to the
// S3 gateway on the same machine: it measures the publisher's overhead
// (hashing, parallel multipart), not a network.
//
//	go test -run '^$' -bench BenchmarkPublish -benchtime 3x ./internal/publish
func BenchmarkPublish(b *testing.B) {
	ctx := context.Background()
	dir := filepath.Join(b.TempDir(), "v")
	meta := &store.Meta{Name: "bench", Version: "v"}
	if err := store.WriteVersion(ctx, dir, meta, []store.Entry{{Key: []byte("k"), Value: store.AppendString(nil, []byte("v"))}}); err != nil {
		b.Fatal(err)
	}
	var size int64
	buf := make([]byte, 32<<20)
	rng := rand.NewChaCha8([32]byte{3})
	for i := range 4 {
		rng.Read(buf)
		if err := os.WriteFile(filepath.Join(dir, "db", fmt.Sprintf("%06d.sst", 100+i)), buf, 0o644); err != nil {
			b.Fatal(err)
		}
		size += int64(len(buf))
	}
	run := func(b *testing.B, newStore func(i int) objstore.Store) {
		b.SetBytes(size)
		for i := 0; b.Loop(); i++ {
			if _, err := publish.Publish(ctx, dir, newStore(i), publish.Options{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("file", func(b *testing.B) {
		root := b.TempDir()
		run(b, func(i int) objstore.Store { return file.New(filepath.Join(root, fmt.Sprint(i))) })
	})
	b.Run("s3", func(b *testing.B) {
		srv := s3test.Start(b)
		run(b, func(i int) objstore.Store {
			st, err := s3store.New(ctx, srv.Bucket, fmt.Sprint("ds", i), srv.Options())
			if err != nil {
				b.Fatal(err)
			}
			return st
		})
	})
}
