package bench

import (
	"bufio"
	"bytes"
	"context"
	"image/png"
	"net"
	"strings"
	"testing"
	"time"
)

func usec(v int) uint32 { return uint32(v) }

// swapFixture: 3 s of samples, one every ms, latency 100 µs, except
// 1000 µs inside the swap phase [1.5 s, 2 s), 2% of them 3× slower, and
// one error at 2.5 s.
func swapFixture() *SwapResult {
	r := &SwapResult{Options: SwapOptions{Window: 100 * time.Millisecond, Conns: 50}, Duration: 3 * time.Second,
		Phases: []Phase{
			{Kind: "download", Version: "v2", Start: 1200 * time.Millisecond, End: 1500 * time.Millisecond},
			{Kind: "swap", Version: "v2", Start: 1500 * time.Millisecond, End: 2000 * time.Millisecond},
		}}
	for ms := range 3000 {
		lat := 100
		if ms >= 1500 && ms < 2000 {
			lat = 1000
		}
		if ms%50 == 0 { // 2% slow: p99 and max are 3×
			lat *= 3
		}
		r.Samples = append(r.Samples, Sample{At: usec(ms * 1000), Lat: usec(lat), Err: ms == 2500})
	}
	r.summarize()
	return r
}

func TestSwapSummarize(t *testing.T) {
	r := swapFixture()
	if r.Requests != 3000 || r.Errors != 1 {
		t.Fatalf("requests %d errors %d", r.Requests, r.Errors)
	}
	if len(r.Windows) != 30 {
		t.Fatalf("%d windows, want 30", len(r.Windows))
	}
	for i, w := range r.Windows {
		want := ""
		switch {
		case i >= 12 && i < 15:
			want = "download"
		case i >= 15 && i < 20:
			want = "swap"
		}
		if w.Phase != want || w.Count != 100 || w.Start != time.Duration(i)*100*time.Millisecond {
			t.Fatalf("window %d: %+v, want phase %q, 100 requests", i, w, want)
		}
		wantLat := 100 * time.Microsecond
		if want == "swap" {
			wantLat = time.Millisecond
		}
		if w.P50 != wantLat || w.P99 != 3*wantLat || w.Max != 3*wantLat {
			t.Fatalf("window %d: %+v, want %v", i, w, wantLat)
		}
		if (w.Errors == 1) != (i == 25) {
			t.Fatalf("window %d errors %d", i, w.Errors)
		}
	}
	// Steady: after the first second, outside both phases: 1.0–1.2 s and 2.0–3.0 s.
	if r.Steady.N != 200+1000 || r.Steady.P99 != 300*time.Microsecond {
		t.Fatalf("steady %+v", r.Steady)
	}
	if r.Swap.N != 500 || r.Swap.P99 != 3*time.Millisecond || len(r.PerSwap) != 1 || r.PerSwap[0] != r.Swap {
		t.Fatalf("swap %+v per swap %+v", r.Swap, r.PerSwap)
	}
	if r.Download.N != 300 {
		t.Fatalf("download %+v", r.Download)
	}
}

func TestStatsOf(t *testing.T) {
	var lat []uint32
	for i := 1000; i >= 1; i-- {
		lat = append(lat, uint32(i))
	}
	s := statsOf(lat)
	if s.N != 1000 || s.P50 != 500*time.Microsecond || s.P99 != 990*time.Microsecond || s.P999 != 999*time.Microsecond || s.Max != 1000*time.Microsecond {
		t.Fatalf("%+v", s)
	}
	if lat[0] != 1000 {
		t.Fatal("statsOf sorted its argument")
	}
	if (statsOf(nil) != LatStats{}) {
		t.Fatal("empty")
	}
}

func TestSwapCSV(t *testing.T) {
	r := swapFixture()
	var b bytes.Buffer
	if err := r.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 31 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, want := range map[int]string{
		0:  "window_start_ms,requests,errors,p50_us,p99_us,max_us,phase",
		1:  "0,100,0,100,300,300,",
		13: "1200,100,0,100,300,300,download",
		16: "1500,100,0,1000,3000,3000,swap",
		26: "2500,100,1,100,300,300,",
	} {
		if lines[i] != want {
			t.Errorf("line %d: %q, want %q", i, lines[i], want)
		}
	}
}

func TestSwapPNG(t *testing.T) {
	r := swapFixture()
	var b bytes.Buffer
	if err := r.WritePNG(&b); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != plotW || img.Bounds().Dy() != plotH {
		t.Fatalf("size %v", img.Bounds())
	}
	count := map[[3]uint32]int{}
	for y := 0; y < plotH; y++ {
		for x := 0; x < plotW; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			count[[3]uint32{r >> 8, g >> 8, b >> 8}]++
		}
	}
	for name, c := range map[string][3]uint32{
		"p50":      {uint32(colP50.R), uint32(colP50.G), uint32(colP50.B)},
		"p99":      {uint32(colP99.R), uint32(colP99.G), uint32(colP99.B)},
		"swap":     {uint32(colSwap.R), uint32(colSwap.G), uint32(colSwap.B)},
		"download": {uint32(colDownload.R), uint32(colDownload.G), uint32(colDownload.B)},
	} {
		if count[c] < 50 {
			t.Errorf("%s colour: %d pixels", name, count[c])
		}
	}
	// The swap shading spans a sixth of the time axis (0.5 of 3 s).
	sw := count[[3]uint32{uint32(colSwap.R), uint32(colSwap.G), uint32(colSwap.B)}]
	want := (plotW - marginL - marginR) / 6 * (plotH - marginTop - marginBelow)
	if sw < want/2 || sw > want*3/2 {
		t.Errorf("swap shading %d pixels, want about %d", sw, want)
	}
	// The p99 line sits lower (smaller latency, larger y) in steady windows
	// than in the swap window.
	yAt := func(x int) int {
		for y := marginTop; y < plotH-marginBelow; y++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if uint8(r>>8) == colP99.R && uint8(g>>8) == colP99.G && uint8(b>>8) == colP99.B {
				return y
			}
		}
		return -1
	}
	xOf := func(t time.Duration) int {
		return marginL + int(float64(plotW-marginL-marginR)*float64(t)/float64(3*time.Second))
	}
	steadyY, swapY := yAt(xOf(2500*time.Millisecond)), yAt(xOf(1750*time.Millisecond))
	if steadyY < 0 || swapY < 0 || swapY >= steadyY {
		t.Errorf("p99 line at y %d in steady state, %d in the swap: want the swap higher", steadyY, swapY)
	}
}

func TestGlyphsCoverLabels(t *testing.T) {
	r := swapFixture()
	for _, s := range []string{"get latency per 100ms window, 50 connections: p50 p99 max; blue download, orange swap",
		"latency", "10us", "100us", "1ms", "10ms", "100ms", "1s", "10s", "25s", decadeLabel(7)} {
		for _, c := range s {
			if _, ok := glyphs[c]; !ok {
				t.Errorf("no glyph for %q in %q", c, s)
			}
		}
	}
	_ = r
}

func TestReadBulkIsAndInfoField(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"$3\r\nabc\r\n", true},
		{"$3\r\nabd\r\n", false},
		{"$-1\r\n", false},
		{"-LOADING batchkv is loading the dataset\r\n", false},
		{"$4\r\nabc\r\n", false},
	} {
		if got := readBulkIs(bufio.NewReader(strings.NewReader(c.in)), "abc"); got != c.want {
			t.Errorf("readBulkIs(%q) = %v", c.in, got)
		}
	}
	info := "# Dataset\r\ndataset:bench\r\nversion:v2\r\nkeys:10\r\n"
	if infoField(info, "version") != "v2" || infoField(info, "keys") != "10" || infoField(info, "swaps") != "" {
		t.Fatal("infoField")
	}
}

// TestWaitServing: a listener that answers -LOADING to the first GETs and
// then the value; WaitServing returns once the value came, not before.
func TestWaitServing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const loading = 5
	served := make(chan time.Time, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for n := 0; ; n++ {
			// GET key: *2 $3 GET $3 key = 5 lines.
			for range 5 {
				if _, err := r.ReadString('\n'); err != nil {
					return
				}
			}
			if n < loading {
				c.Write([]byte("-LOADING batchkv is loading the dataset in memory\r\n"))
				continue
			}
			served <- time.Now()
			c.Write([]byte("$5\r\nvalue\r\n"))
		}
	}()
	at, err := WaitServing(context.Background(), ln.Addr().String(), "key", "value", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if s := <-served; at.Before(s) {
		t.Fatalf("returned at %v, before the value was sent at %v", at, s)
	}
	ln.Close()
	if _, err := WaitServing(context.Background(), ln.Addr().String(), "key", "value", 200*time.Millisecond); err == nil {
		t.Fatal("nothing listening, yet serving")
	}
}
