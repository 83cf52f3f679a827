package syncer

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// A download slower than ProgressInterval logs its progress (bytes of
// total, rate, ETA) while it runs, and OnDownload reports it once, with
// the bytes received.
func TestDownloadProgress(t *testing.T) {
	src, root := t.TempDir(), t.TempDir()
	v1 := publishVersion(t, src, "v1", 300, 10000) // ~3 MB: about 1.5 s at 2 MB/s
	core, logs := observer.New(zapcore.InfoLevel)
	type call struct {
		d     time.Duration
		bytes int64
		err   error
	}
	var calls []call
	s := newTestSyncer(t, src, root, func(o *Options) {
		o.Bandwidth = 2 << 20
		o.Concurrency = 2
		o.ProgressInterval = 200 * time.Millisecond
		o.Logger = zap.New(core)
		o.OnDownload = func(d time.Duration, bytes int64, err error) { calls = append(calls, call{d, bytes, err}) }
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	total := v1.rel.TotalSize()
	lines := logs.FilterMessage("download progress").All()
	if len(lines) < 2 {
		t.Fatalf("%d progress lines for a %d-byte download at 2 MB/s, want at least 2", len(lines), total)
	}
	var last int64 = -1
	for _, l := range lines {
		f := l.ContextMap()
		got, _ := f["bytes"].(int64)
		if f["total"] != total || got < last || got > total || f["version"] != "v1" {
			t.Fatalf("progress line %v (total %d)", f, total)
		}
		if _, ok := f["mb_per_s"]; !ok {
			t.Fatalf("progress line without rate: %v", f)
		}
		if _, ok := f["eta"]; !ok && got < total {
			t.Fatalf("progress line without ETA: %v", f)
		}
		last = got
	}
	if len(calls) != 1 || calls[0].err != nil || calls[0].bytes != total || calls[0].d <= 0 {
		t.Fatalf("OnDownload calls %+v, want one of %d bytes", calls, total)
	}
	// The progress goroutine stopped with the download.
	n := len(logs.FilterMessage("download progress").All())
	time.Sleep(500 * time.Millisecond)
	if m := len(logs.FilterMessage("download progress").All()); m != n {
		t.Fatalf("progress still logged after the download: %d lines, then %d", n, m)
	}
}
