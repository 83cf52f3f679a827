package swap

import (
	"math/rand/v2"
	"sync/atomic"
)

// Sampler remembers a small random sample of the keys clients read, so that
// a new version can be warmed with the keys that are hot now. Observe is on
// the per-command path: it costs one cheap per-thread random number, and one
// allocation for the rare sampled key.
type Sampler struct {
	slots []atomic.Pointer[[]byte]
	// rate is a power of two: one key in rate is kept.
	rateMask uint32
}

// NewSampler keeps up to size keys, sampling one read in rate (rounded up to
// a power of two).
func NewSampler(size, rate int) *Sampler {
	if size < 1 {
		size = 1
	}
	mask := uint32(1)
	for int(mask) < rate {
		mask <<= 1
	}
	return &Sampler{slots: make([]atomic.Pointer[[]byte], size), rateMask: mask - 1}
}

// Observe offers a key that a client just read. key is copied if kept.
func (s *Sampler) Observe(key []byte) {
	if s == nil {
		return
	}
	r := rand.Uint32()
	if r&s.rateMask != 0 {
		return
	}
	k := append([]byte(nil), key...)
	s.slots[int(r>>8)%len(s.slots)].Store(&k)
}

// Keys returns the sampled keys.
func (s *Sampler) Keys() [][]byte {
	if s == nil {
		return nil
	}
	out := make([][]byte, 0, len(s.slots))
	for i := range s.slots {
		if k := s.slots[i].Load(); k != nil {
			out = append(out, *k)
		}
	}
	return out
}
