package parity

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/batchkv/batchkv/internal/store"
)

// Redis keeps a hash in a listpack (replying in insertion order) while it has
// at most this many fields and every field and value is at most this long;
// beyond either, it uses a hashtable whose reply order is arbitrary. These are
// redis-server 7.0's defaults (hash-max-listpack-entries is 512 for hashes;
// 128 is the zset limit).
const (
	listpackEntries = 512
	listpackValue   = 64
)

// item is one key of the model.
type item struct {
	key    []byte
	typ    store.Type
	str    []byte
	fields [][2][]byte // in stored order
	// big: redis keeps this hash in a hashtable, so its field order differs.
	big bool
}

// model is the generated dataset, for choosing arguments and for checking
// replies compared by meaning.
type model struct {
	items   map[string]*item
	all     [][]byte // keys in generation order
	strs    [][]byte
	hashes  [][]byte
	big     [][]byte // big hashes
	special [][]byte // the fixed edge cases: empty, binary, 1 MiB, listpack limits
	entries []store.Entry
}

func (m *model) add(it *item) {
	if _, dup := m.items[string(it.key)]; dup {
		return
	}
	var v []byte
	if it.typ == store.TypeString {
		v = store.AppendString(nil, it.str)
		m.strs = append(m.strs, it.key)
	} else {
		v = store.AppendHashHeader(nil, len(it.fields))
		for _, fv := range it.fields {
			v = store.AppendHashField(v, fv[0], fv[1])
			if len(fv[0]) > listpackValue || len(fv[1]) > listpackValue {
				it.big = true
			}
		}
		if len(it.fields) > listpackEntries {
			it.big = true
		}
		m.hashes = append(m.hashes, it.key)
		if it.big {
			m.big = append(m.big, it.key)
		}
	}
	m.items[string(it.key)] = it
	m.all = append(m.all, it.key)
	m.entries = append(m.entries, store.Entry{Key: it.key, Value: v})
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return b
}

func randText(r *rand.Rand, n int) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-{}*?[]\\ "
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return b
}

// counterValues are string values as a counter or a float would be stored,
// including the forms Redis does not keep as integers.
var counterValues = []string{"0", "1", "-1", "42", "007", "-0", "+5", "3.14", "1e10",
	"9223372036854775807", "-9223372036854775808", "9223372036854775808", " 1", "12345678901234567890"}

// genModel generates a dataset of about n keys from seed.
func genModel(seed uint64, n int) *model {
	r := rand.New(rand.NewPCG(seed, 0x6261746368))
	m := &model{items: map[string]*item{}}
	str := func(k, v []byte) { m.add(&item{key: k, typ: store.TypeString, str: v}) }
	hash := func(k []byte, fields [][2][]byte) { m.add(&item{key: k, typ: store.TypeHash, fields: fields}) }

	// Fixed edge cases.
	all256 := make([]byte, 256)
	for i := range all256 {
		all256[i] = byte(i)
	}
	str([]byte(""), []byte("the empty key"))
	str(all256, all256)
	str([]byte("bin:\x00"), []byte("\x00"))
	str([]byte("bin:\r\n"), []byte("a\r\nb\r\n$3\r\n"))
	str([]byte("empty"), nil)
	str([]byte("key:000000000000"), []byte("benchmark"))
	str([]byte("big:1MiB"), randBytes(r, 1<<20))
	for _, size := range []int{1 << 10, 64 << 10, 300 << 10} {
		str([]byte(fmt.Sprintf("big:%d", size)), randText(r, size))
	}
	lp := func(prefix string, nf, vlen int) [][2][]byte {
		var f [][2][]byte
		for i := 0; i < nf; i++ {
			f = append(f, [2][]byte{[]byte(fmt.Sprintf("%s%d", prefix, i)), bytes.Repeat([]byte{'v'}, vlen)})
		}
		return f
	}
	hash([]byte("hash:512x64"), lp("f", 512, 64)) // largest listpack
	hash([]byte("hash:513"), lp("f", 513, 1))     // hashtable by count
	hash([]byte("hash:129"), lp("f", 129, 1))     // listpack (128 is the zset limit)
	hash([]byte("hash:1x65"), lp("f", 1, 65))     // hashtable by value size
	hash([]byte("hash:field65"), [][2][]byte{{bytes.Repeat([]byte{'k'}, 65), []byte("v")}, {[]byte("a"), []byte("b")}})
	hash([]byte("hash:bin"), [][2][]byte{{[]byte(""), []byte("")}, {[]byte("\x00"), []byte("\r\n")}, {all256[:64], all256[192:]}})
	hash([]byte("hash:one"), [][2][]byte{{[]byte("f"), []byte("v")}})
	m.special = slices.Clone(m.all)

	for len(m.all) < n {
		i := len(m.all)
		switch k := r.IntN(100); {
		case k < 25: // counters
			v := counterValues[r.IntN(len(counterValues))]
			if r.IntN(2) == 0 {
				v = strconv.FormatInt(r.Int64N(1e12)-5e11, 10)
			}
			str([]byte(fmt.Sprintf("ctr:%d", i)), []byte(v))
		case k < 45: // feature-store hashes of int fields, listpack-sized
			nf := 1 + r.IntN(20)
			var f [][2][]byte
			for j := 0; j < nf; j++ {
				f = append(f, [2][]byte{[]byte(fmt.Sprintf("f%d", j)), []byte(strconv.Itoa(r.IntN(100000) - 500))})
			}
			r.Shuffle(len(f), func(a, b int) { f[a], f[b] = f[b], f[a] })
			hash([]byte(fmt.Sprintf("feat:{user:%d}", r.IntN(n))), f)
		case k < 60:
			str([]byte(fmt.Sprintf("{user:%d}:name", r.IntN(n))), randText(r, r.IntN(40)))
		case k < 70:
			str([]byte(fmt.Sprintf("str:%d", i)), randText(r, r.IntN(200)))
		case k < 77: // binary keys and values
			str(randBytes(r, 1+r.IntN(24)), randBytes(r, r.IntN(100)))
		case k < 80:
			str([]byte(fmt.Sprintf("empty:%d", i)), nil)
		case k < 90: // small hashes with binary and empty fields
			nf := 1 + r.IntN(8)
			var f [][2][]byte
			seen := map[string]bool{}
			for j := 0; j < nf; j++ {
				fld := randBytes(r, r.IntN(10))
				if seen[string(fld)] {
					continue
				}
				seen[string(fld)] = true
				f = append(f, [2][]byte{fld, randBytes(r, r.IntN(64))})
			}
			hash([]byte(fmt.Sprintf("hbin:%d", i)), f)
		case k < 91: // listpack hashes with many fields: order matters
			nf := 129 + r.IntN(listpackEntries-128)
			var f [][2][]byte
			for j := 0; j < nf; j++ {
				f = append(f, [2][]byte{[]byte(fmt.Sprintf("m%d", r.IntN(1e6))), []byte(strconv.Itoa(j))})
			}
			hash([]byte(fmt.Sprintf("many:%d", i)), uniqueFields(f))
		case k < 93: // big hashes: many fields
			nf := listpackEntries + 1 + r.IntN(200)
			var f [][2][]byte
			for j := 0; j < nf; j++ {
				f = append(f, [2][]byte{[]byte(fmt.Sprintf("field:%d", j)), []byte(strconv.Itoa(r.IntN(1000)))})
			}
			hash([]byte(fmt.Sprintf("wide:%d", i)), f)
		case k < 95: // big hashes: a long value
			f := [][2][]byte{{[]byte("a"), []byte("1")}, {[]byte("long"), randText(r, 65+r.IntN(2000))}, {[]byte("z"), []byte("2")}}
			hash([]byte(fmt.Sprintf("hlong:%d", i)), f)
		default:
			str([]byte(fmt.Sprintf("misc:%x", r.Uint64())), randText(r, r.IntN(20)))
		}
	}
	return m
}

// uniqueFields drops repeated fields, keeping the first.
func uniqueFields(f [][2][]byte) [][2][]byte {
	seen := map[string]bool{}
	out := f[:0]
	for _, fv := range f {
		if !seen[string(fv[0])] {
			seen[string(fv[0])] = true
			out = append(out, fv)
		}
	}
	return out
}

// writeDataset writes m as a built version and returns its directory.
func writeDataset(t testing.TB, m *model) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "v1")
	meta := &store.Meta{Name: "parity", Version: "v1"}
	if err := store.WriteVersion(context.Background(), dir, meta, slices.Clone(m.entries)); err != nil {
		t.Fatalf("write dataset: %v", err)
	}
	return dir
}
