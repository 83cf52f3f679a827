package syncer

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// limiter is a token bucket shared by all download workers: rate bytes per
// second, bursts of at most burst bytes. A nil limiter does not limit.
type limiter struct {
	rate  float64
	burst float64

	mu     sync.Mutex
	tokens float64 // may go negative: debt the next callers wait out
	last   time.Time
}

func newLimiter(rate int64) *limiter {
	if rate <= 0 {
		return nil
	}
	// A tenth of a second's worth, at least minBurst (fewer, larger reads)
	// but never more than one second's worth, so that the limit holds over
	// short windows also for low rates; reads are cut to the burst (see
	// chunk).
	burst := max(float64(rate)/10, min(minBurst, float64(rate)))
	return &limiter{rate: float64(rate), burst: burst, tokens: burst, last: time.Now()}
}

// minBurst is the least burst of a limiter.
const minBurst = 256 << 10

// chunk returns buf cut to at most one burst, so that one read never takes
// more than the bucket holds.
func (l *limiter) chunk(buf []byte) []byte {
	if l == nil || float64(len(buf)) <= l.burst {
		return buf
	}
	return buf[:int(l.burst)]
}

// wait takes n tokens, sleeping until the bucket has paid them off.
func (l *limiter) wait(ctx context.Context, n int) error {
	if l == nil || n <= 0 {
		return nil
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
	return sleep(ctx, d)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// backoff returns the wait before retry number attempt (1-based): full
// jitter over an exponential bound, so that workers that failed together do
// not retry together.
func backoff(attempt int, base, ceiling time.Duration) time.Duration {
	if base <= 0 {
		return 0
	}
	bound := base
	for i := 1; i < attempt && bound < ceiling; i++ {
		bound *= 2
	}
	bound = min(bound, ceiling)
	return time.Duration(rand.Int64N(int64(bound)) + 1)
}

// jitter returns d ±10%, uniformly.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	spread := int64(d) / 5
	if spread == 0 {
		return d
	}
	return d - time.Duration(spread/2) + time.Duration(rand.Int64N(spread+1))
}
