// Package bench is batchkv's side-by-side benchmark (`make bench`): it
// generates a feature-count-shaped dataset, loads it into a redis-server it
// starts and builds it into a batchkv version served by a real batchkv-server,
// then drives both, back to back, with its own raw-RESP load generator over a
// matrix of commands, connection counts, pipeline depths and key
// distributions. It reports throughput, latency quantiles and the server's CPU
// time per million requests for both, and their ratios.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/batchkv/batchkv/internal/build"
	"github.com/batchkv/batchkv/internal/gen"
)

// Defaults of Options.
const (
	DefaultKeys     = 2_000_000
	DefaultDuration = 2 * time.Second
	DefaultRepeats  = 3
	DefaultWarmup   = 2 * time.Second
	// WarmupPassMax bounds the warm-up's pass over the keys.
	WarmupPassMax      = 90 * time.Second
	DefaultClientProcs = 1
	DefaultCacheBytes  = 1 << 30
	DefaultMaxRequests = 50_000_000
	DefaultRedisBin    = "/usr/bin/redis-server"
)

// Server names in results.
const (
	Batchkv = "batchkv"
	Redis   = "redis"
)

// Options configure Run. Every field states its default.
type Options struct {
	// ServerBin is the batchkv-server binary. Required.
	ServerBin string
	// ServerArgs are extra batchkv-server flags (--io goroutine...).
	ServerArgs []string
	// RedisBin is the reference server; default DefaultRedisBin.
	RedisBin string
	// Keys is the dataset size; default DefaultKeys.
	Keys int64
	// Seed selects the generated dataset; default 0.
	Seed uint64
	// Duration of one cell against one server; default DefaultDuration.
	Duration time.Duration
	// Repeats of the whole matrix; the median of each figure is reported.
	// Default DefaultRepeats.
	Repeats int
	// Warmup per server and command before the matrix; default
	// DefaultWarmup; negative: none.
	Warmup time.Duration
	// MaxRequests bounds the requests of one cell run; default
	// DefaultMaxRequests.
	MaxRequests uint64
	// The matrix; defaults GET and HGETALL, {1, 50} connections, pipeline
	// {1, 16}, uniform and zipfian keys.
	Commands  []string
	Conns     []int
	Pipelines []int
	Dists     []string
	// ClientProcs is the load generator's GOMAXPROCS during the matrix
	// (setup uses every core); default DefaultClientProcs.
	ClientProcs int
	// CacheBytes is batchkv-server's --cache-bytes; default DefaultCacheBytes.
	CacheBytes int64
	// Pin runs both servers under taskset on the last CPU, so that the load
	// generator and the server do not share a core (the OS may still run
	// other work there). Ignored with fewer than two CPUs or no taskset.
	Pin bool
	// WorkDir receives the generated input and the built version; default a
	// temporary directory, removed at the end.
	WorkDir string
	// Progress receives one line per step; default none.
	Progress io.Writer
}

func (o *Options) ensureDefaults() {
	if o.RedisBin == "" {
		o.RedisBin = DefaultRedisBin
	}
	if o.Keys <= 0 {
		o.Keys = DefaultKeys
	}
	if o.Duration <= 0 {
		o.Duration = DefaultDuration
	}
	if o.Repeats <= 0 {
		o.Repeats = DefaultRepeats
	}
	if o.Warmup == 0 {
		o.Warmup = DefaultWarmup
	}
	if o.MaxRequests == 0 {
		o.MaxRequests = DefaultMaxRequests
	}
	if len(o.Commands) == 0 {
		o.Commands = []string{CmdGET, CmdHGETALL}
	}
	if len(o.Conns) == 0 {
		o.Conns = []int{1, 50}
	}
	if len(o.Pipelines) == 0 {
		o.Pipelines = []int{1, 16}
	}
	if len(o.Dists) == 0 {
		o.Dists = []string{DistUniform, DistZipfian}
	}
	if o.ClientProcs <= 0 {
		o.ClientProcs = DefaultClientProcs
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

func (o *Options) validate() error {
	if o.ServerBin == "" {
		return errors.New("bench: no batchkv-server binary given")
	}
	for _, c := range o.Commands {
		if c != CmdGET && c != CmdHGETALL {
			return fmt.Errorf("bench: unknown command %q (want GET or HGETALL)", c)
		}
	}
	for _, d := range o.Dists {
		if d != DistUniform && d != DistZipfian {
			return fmt.Errorf("bench: unknown key distribution %q (want uniform or zipfian)", d)
		}
	}
	for _, n := range slices.Concat(o.Conns, o.Pipelines) {
		if n <= 0 || n > 10000 {
			return fmt.Errorf("bench: connections and pipeline depths must be 1..10000, not %d", n)
		}
	}
	if o.Keys < 100 {
		return fmt.Errorf("bench: need at least 100 keys, not %d", o.Keys)
	}
	return nil
}

// Stats are one server's figures for one cell: medians over the repeats.
type Stats struct {
	OpsPerSec float64
	P50       time.Duration
	P99       time.Duration
	P999      time.Duration
	// CPUPerM is the server's CPU seconds (user + system) per million requests.
	CPUPerM float64
	// ClientCPU is the load generator's own CPU time (user + system, whole
	// process) over the cell's wall time: near ClientProcs, the client and
	// not the server was the bottleneck.
	ClientCPU float64
	// Requests, Errors and Misses are totals over the repeats.
	Requests, Errors, Misses uint64
}

// CellResult is one row of the table.
type CellResult struct {
	Cell
	Batchkv, Redis Stats
}

// Result is what Run measured.
type Result struct {
	Options Options
	Cells   []CellResult
	// Pinned is the CPU list the servers were pinned to ("" when not).
	Pinned string
	// RSS after the data was loaded (redis) or the version opened (batchkv),
	// and at the end of the matrix.
	RSSLoaded, RSSEnd map[string]int64
	// CacheEnd is what batchkv's block caches held after the matrix (INFO
	// memory: decoded blocks plus Pebble's own cache).
	CacheEnd int64
	// DiskBytes is the built version's size on disk.
	DiskBytes int64
	// StringKeys and HashKeys split Options.Keys by type.
	StringKeys, HashKeys int
	// Setup timings.
	GenTime, BuildTime, RedisLoadTime time.Duration
	Total                             time.Duration
	Machine                           string
}

// one run of one cell against one server.
type sample struct {
	ops, p50, p99, p999, cpuPerM, clientCPU float64
	load                                    *loadResult
}

// Run runs the whole benchmark. Both servers are stopped before it returns,
// whatever happens; when ctx ends the run stops early with ctx's error.
func Run(ctx context.Context, o Options) (res *Result, err error) {
	o.ensureDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	res = &Result{Options: o, RSSLoaded: map[string]int64{}, RSSEnd: map[string]int64{}, Machine: machine(o.RedisBin)}
	progress := func(format string, args ...any) {
		fmt.Fprintf(o.Progress, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}

	work := o.WorkDir
	if work == "" {
		work, err = os.MkdirTemp("", "batchkv-bench-*")
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		defer os.RemoveAll(work)
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	input, version := filepath.Join(work, "input"), filepath.Join(work, "version")
	for _, p := range []string{input, version} {
		if err := os.RemoveAll(p); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}

	cpu := ""
	if _, lerr := execLookPath("taskset"); o.Pin && lerr == nil && runtime.NumCPU() >= 2 {
		cpu = strconv.Itoa(runtime.NumCPU() - 1)
	}
	res.Pinned = cpu

	// redis-server first: its load (single connection, CPU of the server)
	// and the batchkv build do not overlap, so each gets the machine.
	progress("starting redis-server")
	rdb, err := startServer("redis-server", cpu, func(port int) []string {
		return []string{o.RedisBin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", work, "--loglevel", "warning"}
	})
	if err != nil {
		return nil, err
	}
	defer rdb.stop()
	t := time.Now()
	keys, err := loadRedis(ctx, rdb.addr, o.Seed, o.Keys)
	if err != nil {
		return nil, err
	}
	res.RedisLoadTime = time.Since(t)
	res.StringKeys, res.HashKeys = len(keys.strings), len(keys.hashes)
	if res.RSSLoaded[Redis], err = rssBytes(rdb.Pid()); err != nil {
		return nil, err
	}
	progress("loaded %d keys into redis-server in %v", o.Keys, res.RedisLoadTime.Round(time.Millisecond))

	t = time.Now()
	if _, err := gen.Generate(ctx, gen.Options{Dir: input, Keys: o.Keys, Seed: o.Seed, Parts: max(runtime.NumCPU(), 2)}); err != nil {
		return nil, err
	}
	res.GenTime = time.Since(t)
	t = time.Now()
	meta, err := build.Build(ctx, build.Options{Inputs: []string{input}, Out: version, Name: "bench", Version: "bench"})
	if err != nil {
		return nil, err
	}
	res.BuildTime = time.Since(t)
	if meta.Keys != o.Keys {
		return nil, fmt.Errorf("bench: built %d keys, generated %d", meta.Keys, o.Keys)
	}
	if res.DiskBytes, err = dirSize(version); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(input); err != nil { // the page cache is better spent on the version
		return nil, fmt.Errorf("bench: %w", err)
	}
	progress("generated in %v, built in %v: %.1f bytes/key on disk", res.GenTime.Round(time.Millisecond),
		res.BuildTime.Round(time.Millisecond), float64(res.DiskBytes)/float64(o.Keys))

	progress("starting batchkv-server")
	bkv, err := startServer("batchkv-server", cpu, func(port int) []string {
		return append([]string{o.ServerBin, "--addr", "127.0.0.1:" + strconv.Itoa(port), "--dataset", version,
			"--cache-bytes", strconv.FormatInt(o.CacheBytes, 10), "--metrics-addr", "", "--log-level", "warn"}, o.ServerArgs...)
	})
	if err != nil {
		return nil, err
	}
	defer bkv.stop()
	if res.RSSLoaded[Batchkv], err = rssBytes(bkv.Pid()); err != nil {
		return nil, err
	}
	servers := []struct {
		name string
		s    *server
	}{{Redis, rdb}, {Batchkv, bkv}}

	// The load generator gets few threads, so that it takes little of the
	// CPU the servers are measured on.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(o.ClientProcs))

	if o.Warmup > 0 {
		for _, sv := range servers {
			for _, cmd := range o.Commands {
				// At least as many requests as the command has keys: every
				// data block is then read (one block holds ~100 keys), so
				// both servers are measured in their steady state with the
				// dataset in memory (redis-server from the start, batchkv
				// once its block cache holds what a long run would have
				// read), not while batchkv's cache is still cold.
				ks := keys.forCommand(cmd)
				progress("warming up %s with %s for %v and at least %d requests", sv.name, cmd, o.Warmup, len(ks))
				c := Cell{Command: cmd, Conns: 50, Pipeline: 16, Dist: DistUniform}
				r, err := runLoad(ctx, sv.s.addr, ks, c, o.Warmup, o.MaxRequests, o.Seed)
				if err != nil {
					return nil, err
				}
				if left := uint64(len(ks)); r.ops < left {
					if _, err := runLoad(ctx, sv.s.addr, ks, c, WarmupPassMax, left-r.ops, o.Seed+1); err != nil {
						return nil, err
					}
				}
			}
		}
	}

	var cells []Cell
	for _, cmd := range o.Commands {
		for _, c := range o.Conns {
			for _, p := range o.Pipelines {
				for _, d := range o.Dists {
					cells = append(cells, Cell{Command: cmd, Conns: c, Pipeline: p, Dist: d})
				}
			}
		}
	}
	samples := make([][2][]sample, len(cells))
	for rep := range o.Repeats {
		for ci, cell := range cells {
			for j := range servers {
				// Alternate which server goes first, so slow drift in the
				// machine's load does not favour one.
				si := j
				if (rep+ci)%2 == 1 {
					si = 1 - j
				}
				sv := servers[si]
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				s, err := measure(ctx, sv.s, keys.forCommand(cell.Command), cell, o, uint64(rep)<<32|uint64(ci))
				if err != nil {
					return nil, fmt.Errorf("bench: %s: %s: %w", sv.name, cell, err)
				}
				samples[ci][si] = append(samples[ci][si], s)
				progress("repeat %d/%d %-28s %-7s %10.0f ops/s p50 %v p99 %v cpu %.2f s/M", rep+1, o.Repeats, cell, sv.name,
					s.ops, time.Duration(s.p50), time.Duration(s.p99), s.cpuPerM)
			}
		}
	}
	for ci, cell := range cells {
		res.Cells = append(res.Cells, CellResult{Cell: cell, Redis: summarize(samples[ci][0]), Batchkv: summarize(samples[ci][1])})
	}
	for _, sv := range servers {
		if res.RSSEnd[sv.name], err = rssBytes(sv.s.Pid()); err != nil {
			return nil, err
		}
		if sv.name == Batchkv {
			mem, err := info(sv.s.addr, "memory")
			if err != nil {
				return nil, fmt.Errorf("bench: batchkv INFO memory: %w", err)
			}
			for _, f := range []string{"batchkv_block_cache_bytes", "batchkv_pebble_cache_bytes"} {
				n, err := strconv.ParseInt(infoField(mem, f), 10, 64)
				if err != nil {
					return nil, fmt.Errorf("bench: batchkv INFO memory %s: %w", f, err)
				}
				res.CacheEnd += n
			}
		}
		if done, _ := sv.s.Exited(); done {
			return nil, fmt.Errorf("bench: %s exited during the run:\n%s", sv.name, sv.s.Output())
		}
	}
	res.Total = time.Since(start)
	return res, nil
}

// measure runs one cell against one server and reads the server's CPU time
// around it.
func measure(ctx context.Context, s *server, keys [][KeyLen]byte, cell Cell, o Options, seed uint64) (sample, error) {
	c0, err := cpuTime(s.Pid())
	if err != nil {
		return sample{}, err
	}
	u0, err := selfCPU()
	if err != nil {
		return sample{}, err
	}
	l, err := runLoad(ctx, s.addr, keys, cell, o.Duration, o.MaxRequests, seed)
	if err != nil {
		return sample{}, err
	}
	u1, err := selfCPU()
	if err != nil {
		return sample{}, err
	}
	c1, err := cpuTime(s.Pid())
	if err != nil {
		return sample{}, err
	}
	if l.ops == 0 {
		return sample{}, errors.New("no request completed")
	}
	return sample{
		ops:       float64(l.ops) / l.elapsed.Seconds(),
		p50:       float64(l.hist.Quantile(0.5)),
		p99:       float64(l.hist.Quantile(0.99)),
		p999:      float64(l.hist.Quantile(0.999)),
		cpuPerM:   (c1 - c0).Seconds() / (float64(l.ops) / 1e6),
		clientCPU: (u1 - u0).Seconds() / l.elapsed.Seconds(),
		load:      l,
	}, nil
}

func summarize(ss []sample) Stats {
	med := func(f func(sample) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	st := Stats{
		OpsPerSec: med(func(s sample) float64 { return s.ops }),
		P50:       time.Duration(med(func(s sample) float64 { return s.p50 })),
		P99:       time.Duration(med(func(s sample) float64 { return s.p99 })),
		P999:      time.Duration(med(func(s sample) float64 { return s.p999 })),
		CPUPerM:   med(func(s sample) float64 { return s.cpuPerM }),
		ClientCPU: med(func(s sample) float64 { return s.clientCPU }),
	}
	for _, s := range ss {
		st.Requests += s.load.ops
		st.Errors += s.load.errs
		st.Misses += s.load.misses
	}
	return st
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n += fi.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	return n, nil
}
