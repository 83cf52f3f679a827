package diff

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// limiter is a token bucket of keys per second. It starts empty, so no
// window from the start of a run sees more than rate keys per second plus
// one batch: a run against production never opens with a burst.
type limiter struct {
	rate  float64 // tokens per second; 0: unlimited
	burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(max(burst, 1)), last: time.Now()}
}

// wait takes n tokens, sleeping until the bucket holds them. Tokens are
// reserved before sleeping (the bucket may go negative), so concurrent
// waiters queue up fairly instead of all waking at once.
func (l *limiter) wait(ctx context.Context, n int) error {
	if l.rate <= 0 || n <= 0 {
		return ctx.Err()
	}
	l.mu.Lock()
	now := time.Now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens -= float64(n)
	var d time.Duration
	if l.tokens < 0 {
		d = time.Duration(-l.tokens / l.rate * float64(time.Second))
	}
	l.mu.Unlock()
	if d == 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxSamples bounds the memory of a latency recorder: beyond it, samples
// are kept by reservoir sampling, so quantiles stay unbiased estimates on a
// scan of any size.
const maxSamples = 1 << 16

// latency records round-trip times of one side.
type latency struct {
	mu      sync.Mutex
	n       int64
	max     time.Duration
	samples []time.Duration
}

func (l *latency) add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	l.max = max(l.max, d)
	if len(l.samples) < maxSamples {
		l.samples = append(l.samples, d)
		return
	}
	if i := rand.Int64N(l.n); i < maxSamples {
		l.samples[i] = d
	}
}

// Latency summarises the pipelined round trips to one side.
type Latency struct {
	// Rounds is the number of round trips measured.
	Rounds int64         `json:"rounds"`
	P50    time.Duration `json:"p50_ns"`
	P99    time.Duration `json:"p99_ns"`
	Max    time.Duration `json:"max_ns"`
}

func (l *latency) summary() Latency {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Latency{Rounds: l.n, Max: l.max}
	if len(l.samples) == 0 {
		return s
	}
	sorted := slices.Clone(l.samples)
	slices.Sort(sorted)
	q := func(p float64) time.Duration {
		i := int(p*float64(len(sorted))+0.5) - 1
		return sorted[min(max(i, 0), len(sorted)-1)]
	}
	s.P50, s.P99 = q(0.50), q(0.99)
	return s
}
