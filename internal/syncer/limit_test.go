package syncer

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestLimiterRate(t *testing.T) {
	const rate = 4 << 20 // 4 MiB/s
	l := newLimiter(rate)
	var wg sync.WaitGroup
	start := time.Now()
	// 4 workers take 2 MiB in all, beyond the initial burst of rate/10.
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 8 {
				if err := l.wait(context.Background(), 64<<10); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	r := float64(rate)
	want := time.Duration((2<<20 - r/10) / r * float64(time.Second))
	if took < want*9/10 || took > want*3+time.Second {
		t.Fatalf("2 MiB at 4 MiB/s took %s, want about %s", took, want)
	}
	if newLimiter(0) != nil || (*limiter)(nil).wait(context.Background(), 1<<30) != nil {
		t.Fatal("no limit must not wait")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := newLimiter(1).wait(ctx, 1<<20); err == nil {
		t.Fatal("wait ignored a cancelled context")
	}
}

func TestBackoffAndJitter(t *testing.T) {
	for attempt := 1; attempt < 20; attempt++ {
		for range 100 {
			d := backoff(attempt, 10*time.Millisecond, time.Second)
			bound := min(10*time.Millisecond<<(attempt-1), time.Second)
			if d <= 0 || d > bound {
				t.Fatalf("backoff(%d) = %s, want in (0, %s]", attempt, d, bound)
			}
		}
	}
	for range 1000 {
		if d := jitter(30 * time.Second); d < 27*time.Second || d > 33*time.Second {
			t.Fatalf("jitter(30s) = %s", d)
		}
	}
}

func TestByteSizeFlag(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"8388608", 8 << 20, true},
		{"8M", 8 << 20, true},
		{"8MiB", 8 << 20, true},
		{"5mb", 5 << 20, true},
		{"64k", 64 << 10, true},
		{"2G", 2 << 30, true},
		{"1T", 1 << 40, true},
		{"", 0, false},
		{"-1", 0, false},
		{"M", 0, false},
		{"lots", 0, false},
		{"99999999999T", 0, false},
	}
	for _, tt := range tests {
		var b byteSize
		err := b.Set(tt.in)
		if (err == nil) != tt.ok || (tt.ok && int64(b) != tt.want) {
			t.Errorf("Set(%q) = %d, %v; want %d ok=%v", tt.in, b, err, tt.want, tt.ok)
		}
	}
}
