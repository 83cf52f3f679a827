package syncer

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func testHeader() journalHeader {
	h := journalHeader{Size: 10*MinPartSize + 5, PartSize: MinPartSize}
	for i := range h.SHA256 {
		h.SHA256[i] = byte(i)
	}
	return h
}

func TestJournalRoundTrip(t *testing.T) {
	h := testHeader()
	p := filepath.Join(t.TempDir(), "j")
	j, err := createJournal(p, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.markDone(3); err != nil {
		t.Fatal(err)
	}
	if err := j.markDone(0, 10); err != nil { // a group commit
		t.Fatal(err)
	}
	j.close()
	// A torn record at the end (a crash during the append) is dropped and
	// cut off, so that the next record lands where it belongs.
	f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(encodeRecord(5)[:5])
	f.Close()

	j, done, err := openJournal(p, h)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]bool, 11)
	want[0], want[3], want[10] = true, true, true
	if !slices.Equal(done, want) {
		t.Fatalf("done = %v", done)
	}
	if err := j.markDone(7); err != nil {
		t.Fatal(err)
	}
	j.close()
	b, _ := os.ReadFile(p)
	if len(b) != journalHeaderLen+4*journalRecordLen {
		t.Fatalf("journal is %d bytes: torn tail not cut", len(b))
	}
	if _, done, err = openJournal(p, h); err != nil || !done[7] {
		t.Fatalf("reopen: %v %v", done, err)
	}
}

func TestJournalMismatch(t *testing.T) {
	h := testHeader()
	good := h.encode()
	tests := []struct {
		name string
		b    []byte
		want journalHeader
	}{
		{"empty", nil, h},
		{"short header", good[:20], h},
		{"other size", good, journalHeader{Size: h.Size + 1, PartSize: h.PartSize, SHA256: h.SHA256}},
		{"other part size", good, journalHeader{Size: h.Size, PartSize: 2 * h.PartSize, SHA256: h.SHA256}},
		{"other content", good, journalHeader{Size: h.Size, PartSize: h.PartSize}},
		{"corrupt header", append(slices.Clone(good[:30]), append([]byte{good[30] ^ 1}, good[31:]...)...), h},
		{"part out of range", append(slices.Clone(good), encodeRecord(11)...), h},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := parseJournal(tt.b, tt.want); !errors.Is(err, errJournal) {
				t.Fatalf("err = %v, want errJournal", err)
			}
		})
	}
	// A corrupt record ends the trusted part; the records before it stand.
	b := append(slices.Clone(good), encodeRecord(1)...)
	bad := encodeRecord(2)
	bad[6] ^= 1
	b = append(append(b, bad...), encodeRecord(4)...)
	done, valid, err := parseJournal(b, h)
	if err != nil || valid != journalHeaderLen+journalRecordLen || !done[1] || done[2] || done[4] {
		t.Fatalf("corrupt record: %v %d %v", done, valid, err)
	}
}

func FuzzParseJournal(f *testing.F) {
	h := testHeader()
	good := h.encode()
	f.Add(good)
	f.Add(append(slices.Clone(good), encodeRecord(0)...))
	f.Add(append(append(slices.Clone(good), encodeRecord(10)...), encodeRecord(3)[:6]...))
	f.Add([]byte("bkvjrn01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		done, valid, err := parseJournal(b, h)
		if err != nil {
			return
		}
		if valid < journalHeaderLen || valid > len(b) || (valid-journalHeaderLen)%journalRecordLen != 0 {
			t.Fatalf("valid = %d of %d", valid, len(b))
		}
		if len(done) != h.parts() {
			t.Fatalf("%d parts, want %d", len(done), h.parts())
		}
		// The valid prefix re-parses to the same parts, and re-encoding the
		// done parts gives a journal with the same meaning.
		done2, valid2, err := parseJournal(b[:valid], h)
		if err != nil || valid2 != valid || !slices.Equal(done, done2) {
			t.Fatalf("prefix re-parse: %v %d %v", done2, valid2, err)
		}
		re := slices.Clone(good)
		for i, ok := range done {
			if ok {
				re = append(re, encodeRecord(i)...)
			}
		}
		done3, _, err := parseJournal(re, h)
		if err != nil || !slices.Equal(done, done3) {
			t.Fatalf("re-encode: %v %v", done3, err)
		}
		if !bytes.Equal(b[:journalHeaderLen], good) {
			t.Fatal("accepted a different header")
		}
	})
}
