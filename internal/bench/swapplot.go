package bench

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// WriteCSV writes one line per window: start in ms, requests, errors,
// p50/p99/max in µs, and the phase ("", download, swap).
func (r *SwapResult) WriteCSV(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "window_start_ms,requests,errors,p50_us,p99_us,max_us,phase")
	for _, x := range r.Windows {
		fmt.Fprintf(bw, "%d,%d,%d,%d,%d,%d,%s\n", x.Start.Milliseconds(), x.Count, x.Errors,
			x.P50.Microseconds(), x.P99.Microseconds(), x.Max.Microseconds(), x.Phase)
	}
	return bw.Flush()
}

// Plot colours.
var (
	colBG       = color.RGBA{255, 255, 255, 255}
	colAxis     = color.RGBA{40, 40, 40, 255}
	colGrid     = color.RGBA{225, 225, 225, 255}
	colP50      = color.RGBA{31, 119, 180, 255}
	colP99      = color.RGBA{214, 39, 40, 255}
	colMax      = color.RGBA{150, 150, 150, 255}
	colSwap     = color.RGBA{255, 215, 160, 255}
	colDownload = color.RGBA{215, 235, 255, 255}
)

// Plot geometry.
const (
	plotW, plotH           = 1200, 520
	marginL, marginR       = 70, 20
	marginTop, marginBelow = 40, 50
)

// WritePNG plots p50, p99 and max latency per window over time (log scale),
// downloads shaded blue and swap windows orange.
func (r *SwapResult) WritePNG(w io.Writer) error {
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	fill(img, img.Bounds(), colBG)
	x0, x1, y0, y1 := marginL, plotW-marginR, marginTop, plotH-marginBelow
	total := r.Duration
	if n := len(r.Windows); n > 0 {
		total = max(total, r.Windows[n-1].Start+r.Options.Window)
	}
	if total <= 0 {
		total = time.Second
	}
	xOf := func(t time.Duration) int { return x0 + int(float64(x1-x0)*float64(t)/float64(total)) }
	// y: log10 of µs, from 10 µs to the next decade above the largest max.
	top := 1000.0
	for _, x := range r.Windows {
		top = max(top, float64(x.Max.Microseconds()))
	}
	lo, hi := 1.0, math.Ceil(math.Log10(top))
	yOf := func(us float64) int {
		v := math.Log10(max(us, 10))
		return y1 - int(float64(y1-y0)*(v-lo)/(hi-lo))
	}
	for _, p := range r.Phases {
		c := colDownload
		if p.Kind == "swap" {
			c = colSwap
		}
		fill(img, image.Rect(xOf(p.Start), y0, max(xOf(p.End), xOf(p.Start)+1), y1), c)
	}
	for d := lo; d <= hi; d++ {
		y := yOf(math.Pow(10, d))
		hline(img, x0, x1, y, colGrid)
		drawText(img, x0-8-textWidth(decadeLabel(d), 2), y-5, decadeLabel(d), colAxis, 2)
	}
	step := 5 * time.Second
	if total > 2*time.Minute {
		step = 30 * time.Second
	}
	for t := time.Duration(0); t <= total; t += step {
		x := xOf(t)
		vline(img, x, y0, y1, colGrid)
		lbl := strconv.Itoa(int(t.Seconds())) + "s"
		drawText(img, x-textWidth(lbl, 2)/2, y1+8, lbl, colAxis, 2)
	}
	hline(img, x0, x1, y1, colAxis)
	vline(img, x0, y0, y1, colAxis)
	series := []struct {
		c   color.RGBA
		get func(Window) time.Duration
	}{
		{colMax, func(x Window) time.Duration { return x.Max }},
		{colP99, func(x Window) time.Duration { return x.P99 }},
		{colP50, func(x Window) time.Duration { return x.P50 }},
	}
	for _, s := range series {
		px, py := -1, -1
		for _, x := range r.Windows {
			if x.Count == 0 {
				px = -1
				continue
			}
			cx, cy := xOf(x.Start+r.Options.Window/2), yOf(float64(s.get(x).Microseconds()))
			if px >= 0 {
				line(img, px, py, cx, cy, s.c)
			}
			px, py = cx, cy
		}
	}
	// Error windows: a red tick under the axis.
	for _, x := range r.Windows {
		if x.Errors > 0 {
			fill(img, image.Rect(xOf(x.Start), y1+1, xOf(x.Start)+3, y1+6), colP99)
		}
	}
	title := fmt.Sprintf("get latency per %s window, %d connections: p50 p99 max; blue download, orange swap",
		r.Options.Window, r.Options.Conns)
	drawText(img, x0, 12, title, colAxis, 2)
	lx := x0 + textWidth(title, 2) + 20
	for _, l := range []struct {
		s string
		c color.RGBA
	}{{"p50", colP50}, {"p99", colP99}, {"max", colMax}} {
		fill(img, image.Rect(lx, 16, lx+14, 20), l.c)
		drawText(img, lx+18, 12, l.s, l.c, 2)
		lx += 18 + textWidth(l.s, 2) + 14
	}
	drawText(img, 4, y0-14, "latency", colAxis, 2)
	return png.Encode(w, img)
}

func decadeLabel(d float64) string {
	us := math.Pow(10, d)
	switch {
	case us < 1000:
		return strconv.Itoa(int(us)) + "us"
	case us < 1e6:
		return strconv.Itoa(int(us/1000)) + "ms"
	default:
		return strconv.Itoa(int(us/1e6)) + "s"
	}
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) {
	fill(img, image.Rect(x0, y, x1+1, y+1), c)
}

func vline(img *image.RGBA, x, y0, y1 int, c color.RGBA) {
	fill(img, image.Rect(x, y0, x+1, y1+1), c)
}

// line draws a segment (Bresenham), two pixels thick.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		fill(img, image.Rect(x0, y0, x0+2, y0+2), c)
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// glyphs is a 3×5 pixel font of what the plot writes (lower case, digits,
// a little punctuation); unknown characters draw as a box.
var glyphs = map[rune][5]string{
	'0': {"###", "#.#", "#.#", "#.#", "###"}, '1': {".#.", "##.", ".#.", ".#.", "###"},
	'2': {"##.", "..#", ".#.", "#..", "###"}, '3': {"##.", "..#", ".#.", "..#", "##."},
	'4': {"#.#", "#.#", "###", "..#", "..#"}, '5': {"###", "#..", "##.", "..#", "##."},
	'6': {".##", "#..", "###", "#.#", "###"}, '7': {"###", "..#", ".#.", ".#.", ".#."},
	'8': {"###", "#.#", "###", "#.#", "###"}, '9': {"###", "#.#", "###", "..#", "##."},
	'a': {"...", ".##", "#.#", "#.#", ".##"}, 'b': {"#..", "##.", "#.#", "#.#", "##."},
	'c': {"...", ".##", "#..", "#..", ".##"}, 'd': {"..#", ".##", "#.#", "#.#", ".##"},
	'e': {"...", ".#.", "###", "#..", ".##"}, 'f': {".##", "#..", "##.", "#..", "#.."},
	'g': {"...", ".##", "#.#", ".##", "##."}, 'h': {"#..", "##.", "#.#", "#.#", "#.#"},
	'i': {".#.", "...", ".#.", ".#.", ".#."}, 'k': {"#..", "#.#", "##.", "#.#", "#.#"},
	'l': {"#..", "#..", "#..", "#..", ".##"}, 'm': {"...", "###", "###", "#.#", "#.#"},
	'n': {"...", "##.", "#.#", "#.#", "#.#"}, 'o': {"...", ".#.", "#.#", "#.#", ".#."},
	'p': {"...", "##.", "#.#", "##.", "#.."}, 'r': {"...", ".##", "#..", "#..", "#.."},
	's': {"...", ".##", ".#.", "..#", "##."}, 't': {".#.", "###", ".#.", ".#.", "..#"},
	'u': {"...", "#.#", "#.#", "#.#", ".##"}, 'v': {"...", "#.#", "#.#", "#.#", ".#."},
	'w': {"...", "#.#", "#.#", "###", "###"}, 'x': {"...", "#.#", ".#.", ".#.", "#.#"},
	'y': {"...", "#.#", ".##", "..#", "##."}, 'z': {"...", "###", "..#", ".#.", "###"},
	'.': {"...", "...", "...", "...", ".#."}, ',': {"...", "...", "...", ".#.", "#.."},
	':': {"...", ".#.", "...", ".#.", "..."}, ';': {"...", ".#.", "...", ".#.", "#.."},
	'-': {"...", "...", "###", "...", "..."}, '/': {"..#", "..#", ".#.", "#..", "#.."},
	'(': {".#.", "#..", "#..", "#..", ".#."}, ')': {".#.", "..#", "..#", "..#", ".#."},
	'%': {"#.#", "..#", ".#.", "#..", "#.#"}, ' ': {"...", "...", "...", "...", "..."},
}

func textWidth(s string, scale int) int { return len([]rune(s)) * 4 * scale }

// drawText writes s with its top left corner at (x, y), each font pixel
// scale×scale.
func drawText(img *image.RGBA, x, y int, s string, c color.RGBA, scale int) {
	for _, ch := range s {
		g, ok := glyphs[ch]
		if !ok {
			g = [5]string{"###", "#.#", "#.#", "#.#", "###"}
		}
		for row, bits := range g {
			for col, b := range bits {
				if b == '#' {
					fill(img, image.Rect(x+col*scale, y+row*scale, x+(col+1)*scale, y+(row+1)*scale), c)
				}
			}
		}
		x += 4 * scale
	}
}

// Summary is the human-readable result: requests, errors, steady-state and
// swap-window latency and their ratio, each swap's figures.
func (r *SwapResult) Summary() string {
	var b strings.Builder
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64) }
	fmt.Fprintf(&b, "swap under load: %d keys, %d connections of GET, %d swaps, %s in all; %d requests (%.0f/s), %d errors\n",
		r.Options.Keys, r.Options.Conns, len(r.SwapTimes), r.Duration.Round(time.Millisecond), r.Requests,
		float64(r.Requests)/max(r.Duration.Seconds(), 1e-9), r.Errors)
	fmt.Fprintf(&b, "steady state: p50 %s ms, p99 %s ms, p99.9 %s ms, max %s ms (%d requests)\n", ms(r.Steady.P50), ms(r.Steady.P99), ms(r.Steady.P999), ms(r.Steady.Max), r.Steady.N)
	fmt.Fprintf(&b, "swap windows: p50 %s ms, p99 %s ms, p99.9 %s ms, max %s ms (%d requests); p99 ratio swap/steady %.2fx\n",
		ms(r.Swap.P50), ms(r.Swap.P99), ms(r.Swap.P999), ms(r.Swap.Max), r.Swap.N, r.Swap.P99.Seconds()/max(r.Steady.P99.Seconds(), 1e-9))
	fmt.Fprintf(&b, "download windows (syncer publishing and installing on the same machine): p50 %s ms, p99 %s ms, max %s ms (%d requests); p99 ratio %.2fx\n",
		ms(r.Download.P50), ms(r.Download.P99), ms(r.Download.Max), r.Download.N, r.Download.P99.Seconds()/max(r.Steady.P99.Seconds(), 1e-9))
	i := 0
	for _, p := range r.Phases {
		if p.Kind != "swap" || i >= len(r.PerSwap) {
			continue
		}
		s := r.PerSwap[i]
		fmt.Fprintf(&b, "  swap to %s: live %s ms after the manifest; window p99 %s ms, max %s ms (%d requests)\n",
			p.Version, ms(r.SwapTimes[i]), ms(s.P99), ms(s.Max), s.N)
		i++
	}
	return b.String()
}
