package syncer

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/batchkv/batchkv/internal/release"
)

func TestLimiterChunk(t *testing.T) {
	buf := make([]byte, readChunk)
	if got := (*limiter)(nil).chunk(buf); len(got) != readChunk {
		t.Fatalf("no limit: chunk %d, want %d", len(got), readChunk)
	}
	if got := newLimiter(1 << 30).chunk(buf); len(got) != readChunk {
		t.Fatalf("1 GiB/s: chunk %d, want %d", len(got), readChunk)
	}
	if got := newLimiter(1 << 20).chunk(buf); len(got) != minBurst {
		t.Fatalf("1 MiB/s: chunk %d, want the minimum burst %d", len(got), minBurst)
	}
	if got := newLimiter(4 << 20).chunk(buf); len(got) != 4<<20/10 {
		t.Fatalf("4 MiB/s: chunk %d, want a tenth of a second's worth %d", len(got), 4<<20/10)
	}
}

// TestPrefixHash feeds a file's parts to hashWritten in random order from
// several goroutines, some parts recorded as done before the pass: the hash
// is complete and right exactly when the last part arrives, and a file whose
// bytes differ from the release fails.
func TestPrefixHash(t *testing.T) {
	const partSize, size = 1000, 25_500 // 26 parts, the last short
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	sum := sha256.Sum256(data)
	for _, corrupt := range []bool{false, true} {
		for round := range 20 {
			p := filepath.Join(t.TempDir(), "f")
			onDisk := append([]byte(nil), data...)
			if corrupt {
				onDisk[rng.IntN(size)] ^= 1
			}
			if err := os.WriteFile(p, onDisk, 0o644); err != nil {
				t.Fatal(err)
			}
			rf, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			sf := &stagedFile{rf: release.File{Path: "f", Size: size, SHA256: hex.EncodeToString(sum[:])},
				path: p, hdr: journalHeader{Size: size, PartSize: partSize}}
			done := make([]bool, sf.hdr.parts())
			var todo []int
			for i := range done {
				if round%2 == 1 && rng.IntN(3) == 0 {
					done[i] = true // recorded by an earlier pass
				} else {
					todo = append(todo, i)
				}
			}
			if len(todo) == 0 {
				todo, done[0] = []int{0}, false
			}
			sf.inc = &prefixHash{h: sha256.New(), rf: rf, done: done}
			rng.Shuffle(len(todo), func(i, j int) { todo[i], todo[j] = todo[j], todo[i] })
			last := todo[len(todo)-1]
			var wg sync.WaitGroup
			ch := make(chan int)
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := make([]byte, 333)
					for i := range ch {
						if err := sf.hashWritten(i, buf); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			for _, i := range todo[:len(todo)-1] {
				ch <- i
			}
			close(ch)
			wg.Wait()
			if sf.hashed {
				t.Fatalf("round %d: hashed before part %d arrived", round, last)
			}
			if err := sf.hashWritten(last, make([]byte, 100)); err != nil {
				t.Fatal(err)
			}
			if !sf.hashed {
				t.Fatalf("round %d: not hashed after every part arrived", round)
			}
			if (sf.verr != nil) != corrupt {
				t.Fatalf("round %d, corrupt %v: verr %v", round, corrupt, sf.verr)
			}
			if sf.inc.rf != nil {
				t.Fatal("read descriptor left open")
			}
		}
	}
}
