package input

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/batchkv/batchkv/internal/gen"
)

// scanPlainRef is scanPlain bytewise: the first '"', '\\' or control byte.
func scanPlainRef(b []byte, pos int) int {
	for ; pos < len(b); pos++ {
		if c := b[pos]; c == '"' || c == '\\' || c < 0x20 {
			return pos
		}
	}
	return pos
}

// TestScanPlain checks the eight-bytes-at-a-time scan against the bytewise
// one: it may stop early (the caller continues bytewise) but never past the
// first special byte, and it reports a top-bit byte among those it skipped.
func TestScanPlain(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte{'a', 'Z', '0', ' ', '~', 0x7f, 0x80, 0xc3, 0xff, '"', '\\', 0x00, 0x1f, 0x20, 0x21, 0x5b, 0x5d, 0x01}
	for i := range 200000 {
		n := rng.IntN(40)
		b := make([]byte, n)
		for j := range b {
			if rng.IntN(4) == 0 {
				b[j] = alphabet[rng.IntN(len(alphabet))]
			} else {
				b[j] = byte(rng.IntN(256))
			}
		}
		if i%3 == 0 { // mostly plain text
			for j := range b {
				b[j] = 'a' + byte(rng.IntN(26))
			}
			if n > 0 && rng.IntN(2) == 0 {
				b[rng.IntN(n)] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		pos := 0
		if n > 0 {
			pos = rng.IntN(n)
		}
		want := scanPlainRef(b, pos)
		got, high := scanPlain(b, pos)
		if got > want || got < pos || (got-pos)%8 != 0 {
			t.Fatalf("scanPlain(%q, %d) = %d, bytewise %d", b, pos, got, want)
		}
		var top bool
		for _, c := range b[pos:got] {
			top = top || c >= 0x80
		}
		if top != (high != 0) {
			t.Fatalf("scanPlain(%q, %d): high %x, top-bit byte skipped %v", b, pos, high, top)
		}
	}
}

// TestParseStringsSWAR parses strings of every length up to 40 with one
// special or non-ASCII byte at every position, against encoding/json's view.
func TestParseStringsSWAR(t *testing.T) {
	specials := []string{`\"`, `\\`, `\n`, `\u00e9`, "é", "\xff", "\x01", `"`}
	for n := 0; n <= 40; n++ {
		for pos := 0; pos <= n; pos++ {
			for _, sp := range specials {
				key := bytes.Repeat([]byte("k"), n)
				key = append(key[:pos:pos], append([]byte(sp), key[pos:]...)...)
				line := []byte(`{"key":"` + string(key) + `","hash":{"` + string(key) + `":"v"}}`)
				var p Parser
				var r Record
				err := p.Parse(line, &r)
				switch sp {
				case "\xff":
					if err == nil {
						t.Fatalf("%q: accepted invalid UTF-8", line)
					}
					continue
				case "\x01", `"`:
					if err == nil {
						t.Fatalf("%q: accepted", line)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%q: %v", line, err)
				}
				want := bytes.Repeat([]byte("k"), n)
				dec := map[string]string{`\"`: `"`, `\\`: `\`, `\n`: "\n", `\u00e9`: "é", "é": "é"}[sp]
				want = append(want[:pos:pos], append([]byte(dec), want[pos:]...)...)
				if !bytes.Equal(r.Key, want) || !utf8.Valid(r.Key) || len(r.Hash) != 1 || !bytes.Equal(r.Hash[0].Name, want) {
					t.Fatalf("%q: key %q, hash %v; want %q", line, r.Key, r.Hash, want)
				}
			}
		}
	}
}

// TestResolveHashRepeats checks repeated field names among many distinct
// ones whose cheap hashes collide (same length, same ends).
func TestResolveHashRepeats(t *testing.T) {
	line := `{"key":"k","hash":{"share_1d":1,"share_7d":2,"click_1d":3,"a":4,"":5,"share_1d":6,"":7,"b":8,"a":9}}`
	var p Parser
	var r Record
	if err := p.Parse([]byte(line), &r); err != nil {
		t.Fatal(err)
	}
	if got, want := render(&r), "k{share_1d=6,share_7d=2,click_1d=3,a=9,=7,b=8}"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// BenchmarkParseGenerated parses lines of the benchmark dataset (batchkv gen).
func BenchmarkParseGenerated(b *testing.B) {
	dir := b.TempDir()
	if _, err := gen.Generate(context.Background(), gen.Options{Dir: filepath.Join(dir, "in"), Keys: 20000, Parts: 1}); err != nil {
		b.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "in", "part-*"))
	data, err := os.ReadFile(files[0])
	if err != nil {
		b.Fatal(err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	b.SetBytes(int64(len(data)) / int64(len(lines)))
	b.ResetTimer()
	var p Parser
	var r Record
	for i := 0; i < b.N; i++ {
		if err := p.Parse(lines[i%len(lines)], &r); err != nil {
			b.Fatal(fmt.Errorf("line %d: %w", i%len(lines), err))
		}
	}
}
