package harness

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/store"
)

// Key is the i-th key of the datasets WriteVersion writes.
func Key(i int) string { return fmt.Sprintf("k:%d", i) }

// Value is the value of Key(i) in a version tagged tag.
func Value(tag string, i int) string { return fmt.Sprintf("%s:%d", tag, i) }

// WriteVersion writes a version named version of dataset "hostile" under
// parent holding n strings Key(i) → Value(tag, i), and returns its
// directory.
func WriteVersion(t testing.TB, parent, version, tag string, n int) string {
	t.Helper()
	es := make([]store.Entry, n)
	for i := range es {
		es[i] = store.Entry{Key: []byte(Key(i)), Value: store.AppendString(nil, []byte(Value(tag, i)))}
	}
	dir := filepath.Join(parent, version)
	meta := &store.Meta{Name: "hostile", Version: version, BuiltAt: time.Now().UTC().Truncate(time.Second)}
	if err := store.WriteVersion(context.Background(), dir, meta, es); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Publish uploads a built version with the real publisher.
func Publish(t testing.TB, dst objstore.Store, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := publish.Publish(ctx, dir, dst, publish.Options{}); err != nil {
		t.Fatalf("publish %s: %v", dir, err)
	}
}
