package slot

import (
	"math/rand/v2"
	"testing"
)

func TestOf(t *testing.T) {
	// Expected values are redis-server's CLUSTER KEYSLOT replies.
	tests := []struct {
		key  string
		want uint16
	}{
		{"", 0},
		{"foo", 12182},
		{"bar", 5061},
		{"123456789", 12739}, // CRC16-XMODEM check value 0x31C3 mod 16384
		{"{user1000}.following", 3443},
		{"{user1000}.followers", 3443},
		{"user1000", 3443},
		{"foo{}{bar}", 8363}, // empty first tag: the whole key is hashed
		{"foo{{bar}}zap", 4015},
		{"foo{bar}{zap}", 5061},
		{"{", 4092}, // no closing brace: the whole key is hashed
	}
	for _, tt := range tests {
		if got := Of([]byte(tt.key)); got != tt.want {
			t.Errorf("Of(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
}

func TestCRC16CheckValue(t *testing.T) {
	if got := CRC16([]byte("123456789")); got != 0x31C3 {
		t.Fatalf("CRC16 check value = %#x, want 0x31c3", got)
	}
}

func TestSplit(t *testing.T) {
	// redis-cli --cluster create with 3 masters assigns 0-5460, 5461-10922, 10923-16383.
	got := Split(3)
	want := []Range{{0, 5460}, {5461, 10922}, {10923, 16383}}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Split(3) = %v, want %v", got, want)
		}
	}
	for _, n := range []int{1, 2, 5, 7, 100, 16384} {
		rs := Split(n)
		if len(rs) != n || rs[0].Start != 0 || rs[n-1].End != Count-1 {
			t.Fatalf("Split(%d) bounds wrong: %v..%v", n, rs[0], rs[n-1])
		}
		for i := 1; i < n; i++ {
			if rs[i].Start != rs[i-1].End+1 || rs[i].End < rs[i].Start {
				t.Fatalf("Split(%d) not contiguous at %d: %v %v", n, i, rs[i-1], rs[i])
			}
		}
	}
	if Split(0) != nil || Split(Count+1) != nil {
		t.Fatal("Split out of range should be nil")
	}
}

// TestCRC16Sliced: the slicing-by-8 CRC equals the bytewise one for every
// length around the 8-byte steps and random contents.
func TestCRC16Sliced(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for n := range 100 {
		for range 50 {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			if got, want := CRC16(b), crc16Bytewise(b); got != want {
				t.Fatalf("CRC16(%x) = %#x, bytewise %#x", b, got, want)
			}
		}
	}
}

func BenchmarkCRC16(b *testing.B) {
	key := []byte("e220a8397b1dcdaf08b4fda8c892b50e5def8c1f8a9e33221467336edb962514")
	b.SetBytes(int64(len(key)))
	for b.Loop() {
		CRC16(key)
	}
}

func BenchmarkCRC16Bytewise(b *testing.B) {
	key := []byte("e220a8397b1dcdaf08b4fda8c892b50e5def8c1f8a9e33221467336edb962514")
	b.SetBytes(int64(len(key)))
	for b.Loop() {
		crc16Bytewise(key)
	}
}
