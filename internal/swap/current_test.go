package swap

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/store"
)

func openVersion(t testing.TB, name, value string) *store.DB {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	entries := []store.Entry{{Key: []byte("k"), Value: store.AppendString(nil, []byte(value))}}
	if err := store.WriteVersion(context.Background(), dir, &store.Meta{Name: "t", Version: name}, entries); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestSwapClosesOldVersionAfterLastReader(t *testing.T) {
	var c Current
	if c.Acquire() != nil {
		t.Fatal("zero Current has a version")
	}
	var closes atomic.Int32
	onClose := func(*Version, error) { closes.Add(1) }
	v1 := NewVersion(openVersion(t, "v1", "one"), onClose)
	c.Swap(v1)
	r := c.Acquire()
	if r != v1 {
		t.Fatal("Acquire did not return v1")
	}
	v2 := NewVersion(openVersion(t, "v2", "two"), onClose)
	if prev := c.Swap(v2); prev != v1 {
		t.Fatal("Swap did not return v1")
	}
	select {
	case <-v1.Closed():
		t.Fatal("v1 closed while a reader holds it")
	default:
	}
	// The reader still reads v1 consistently.
	val, cl, err := r.DB.Get([]byte("k"))
	if err != nil || string(val.Data) != "one" {
		t.Fatalf("read from held v1 = %q, %v", val.Data, err)
	}
	cl.Close()
	r.Release()
	<-v1.Closed()
	if got := c.Acquire(); got != v2 {
		t.Fatal("Acquire after swap did not return v2")
	} else {
		got.Release()
	}
	c.Close()
	<-v2.Closed()
	if closes.Load() != 2 {
		t.Fatalf("onClose ran %d times, want 2", closes.Load())
	}
}

// TestConcurrentSwaps hammers Acquire/Release against swaps: no reader may
// ever see a closed database, and every version ends closed.
func TestConcurrentSwaps(t *testing.T) {
	var c Current
	c.Swap(NewVersion(openVersion(t, "v0", "0"), nil))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := c.Acquire()
				_, cl, err := v.DB.Get([]byte("k"))
				if err != nil {
					t.Errorf("read: %v", err)
					v.Release()
					return
				}
				cl.Close()
				v.Release()
				reads.Add(1)
			}
		}()
	}
	var olds []*Version
	deadline := time.Now().Add(2 * time.Second)
	for i := 1; i <= 20 && time.Now().Before(deadline); i++ {
		olds = append(olds, c.Swap(NewVersion(openVersion(t, "v"+string(rune('a'+i)), "x"), nil)))
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	c.Close()
	for _, v := range olds {
		select {
		case <-v.Closed():
		case <-time.After(5 * time.Second):
			t.Fatal("an old version never closed")
		}
	}
	if reads.Load() == 0 {
		t.Fatal("no reads happened")
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	var c Current
	c.Swap(NewVersion(openVersion(b, "v", "x"), nil))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Acquire().Release()
		}
	})
	c.Close()
}
