package bench

import (
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	for _, v := range []uint64{0, 1, 31, 32, 33, 63, 64, 65, 1000, 123456, 1 << 40, 1<<63 + 12345, ^uint64(0)} {
		b := bucketOf(v)
		if b < 0 || b >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d out of range", v, b)
		}
		if hi := bucketHigh(b); hi < v || (b > 0 && bucketHigh(b-1) >= v) {
			t.Fatalf("value %d: bucket %d high %d, previous high %d", v, b, hi, bucketHigh(b-1))
		}
		if hi := bucketHigh(b); v >= 64 && float64(hi-v) > 0.04*float64(v) {
			t.Fatalf("value %d: bucket high %d is more than 4%% off", v, hi)
		}
	}
}

func TestQuantile(t *testing.T) {
	var h Hist
	if h.Quantile(0.5) != 0 {
		t.Fatal("empty histogram: want 0")
	}
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {0.999, 999 * time.Microsecond}, {1, 1000 * time.Microsecond}} {
		got := h.Quantile(c.q)
		if got < c.want || float64(got-c.want) > 0.04*float64(c.want) {
			t.Errorf("Quantile(%v) = %v, want about %v", c.q, got, c.want)
		}
	}
	var o Hist
	o.Record(time.Second)
	h.Merge(&o)
	if h.Count() != 1001 || h.Quantile(1) != time.Second {
		t.Errorf("after merge: count %d max %v", h.Count(), h.Quantile(1))
	}
}
