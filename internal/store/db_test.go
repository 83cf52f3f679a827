package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func hashValue(kv ...string) []byte {
	b := AppendHashHeader(nil, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		b = AppendHashField(b, []byte(kv[i]), []byte(kv[i+1]))
	}
	return b
}

func writeTestVersion(t *testing.T, entries []Entry) *DB {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "v1")
	meta := &Meta{Name: "test", Version: "v1"}
	if err := WriteVersion(context.Background(), dir, meta, entries); err != nil {
		t.Fatal(err)
	}
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestGet(t *testing.T) {
	db := writeTestVersion(t, []Entry{
		{[]byte("counter"), AppendString(nil, []byte("42"))},
		{[]byte("empty"), AppendString(nil, nil)},
		{[]byte("bin\x00\xff"), AppendString(nil, []byte("\x00\x01"))},
		{[]byte("h"), hashValue("b", "2", "a", "1")},
	})
	if m := db.Meta(); m.Keys != 4 || m.Strings != 3 || m.Hashes != 1 || m.HashFields != 2 {
		t.Fatalf("meta counts = %+v", m)
	}
	tests := []struct {
		key   string
		typ   Type
		value string
	}{
		{"counter", TypeString, "42"},
		{"empty", TypeString, ""},
		{"bin\x00\xff", TypeString, "\x00\x01"},
	}
	for _, tt := range tests {
		v, c, err := db.Get([]byte(tt.key))
		if err != nil {
			t.Fatalf("Get(%q): %v", tt.key, err)
		}
		if v.Type != tt.typ || string(v.Data) != tt.value {
			t.Errorf("Get(%q) = %v %q, want %v %q", tt.key, v.Type, v.Data, tt.typ, tt.value)
		}
		c.Close()
	}
	if _, _, err := db.Get([]byte("missing")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(missing) err = %v", err)
	}
	v, c, err := db.Get([]byte("h"))
	if err != nil || v.Type != TypeHash {
		t.Fatalf("Get(h) = %v, %v", v, err)
	}
	defer c.Close()
	var got []string
	if err := v.Hash().Range(func(f, val []byte) bool { got = append(got, string(f), string(val)); return true }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"b", "2", "a", "1"}) {
		t.Fatalf("hash fields in stored order = %q", got)
	}
	if val, ok, _ := v.Hash().Get([]byte("a")); !ok || string(val) != "1" {
		t.Fatalf("hash Get(a) = %q %v", val, ok)
	}
	if _, ok, _ := v.Hash().Get([]byte("zz")); ok {
		t.Fatal("hash Get(zz) found")
	}
}

func TestScanVisitsEveryKeyOnce(t *testing.T) {
	var entries []Entry
	for i := range 1000 {
		entries = append(entries, Entry{[]byte(fmt.Sprintf("key:%d", i)), AppendString(nil, []byte("v"))})
	}
	db := writeTestVersion(t, entries)
	for _, count := range []int{1, 7, 100, 5000} {
		seen := map[string]int{}
		cursor, calls := uint64(0), 0
		for {
			next, err := db.Scan(cursor, count, func(k []byte, v Value) error { seen[string(k)]++; return nil })
			if err != nil {
				t.Fatal(err)
			}
			calls++
			if next == 0 {
				break
			}
			if next <= cursor {
				t.Fatalf("cursor went backwards: %d -> %d", cursor, next)
			}
			cursor = next
		}
		if len(seen) != 1000 {
			t.Fatalf("count %d: saw %d keys", count, len(seen))
		}
		for k, n := range seen {
			if n != 1 {
				t.Fatalf("count %d: key %s seen %d times", count, k, n)
			}
		}
		if want := (1000 + count - 1) / count; calls != want && count < 1000 {
			t.Fatalf("count %d: %d calls, want %d", count, calls, want)
		}
	}
	k, err := db.RandomKey(0xffffffffffffffff)
	if err != nil || len(k) == 0 {
		t.Fatalf("RandomKey wrap = %q, %v", k, err)
	}
}

func TestSlotRanges(t *testing.T) {
	var entries []Entry
	for i := range 300 {
		entries = append(entries, Entry{[]byte(fmt.Sprintf("{tag%d}:%d", i%3, i)), AppendString(nil, nil)})
	}
	db := writeTestVersion(t, entries)
	var total int64
	for i := range 3 {
		s := OrderSlot(Order([]byte(fmt.Sprintf("{tag%d}", i))))
		n, err := db.CountSlot(s)
		if err != nil {
			t.Fatal(err)
		}
		if n != 100 {
			t.Fatalf("slot %d has %d keys, want 100", s, n)
		}
		total += n
	}
	if total != 300 {
		t.Fatalf("total %d", total)
	}
}

func TestEmptyVersion(t *testing.T) {
	db := writeTestVersion(t, nil)
	if _, err := db.RandomKey(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RandomKey on empty: %v", err)
	}
	next, err := db.Scan(0, 10, func([]byte, Value) error { t.Fatal("visited a key"); return nil })
	if err != nil || next != 0 {
		t.Fatalf("Scan empty = %d, %v", next, err)
	}
}

func TestDecodeCorrupt(t *testing.T) {
	for _, b := range [][]byte{nil, {9}, {byte(TypeHash)}, {byte(TypeHash), 2, 1, 'a'}} {
		v, err := DecodeValue(b)
		if err == nil && v.Type == TypeHash {
			_, err = v.Hash().Len()
			if err == nil {
				err = v.Hash().Range(func(f, v []byte) bool { return true })
			}
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("decode %v: err = %v, want ErrCorrupt", b, err)
		}
	}
}

// TestVersionLeavesNoWAL checks SPEC §3: a built version carries no WAL (and
// no memtable data), only ingested tables and Pebble's bookkeeping files.
func TestVersionLeavesNoWAL(t *testing.T) {
	db := writeTestVersion(t, []Entry{{[]byte("k"), AppendString(nil, []byte("v"))}})
	ents, err := os.ReadDir(filepath.Join(db.Dir(), DBDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		if strings.HasSuffix(e.Name(), ".log") {
			t.Errorf("WAL %s left in the version", e.Name())
		}
	}
	t.Logf("version files: %v", names)
}
