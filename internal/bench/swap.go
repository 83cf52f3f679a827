package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/batchkv/batchkv/internal/build"
	"github.com/batchkv/batchkv/internal/gen"
	"github.com/batchkv/batchkv/internal/objstore/file"
	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/syncer"
)

// SwapOptions configure RunSwap: GET load on a batchkv-server --root while
// the real syncer installs new versions from a file:// source.
type SwapOptions struct {
	// ServerBin is the batchkv-server binary. Required.
	ServerBin string
	// Keys in the dataset (the make bench shape). Default 500 000.
	Keys int64
	// Conns is the number of load connections. Default 50.
	Conns int
	// Swaps is the number of new versions published under load. Default 3.
	Swaps int
	// Steady is the load before the first publish and after each swap.
	// Default 8 s.
	Steady time.Duration
	// Window is the width of one latency window. Default 100 ms.
	Window time.Duration
	// After is how long after the server reports a new version the swap
	// window still runs (old version closing, cache settling). Default 1 s.
	After time.Duration
	// CacheBytes is the server's --cache-bytes. Default 256 MiB.
	CacheBytes int64
	// ServerFlags are extra batchkv-server flags (e.g. --warm-share 0.25).
	ServerFlags []string
	// WorkDir holds the input, builds, source and root; default a
	// temporary directory, removed at the end.
	WorkDir string
	// Progress receives progress lines; default io.Discard.
	Progress io.Writer
}

func (o *SwapOptions) ensureDefaults() {
	if o.Keys <= 0 {
		o.Keys = 500_000
	}
	if o.Conns <= 0 {
		o.Conns = 50
	}
	if o.Swaps <= 0 {
		o.Swaps = 3
	}
	if o.Steady <= 0 {
		o.Steady = 8 * time.Second
	}
	if o.Window <= 0 {
		o.Window = 100 * time.Millisecond
	}
	if o.After <= 0 {
		o.After = time.Second
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = 256 << 20
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// Sample is one GET: when it completed (since the load started) and how
// long it took, in microseconds.
type Sample struct {
	At, Lat uint32
	Err     bool
}

// Phase is a stretch of the run: a download (the syncer fetching and
// installing a version) or a swap (from the manifest's replacement until
// After past the moment the server reported the new version).
type Phase struct {
	Kind       string // "download" or "swap"
	Version    string
	Start, End time.Duration // since the load started
}

// Window is one latency window of the run.
type Window struct {
	Start         time.Duration
	Count, Errors int
	P50, P99, Max time.Duration
	Phase         string // "", "download" or "swap"
}

// SwapResult is the outcome of RunSwap.
type SwapResult struct {
	Options   SwapOptions
	Samples   []Sample
	Phases    []Phase
	Windows   []Window
	Requests  int
	Errors    int
	Steady    LatStats // outside every phase, after the first second
	Swap      LatStats // inside swap phases, pooled
	Download  LatStats // inside download phases, pooled
	PerSwap   []LatStats
	Duration  time.Duration
	SwapTimes []time.Duration // manifest replaced → server reports the version
}

// RunSwap runs the swap benchmark.
func RunSwap(ctx context.Context, o SwapOptions) (*SwapResult, error) {
	o.ensureDefaults()
	if o.ServerBin == "" {
		return nil, errors.New("bench: swap: no server binary")
	}
	progress := func(format string, args ...any) {
		fmt.Fprintf(o.Progress, "%s bench-swap: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	work := o.WorkDir
	if work == "" {
		d, err := os.MkdirTemp("", "batchkv-bench-swap-*")
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		defer os.RemoveAll(d)
		work = d
	}
	input, src, root := filepath.Join(work, "input"), filepath.Join(work, "src"), filepath.Join(work, "root")
	for _, d := range []string{input, src, root, filepath.Join(work, "builds")} {
		if err := os.RemoveAll(d); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	if _, err := gen.Generate(ctx, gen.Options{Dir: input, Keys: o.Keys, Parts: max(runtime.NumCPU(), 2)}); err != nil {
		return nil, err
	}
	versions := make([]string, o.Swaps+1)
	for i := range versions {
		versions[i] = fmt.Sprintf("20261122T%06dZ", i+1)
		t := time.Now()
		if _, err := build.Build(ctx, build.Options{Inputs: []string{input}, Out: filepath.Join(work, "builds", versions[i]),
			Name: "bench", Version: versions[i]}); err != nil {
			return nil, err
		}
		progress("built %s (%d keys) in %v", versions[i], o.Keys, time.Since(t).Round(time.Millisecond))
	}
	store := file.New(src)
	syn, err := syncer.New(syncer.Options{Source: store, Root: root, Logger: zap.NewNop(), ProgressInterval: -1})
	if err != nil {
		return nil, err
	}
	install := func(v string) error {
		if _, err := publish.Publish(ctx, filepath.Join(work, "builds", v), store, publish.Options{}); err != nil {
			return err
		}
		res, err := syn.SyncOnce(ctx)
		if err != nil {
			return err
		}
		if res.Action != syncer.ActionInstalled {
			return fmt.Errorf("bench: swap: syncer did not install %s: %+v", v, res)
		}
		return nil
	}
	if err := install(versions[0]); err != nil {
		return nil, err
	}

	// The keys asked: string keys only, values known.
	var keys, vals []string
	for i := range o.Keys {
		r := gen.RecordAt(0, i)
		if r.Fields == nil {
			keys, vals = append(keys, r.Key), append(vals, r.Value)
		}
	}

	srv, err := startServer("batchkv-server", "", func(port int) []string {
		return append([]string{o.ServerBin, "--addr", "127.0.0.1:" + strconv.Itoa(port), "--root", root,
			"--cache-bytes", strconv.FormatInt(o.CacheBytes, 10), "--metrics-addr", "", "--log-level", "warn"}, o.ServerFlags...)
	})
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	if _, err := WaitServing(ctx, srv.addr, keys[0], vals[0], 60*time.Second); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, srv.Output())
	}
	progress("server serving %s; load: %d connections of GET", versions[0], o.Conns)

	// The load, bounded in time: the whole schedule plus a generous margin.
	budget := time.Duration(o.Swaps+1)*o.Steady + time.Duration(o.Swaps)*2*time.Minute
	lctx, stop := context.WithTimeout(ctx, budget)
	defer stop()
	start := time.Now()
	since := func() time.Duration { return time.Since(start) }
	per := make([][]Sample, o.Conns)
	var wg sync.WaitGroup
	var connErr atomic.Pointer[error]
	for c := range o.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := getLoop(lctx, srv.addr, keys, vals, start, uint64(c))
			per[c] = s
			if err != nil {
				connErr.CompareAndSwap(nil, &err)
			}
		}()
	}

	res := &SwapResult{Options: o}
	var runErr error
	sleepCtx := func(d time.Duration) bool {
		select {
		case <-lctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	if sleepCtx(o.Steady) {
		for _, v := range versions[1:] {
			t0 := since()
			if err := install(v); err != nil {
				runErr = err
				break
			}
			t1 := since()
			if err := waitVersion(lctx, srv.addr, v, time.Minute); err != nil {
				runErr = fmt.Errorf("%w\n%s", err, srv.Output())
				break
			}
			t2 := since()
			res.SwapTimes = append(res.SwapTimes, t2-t1)
			res.Phases = append(res.Phases, Phase{Kind: "download", Version: v, Start: t0, End: t1},
				Phase{Kind: "swap", Version: v, Start: t1, End: t2 + o.After})
			progress("%s: published and installed in %v, live %v after the manifest", v, (t1 - t0).Round(time.Millisecond), (t2 - t1).Round(time.Millisecond))
			if !sleepCtx(o.Steady) {
				break
			}
		}
	}
	stop()
	wg.Wait()
	res.Duration = since()
	if runErr == nil && ctx.Err() != nil {
		runErr = ctx.Err()
	}
	if runErr == nil && len(res.SwapTimes) < o.Swaps {
		runErr = fmt.Errorf("bench: swap: load budget %v ran out after %d swaps", budget, len(res.SwapTimes))
	}
	if p := connErr.Load(); p != nil && runErr == nil {
		runErr = *p
	}
	for _, s := range per {
		res.Samples = append(res.Samples, s...)
	}
	res.summarize()
	return res, runErr
}

// summarize fills the windows and the pooled statistics from the samples
// and phases.
func (r *SwapResult) summarize() {
	win := r.Options.Window
	if win <= 0 {
		win = 100 * time.Millisecond
	}
	warm := uint32(time.Second / time.Microsecond)
	phaseOf := func(at uint32) (int, string) {
		t := time.Duration(at) * time.Microsecond
		for i, p := range r.Phases {
			if t >= p.Start && t < p.End {
				return i, p.Kind
			}
		}
		return -1, ""
	}
	var steady, swap, dl []uint32
	perSwap := map[string][]uint32{}
	byWin := map[int][]Sample{}
	r.Requests, r.Errors = len(r.Samples), 0
	for _, s := range r.Samples {
		if s.Err {
			r.Errors++
		}
		byWin[int(time.Duration(s.At)*time.Microsecond/win)] = append(byWin[int(time.Duration(s.At)*time.Microsecond/win)], s)
		i, kind := phaseOf(s.At)
		switch {
		case kind == "swap":
			swap = append(swap, s.Lat)
			perSwap[r.Phases[i].Version] = append(perSwap[r.Phases[i].Version], s.Lat)
		case kind == "download":
			dl = append(dl, s.Lat)
		case s.At >= warm:
			steady = append(steady, s.Lat)
		}
	}
	r.Steady, r.Swap, r.Download = statsOf(steady), statsOf(swap), statsOf(dl)
	r.PerSwap = nil
	for _, p := range r.Phases {
		if p.Kind == "swap" {
			r.PerSwap = append(r.PerSwap, statsOf(perSwap[p.Version]))
		}
	}
	r.Windows = nil
	last := -1
	for w := range byWin {
		last = max(last, w)
	}
	for w := 0; w <= last; w++ {
		ss := byWin[w]
		lat := make([]uint32, 0, len(ss))
		errs := 0
		for _, s := range ss {
			lat = append(lat, s.Lat)
			if s.Err {
				errs++
			}
		}
		st := statsOf(lat)
		start := time.Duration(w) * win
		_, kind := phaseOf(uint32((start + win/2) / time.Microsecond))
		r.Windows = append(r.Windows, Window{Start: start, Count: len(ss), Errors: errs, P50: st.P50, P99: st.P99, Max: st.Max, Phase: kind})
	}
}

// LatStats are exact latency quantiles of a set of requests.
type LatStats struct {
	N                   int
	P50, P99, P999, Max time.Duration
}

// statsOf returns exact quantiles (nearest rank) of latencies in µs.
func statsOf(lat []uint32) LatStats {
	if len(lat) == 0 {
		return LatStats{}
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	q := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return time.Duration(s[min(max(i, 0), len(s)-1)]) * time.Microsecond
	}
	return LatStats{N: len(s), P50: q(0.50), P99: q(0.99), P999: q(0.999), Max: time.Duration(s[len(s)-1]) * time.Microsecond}
}

// getLoop sends GETs of random keys on one connection until ctx ends,
// checking every reply against the expected value. Connection failures
// count as errors and the loop reconnects (bounded by ctx).
func getLoop(ctx context.Context, addr string, keys, vals []string, start time.Time, seed uint64) ([]Sample, error) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	out := make([]Sample, 0, 1<<16)
	var c net.Conn
	var r *bufio.Reader
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	buf := make([]byte, 0, 128)
	for ctx.Err() == nil {
		if c == nil {
			var err error
			if c, err = net.DialTimeout("tcp", addr, 2*time.Second); err != nil {
				out = append(out, Sample{At: uint32(time.Since(start) / time.Microsecond), Err: true})
				time.Sleep(10 * time.Millisecond)
				continue
			}
			r = bufio.NewReaderSize(c, 4096)
		}
		i := rng.IntN(len(keys))
		buf = appendArrayHeader(buf[:0], 2)
		buf = appendBulk(buf, "GET")
		buf = appendBulk(buf, keys[i])
		t := time.Now()
		c.SetDeadline(t.Add(5 * time.Second))
		ok := false
		if _, err := c.Write(buf); err == nil {
			ok = readBulkIs(r, vals[i])
		}
		done := time.Now()
		out = append(out, Sample{At: uint32(done.Sub(start) / time.Microsecond), Lat: uint32(done.Sub(t) / time.Microsecond), Err: !ok})
		if !ok {
			c.Close()
			c = nil
		}
	}
	return out, nil
}

// readBulkIs reads one reply and reports whether it is the bulk string want.
func readBulkIs(r *bufio.Reader, want string) bool {
	line, err := r.ReadSlice('\n')
	if err != nil || len(line) < 3 || line[0] != '$' {
		return false
	}
	n, err := strconv.Atoi(string(line[1 : len(line)-2]))
	if err != nil || n != len(want) {
		return false
	}
	b := make([]byte, n+2)
	if _, err := io.ReadFull(r, b); err != nil {
		return false
	}
	return string(b[:n]) == want
}

// WaitServing polls addr with GET key until the reply is want (a server
// still LOADING, refusing connections or not yet listening is polled again
// every 2 ms) and returns when that first happened, or an error after timeout.
func WaitServing(ctx context.Context, addr, key, want string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	req := appendBulk(appendBulk(appendArrayHeader(nil, 2), "GET"), key)
	var last error
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return time.Time{}, err
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			r := bufio.NewReader(c)
			for range 1000 { // one connection, polled until it serves
				if _, err = c.Write(req); err != nil {
					break
				}
				if readBulkIs(r, want) {
					c.Close()
					return time.Now(), nil
				}
				err = fmt.Errorf("GET %s: not %q yet", key, want)
				time.Sleep(2 * time.Millisecond)
				if time.Now().After(deadline) {
					break
				}
				c.SetDeadline(time.Now().Add(2 * time.Second))
			}
			c.Close()
		}
		last = err
		time.Sleep(2 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("bench: %s not serving GET %s within %v: %v", addr, key, timeout, last)
}

// waitVersion polls INFO dataset until the server reports version v.
func waitVersion(ctx context.Context, addr, v string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		info, err := infoOn(c, r, "dataset")
		if err != nil {
			return err
		}
		if infoField(info, "version") == v {
			return nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("bench: server never reported version %s", v)
}

// info returns INFO section of the server at addr.
func info(addr, section string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return infoOn(c, bufio.NewReader(c), section)
}

// infoOn sends INFO section on c and reads the reply from r.
func infoOn(c net.Conn, r *bufio.Reader, section string) (string, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(appendBulk(appendBulk(appendArrayHeader(nil, 2), "INFO"), section)); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "$") {
		return "", fmt.Errorf("bench: INFO: %q %v", line, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil {
		return "", err
	}
	b := make([]byte, n+2)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// infoField returns the value of name in an INFO reply.
func infoField(info, name string) string {
	for _, l := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimRight(l, "\r"), ":"); ok && k == name {
			return v
		}
	}
	return ""
}
