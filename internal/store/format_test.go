package store

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// TestHashFieldLengths: field and value lengths on both sides of the
// one-byte uvarint fast path encode as uvarints and read back.
func TestHashFieldLengths(t *testing.T) {
	lengths := []int{0, 1, 127, 128, 129, 300, 1 << 14, 1<<14 + 1}
	b := AppendHashHeader(nil, len(lengths)*len(lengths))
	type fv struct{ f, v string }
	var want []fv
	for i, fl := range lengths {
		for j, vl := range lengths {
			f := strings.Repeat(string(rune('a'+i)), fl)
			v := strings.Repeat(string(rune('A'+j)), vl)
			start := len(b)
			b = AppendHashField(b, []byte(f), []byte(v))
			// The layout is uvarint length + bytes, twice.
			ref := binary.AppendUvarint(nil, uint64(fl))
			ref = append(ref, f...)
			ref = binary.AppendUvarint(ref, uint64(vl))
			ref = append(ref, v...)
			if !bytes.Equal(b[start:], ref) {
				t.Fatalf("field %d / value %d bytes encoded differently from uvarint+bytes", fl, vl)
			}
			want = append(want, fv{f, v})
		}
	}
	v, err := DecodeValue(b)
	if err != nil || v.Type != TypeHash {
		t.Fatal(v.Type, err)
	}
	i := 0
	if err := v.Hash().Range(func(f, val []byte) bool {
		if string(f) != want[i].f || string(val) != want[i].v {
			t.Fatalf("field %d: %d/%d bytes, want %d/%d", i, len(f), len(val), len(want[i].f), len(want[i].v))
		}
		i++
		return true
	}); err != nil || i != len(want) {
		t.Fatalf("read %d of %d fields: %v", i, len(want), err)
	}
}
