package bench

import (
	"math/bits"
	"time"
)

// subBits is the number of mantissa bits kept per power of two: 32
// sub-buckets, so a recorded value is within about 3% of the truth.
const subBits = 5

// histBuckets covers every uint64 nanosecond value.
const histBuckets = (64 - subBits + 1) << subBits

// Hist is a log-linear latency histogram (HDR-like) of fixed size: recording
// never allocates. The zero value is empty and ready.
type Hist struct {
	counts [histBuckets]uint64
	n      uint64
	max    uint64
}

func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	e := bits.Len64(v) - 1 - subBits // ≥ 0
	return (e+1)<<subBits | int(v>>uint(e))&(1<<subBits-1)
}

// bucketHigh is the largest value that falls into bucket b.
func bucketHigh(b int) uint64 {
	if b < 1<<subBits {
		return uint64(b)
	}
	e := b>>subBits - 1
	m := uint64(b&(1<<subBits-1) | 1<<subBits)
	return (m+1)<<uint(e) - 1
}

// Record adds one observation.
func (h *Hist) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)]++
	h.n++
	h.max = max(h.max, v)
}

// Merge adds o's observations to h.
func (h *Hist) Merge(o *Hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count is the number of observations.
func (h *Hist) Count() uint64 { return h.n }

// Quantile returns the value at quantile q (0..1): the upper bound of the
// bucket holding it, capped at the largest observation; 0 when empty.
func (h *Hist) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if rank >= h.n {
		rank = h.n - 1
	}
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen > rank {
			return time.Duration(min(bucketHigh(b), h.max))
		}
	}
	return time.Duration(h.max)
}
