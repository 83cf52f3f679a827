package syncer

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// A journal records which parts of one staged file are on disk, so that a
// syncer killed mid-download resumes where it stopped and loses at most the
// parts in flight. It sits beside the staging tree (see journalDir), one per
// file still being downloaded:
//
//	header  8  magic "bkvjrn01"
//	        8  file size, little endian
//	        8  part size, little endian
//	       32  SHA-256 of the file, from the release
//	        4  CRC-32C of the 56 bytes above
//	record  4  part index, little endian
//	        4  CRC-32C of the 4 index bytes
//
// A record is appended only after the part's bytes were written and the data
// file fsynced, so a record never names a part that a crash could lose.
// Records are group-committed (see committer): one fsync of the data file and
// one of the journal cover every part finished since the last commit. The
// header binds the journal to one file content and one part size: a journal
// written for another release of the same name, or with another --part-size,
// does not match and the file is downloaded again. A torn last record (a crash
// during the append) is dropped on resume, and the journal is cut back to its
// valid length before new records follow it.
//
// The file is complete once every part is recorded; the syncer then fsyncs it
// and removes the journal. A staged file without a journal is therefore
// complete (it is verified against its SHA-256 before install like any other).

const (
	journalMagic     = "bkvjrn01"
	journalHeaderLen = 8 + 8 + 8 + 32 + 4
	journalRecordLen = 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errJournal reports a journal that does not match or cannot be read; the
// file is then downloaded from scratch.
var errJournal = errors.New("syncer: journal does not match")

// journalHeader identifies the file a journal belongs to.
type journalHeader struct {
	Size     int64
	PartSize int64
	SHA256   [32]byte
}

func (h journalHeader) parts() int {
	if h.Size == 0 {
		return 0
	}
	return int((h.Size + h.PartSize - 1) / h.PartSize)
}

func (h journalHeader) encode() []byte {
	b := make([]byte, 0, journalHeaderLen)
	b = append(b, journalMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.Size))
	b = binary.LittleEndian.AppendUint64(b, uint64(h.PartSize))
	b = append(b, h.SHA256[:]...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func encodeRecord(part int) []byte {
	b := binary.LittleEndian.AppendUint32(make([]byte, 0, journalRecordLen), uint32(part))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// parseJournal decodes a journal and checks it belongs to want. It returns
// which parts are done and the length of the valid prefix of b (a torn or
// corrupt tail is not part of it).
func parseJournal(b []byte, want journalHeader) (done []bool, valid int, err error) {
	if want.Size < 0 || want.PartSize <= 0 {
		return nil, 0, fmt.Errorf("%w: bad expectation size %d part %d", errJournal, want.Size, want.PartSize)
	}
	if len(b) < journalHeaderLen {
		return nil, 0, fmt.Errorf("%w: %d bytes, shorter than the header", errJournal, len(b))
	}
	if !bytes.Equal(b[:journalHeaderLen], want.encode()) {
		if string(b[:8]) != journalMagic ||
			crc32.Checksum(b[:journalHeaderLen-4], castagnoli) != binary.LittleEndian.Uint32(b[journalHeaderLen-4:]) {
			return nil, 0, fmt.Errorf("%w: corrupt header", errJournal)
		}
		return nil, 0, fmt.Errorf("%w: written for size %d, part size %d, sha256 %s",
			errJournal, int64(binary.LittleEndian.Uint64(b[8:])), int64(binary.LittleEndian.Uint64(b[16:])), hex.EncodeToString(b[24:56]))
	}
	done = make([]bool, want.parts())
	valid = journalHeaderLen
	for rec := b[journalHeaderLen:]; len(rec) >= journalRecordLen; rec = rec[journalRecordLen:] {
		if crc32.Checksum(rec[:4], castagnoli) != binary.LittleEndian.Uint32(rec[4:8]) {
			break // torn or corrupt: everything from here on is not trusted
		}
		i := binary.LittleEndian.Uint32(rec[:4])
		if uint64(i) >= uint64(len(done)) {
			return nil, 0, fmt.Errorf("%w: part %d of %d", errJournal, i, len(done))
		}
		done[i] = true
		valid += journalRecordLen
	}
	return done, valid, nil
}

// journal appends records to one journal file. Safe for concurrent use by
// the workers downloading parts of the same file.
type journal struct {
	f *os.File
	// mu serializes appends so records never interleave; it is held across
	// the write and its fsync.
	mu sync.Mutex
}

// createJournal writes a fresh journal holding only the header and fsyncs it.
func createJournal(path string, h journalHeader) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("syncer: create journal: %w", err)
	}
	if _, err := f.Write(h.encode()); err != nil {
		f.Close()
		return nil, fmt.Errorf("syncer: write journal %s: %w", path, err)
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		f.Close()
		return nil, fmt.Errorf("syncer: fsync journal %s: %w", path, err)
	}
	return &journal{f: f}, nil
}

// openJournal reads an existing journal, checks it against h, and cuts off a
// torn tail so that new records follow the valid ones.
func openJournal(path string, h journalHeader) (*journal, []bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	// A journal holds at most one record per part.
	limit := int64(journalHeaderLen) + int64(h.parts())*journalRecordLen*2 + journalRecordLen
	b, err := io.ReadAll(io.LimitReader(f, limit))
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("syncer: read journal %s: %w", path, err)
	}
	done, valid, err := parseJournal(b, h)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if valid != len(b) {
		if err := f.Truncate(int64(valid)); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("syncer: truncate journal %s: %w", path, err)
		}
	}
	if _, err := f.Seek(int64(valid), io.SeekStart); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("syncer: seek journal %s: %w", path, err)
	}
	return &journal{f: f}, done, nil
}

// markDone durably records that parts are on disk: one write, one fsync.
// The caller has already fsynced the parts' data.
func (j *journal) markDone(parts ...int) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	b := make([]byte, 0, len(parts)*journalRecordLen)
	for _, p := range parts {
		b = append(b, encodeRecord(p)...)
	}
	if _, err := j.f.Write(b); err != nil {
		return fmt.Errorf("syncer: append journal %s: %w", j.f.Name(), err)
	}
	if err := unix.Fdatasync(int(j.f.Fd())); err != nil {
		return fmt.Errorf("syncer: fsync journal %s: %w", j.f.Name(), err)
	}
	return nil
}

func (j *journal) close() error { return j.f.Close() }
