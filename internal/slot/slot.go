// Package slot computes Redis Cluster hash slots: CRC16-XMODEM of the key (or
// of its {hashtag}) modulo 16384, exactly as redis-server's keyHashSlot.
package slot

// Count is the number of hash slots in a Redis Cluster.
const Count = 16384

// crcTables[0] is the byte-at-a-time table of CRC16-XMODEM; crcTables[k][b]
// is the CRC of byte b followed by k zero bytes, for slicing-by-8: eight
// independent lookups per 8 input bytes instead of a chain of eight.
var crcTables [8][256]uint16

func init() {
	for i := range crcTables[0] {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		crcTables[0][i] = crc
	}
	for k := 1; k < 8; k++ {
		for i := range crcTables[k] {
			prev := crcTables[k-1][i]
			crcTables[k][i] = prev<<8 ^ crcTables[0][prev>>8]
		}
	}
}

// CRC16 is CRC16-XMODEM (polynomial 0x1021, initial value 0), the checksum Redis
// Cluster uses.
func CRC16(b []byte) uint16 {
	var crc uint16
	t := &crcTables
	for len(b) >= 8 {
		crc = t[7][byte(crc>>8)^b[0]] ^ t[6][byte(crc)^b[1]] ^
			t[5][b[2]] ^ t[4][b[3]] ^ t[3][b[4]] ^ t[2][b[5]] ^ t[1][b[6]] ^ t[0][b[7]]
		b = b[8:]
	}
	for _, c := range b {
		crc = crc<<8 ^ t[0][byte(crc>>8)^c]
	}
	return crc
}

// crc16Bytewise is CRC16 one byte at a time, the reference the sliced
// version is tested against.
func crc16Bytewise(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc = crc<<8 ^ crcTables[0][byte(crc>>8)^c]
	}
	return crc
}

// Of returns the hash slot of key. When the key holds a non-empty {hashtag}
// (the bytes between the first '{' and the first '}' after it), only the tag is
// hashed, so related keys can share a slot.
func Of(key []byte) uint16 {
	for s := 0; s < len(key); s++ {
		if key[s] == '{' {
			for e := s + 1; e < len(key); e++ {
				if key[e] == '}' {
					if e == s+1 {
						break // "{}" hashes the whole key
					}
					return CRC16(key[s+1:e]) & (Count - 1)
				}
			}
			break
		}
	}
	return CRC16(key) & (Count - 1)
}

// Range is a contiguous, inclusive range of hash slots.
type Range struct {
	Start, End uint16
}

// Contains reports whether s lies in r.
func (r Range) Contains(s uint16) bool { return s >= r.Start && s <= r.End }

// Split divides the 16384 slots into n contiguous ranges of near-equal size,
// the way `redis-cli --cluster create` assigns them to n masters.
func Split(n int) []Range {
	if n < 1 || n > Count {
		return nil
	}
	out := make([]Range, n)
	per := float64(Count) / float64(n)
	first := 0
	cursor := 0.0
	for i := range n {
		last := int(cursor + per - 1 + 0.5) // round, as redis-cli does
		if last > Count-1 || i == n-1 {
			last = Count - 1
		}
		out[i] = Range{Start: uint16(first), End: uint16(last)}
		first = last + 1
		cursor += per
	}
	return out
}
