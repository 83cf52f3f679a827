// Package diff compares the data two Redis-protocol servers hold — batchkv,
// redis-server, or anything that speaks RESP — key by key and type-aware:
// the dark-launch parity check run before moving clients to batchkv.
//
// Each batch of keys costs two pipelined round trips per side: TYPE for
// every key, then the read that fits the type (GET, HGETALL, SMEMBERS,
// LRANGE, ZRANGE WITHSCORES). Hashes compare as maps and sets as sets. The
// run is rate-limited (keys per second, a token bucket) so that it can be
// pointed at production, and never retries a failed command.
package diff

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/batchkv/batchkv/internal/store"
	"github.com/redis/go-redis/v9"
)

// ErrOptions reports invalid Options.
var ErrOptions = errors.New("diff: invalid options")

// ErrDifferent is returned by Report.Err when the sides differ.
var ErrDifferent = errors.New("diff: the servers differ")

// Endpoint is one side of the comparison.
type Endpoint struct {
	// Addr is host:port.
	Addr string
	// Username and Password authenticate (HELLO, falling back to AUTH);
	// empty: none.
	Username, Password string
	// TLS, when set, connects with TLS.
	TLS *tls.Config
}

// Options configures Run. Exactly one key source may be set (Keys, Dataset
// or Sample); with none, every key of A is scanned.
type Options struct {
	A, B Endpoint

	// Keys, when set, lists the keys to compare, one per line (a trailing
	// \r is dropped; empty lines are skipped).
	Keys io.Reader
	// KeysBase64 means each line of Keys is standard base64 (binary keys).
	KeysBase64 bool
	// Dataset, when set, is a built version directory: every key of it is
	// compared and its key count is checked against DBSIZE of each side.
	Dataset string
	// Sample, when positive, compares that many random keys of A (RANDOMKEY,
	// deduplicated, at most 10×Sample+100 attempts) plus as many of B (to
	// find keys only B has).
	Sample int
	// Both, in scan mode, also scans B to find keys only B has.
	Both bool

	// Rate limits keys compared per second over both sides together
	// (default 5000; negative: unlimited).
	Rate float64
	// Batch is the number of keys per pipeline (default 100; at most
	// Rate/20, so low rates send small, even batches).
	Batch int
	// Concurrency is the number of batches in flight (default 4).
	Concurrency int
	// Examples is the number of differences recorded with details
	// (default 10; negative: none).
	Examples int
	// Timeout bounds dialing and each round trip (default 5 s).
	Timeout time.Duration

	// Progress, when set, is called every ProgressEvery (default 10 s) from
	// a goroutine of Run's, with the keys compared and differences so far.
	Progress      func(compared, differences int64)
	ProgressEvery time.Duration
}

func (o *Options) ensureDefaults() error {
	sources := 0
	if o.Keys != nil {
		sources++
	}
	if o.Dataset != "" {
		sources++
	}
	if o.Sample > 0 {
		sources++
	}
	switch {
	case o.A.Addr == "" || o.B.Addr == "":
		return fmt.Errorf("%w: two addresses are required", ErrOptions)
	case sources > 1:
		return fmt.Errorf("%w: give at most one of keys, dataset and sample", ErrOptions)
	case o.Sample < 0:
		return fmt.Errorf("%w: negative sample", ErrOptions)
	case o.Both && sources > 0:
		return fmt.Errorf("%w: both applies to scan mode only", ErrOptions)
	case o.Batch < 0 || o.Concurrency < 0 || o.Timeout < 0:
		return fmt.Errorf("%w: negative batch, concurrency or timeout", ErrOptions)
	}
	if o.Rate == 0 {
		o.Rate = 5000
	}
	if o.Batch == 0 {
		o.Batch = 100
	}
	if o.Rate > 0 {
		o.Batch = max(1, min(o.Batch, int(o.Rate/20)))
	}
	if o.Concurrency == 0 {
		o.Concurrency = 4
	}
	if o.Examples == 0 {
		o.Examples = 10
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 10 * time.Second
	}
	return nil
}

// Kinds of difference.
const (
	KindMismatch    = "mismatch"     // same type, different value
	KindMissingA    = "missing_on_a" // only B has the key
	KindMissingB    = "missing_on_b" // only A has the key
	KindType        = "type"         // different types
	KindUnsupported = "unsupported"  // same type, one diff cannot read (e.g. stream)
	KindError       = "error"        // a command failed
	KindCount       = "count"        // a key count disagrees (DBSIZE)
)

// Difference is one reported difference.
type Difference struct {
	Kind string `json:"kind"`
	// Key is the key, escaped (Go-quoted, truncated); empty for KindCount.
	Key string `json:"key,omitempty"`
	// A and B describe each side's value, short.
	A string `json:"a"`
	B string `json:"b"`
}

// Side is what the report says about one server.
type Side struct {
	Addr    string  `json:"addr"`
	DBSize  int64   `json:"dbsize"`
	Latency Latency `json:"latency"`
}

// Report is the outcome of Run.
type Report struct {
	// Source is how keys were chosen: keys, dataset, sample or scan.
	Source string `json:"source"`
	A      Side   `json:"a"`
	B      Side   `json:"b"`
	// DatasetKeys is the key count of the --dataset version (0 otherwise).
	DatasetKeys int64 `json:"dataset_keys,omitempty"`

	// Compared counts the keys compared; every one of them is counted in
	// exactly one of Equal, Mismatched, MissingA, MissingB, TypeDiffs,
	// Unsupported and Errors. AbsentBoth counts keys (listed, but on neither
	// side) that are also in Equal.
	Compared    int64 `json:"compared"`
	Equal       int64 `json:"equal"`
	AbsentBoth  int64 `json:"absent_both"`
	Mismatched  int64 `json:"mismatched"`
	MissingA    int64 `json:"missing_on_a"`
	MissingB    int64 `json:"missing_on_b"`
	TypeDiffs   int64 `json:"type_differences"`
	Unsupported int64 `json:"unsupported"`
	Errors      int64 `json:"errors"`
	// CountDiffs counts key counts (DBSIZE against the dataset, or A against
	// B in a full scan) that disagree.
	CountDiffs int64 `json:"count_differences"`

	// Examples are the first differences found, up to Options.Examples.
	Examples []Difference  `json:"examples"`
	Duration time.Duration `json:"duration_ns"`

	maxExamples int
	mu          sync.Mutex
}

// Differences is the number of differences of every kind, errors included.
func (r *Report) Differences() int64 {
	return r.Mismatched + r.MissingA + r.MissingB + r.TypeDiffs + r.Unsupported + r.Errors + r.CountDiffs
}

// Err returns nil when the sides are identical, else an error wrapping
// ErrDifferent that says how many differences there are.
func (r *Report) Err() error {
	if n := r.Differences(); n > 0 {
		return fmt.Errorf("%w: %d differences in %d keys compared", ErrDifferent, n, r.Compared)
	}
	return nil
}

func (r *Report) record(d Difference) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch d.Kind {
	case KindMismatch:
		r.Mismatched++
	case KindMissingA:
		r.MissingA++
	case KindMissingB:
		r.MissingB++
	case KindType:
		r.TypeDiffs++
	case KindUnsupported:
		r.Unsupported++
	case KindError:
		r.Errors++
	case KindCount:
		r.CountDiffs++
	}
	if d.Kind != KindCount {
		r.Compared++
	}
	if len(r.Examples) < r.maxExamples {
		r.Examples = append(r.Examples, d)
	}
}

func (r *Report) same(absent bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Compared++
	r.Equal++
	if absent {
		r.AbsentBoth++
	}
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "A: %s (dbsize %d)\nB: %s (dbsize %d)\n", r.A.Addr, r.A.DBSize, r.B.Addr, r.B.DBSize)
	if r.Source == "dataset" {
		fmt.Fprintf(&b, "dataset keys: %d\n", r.DatasetKeys)
	}
	fmt.Fprintf(&b, "keys from: %s\n", r.Source)
	fmt.Fprintf(&b, "compared:          %d in %s\n", r.Compared, r.Duration.Round(time.Millisecond))
	fmt.Fprintf(&b, "equal:             %d", r.Equal)
	if r.AbsentBoth > 0 {
		fmt.Fprintf(&b, " (%d on neither side)", r.AbsentBoth)
	}
	fmt.Fprintf(&b, "\nmismatched:        %d\nmissing on A:      %d\nmissing on B:      %d\ntype differences:  %d\nunsupported types: %d\nerrors:            %d\ncount differences: %d\n",
		r.Mismatched, r.MissingA, r.MissingB, r.TypeDiffs, r.Unsupported, r.Errors, r.CountDiffs)
	for _, s := range []struct {
		name string
		l    Latency
	}{{"A", r.A.Latency}, {"B", r.B.Latency}} {
		fmt.Fprintf(&b, "latency %s:         p50 %s  p99 %s  max %s  (%d round trips)\n", s.name,
			s.l.P50.Round(time.Microsecond), s.l.P99.Round(time.Microsecond), s.l.Max.Round(time.Microsecond), s.l.Rounds)
	}
	if len(r.Examples) > 0 {
		fmt.Fprintf(&b, "first %d differences:\n", len(r.Examples))
		for _, d := range r.Examples {
			if d.Key != "" {
				fmt.Fprintf(&b, "  %s %s\n", d.Kind, d.Key)
			} else {
				fmt.Fprintf(&b, "  %s\n", d.Kind)
			}
			fmt.Fprintf(&b, "    A: %s\n    B: %s\n", d.A, d.B)
		}
	}
	if r.Differences() == 0 {
		b.WriteString("identical\n")
	} else {
		fmt.Fprintf(&b, "DIFFERENT: %d differences\n", r.Differences())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// item is one key to compare. extra marks a key found by scanning B: it is
// only checked for being missing on A (A's own scan compares the rest).
type item struct {
	key   string
	extra bool
}

// Run compares the two servers and returns the report. The error is for a
// run that could not be completed (bad options, a server that cannot be
// reached or fails mid-run, an unreadable key source); differences are in
// the report (see Report.Err).
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.ensureDefaults(); err != nil {
		return nil, err
	}
	start := time.Now()
	rep := &Report{A: Side{Addr: opts.A.Addr}, B: Side{Addr: opts.B.Addr}, Examples: []Difference{}, maxExamples: max(opts.Examples, 0)}
	a, err := dial(ctx, "A", opts.A, opts)
	if err != nil {
		return nil, err
	}
	defer a.close()
	b, err := dial(ctx, "B", opts.B, opts)
	if err != nil {
		return nil, err
	}
	defer b.close()

	var db *store.DB
	switch {
	case opts.Keys != nil:
		rep.Source = "keys"
	case opts.Dataset != "":
		rep.Source = "dataset"
		if db, err = store.Open(opts.Dataset, nil); err != nil {
			if errors.Is(err, syscall.EAGAIN) {
				// Pebble locks the directory, even read-only.
				return nil, fmt.Errorf("diff: dataset: %w (a server has it open: give diff a copy of the version)", err)
			}
			return nil, fmt.Errorf("diff: dataset: %w", err)
		}
		defer db.Close()
		rep.DatasetKeys = db.Meta().Keys
	case opts.Sample > 0:
		rep.Source = "sample"
	default:
		rep.Source = "scan"
	}
	if rep.A.DBSize, err = a.c.DBSize(ctx).Result(); err != nil {
		return nil, fmt.Errorf("diff: A %s: DBSIZE: %w", a.addr, err)
	}
	if rep.B.DBSize, err = b.c.DBSize(ctx).Result(); err != nil {
		return nil, fmt.Errorf("diff: B %s: DBSIZE: %w", b.addr, err)
	}
	switch rep.Source {
	case "dataset":
		for _, s := range []*Side{&rep.A, &rep.B} {
			if s.DBSize != rep.DatasetKeys {
				rep.record(Difference{Kind: KindCount, A: fmt.Sprintf("DBSIZE of %s: %d", s.Addr, s.DBSize), B: fmt.Sprintf("dataset: %d keys", rep.DatasetKeys)})
			}
		}
	case "scan":
		if rep.A.DBSize != rep.B.DBSize {
			rep.record(Difference{Kind: KindCount, A: fmt.Sprintf("DBSIZE %d", rep.A.DBSize), B: fmt.Sprintf("DBSIZE %d", rep.B.DBSize)})
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lim := newLimiter(opts.Rate, opts.Batch)
	batches := make(chan []item, opts.Concurrency)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	if opts.Progress != nil {
		done, progressDone := make(chan struct{}), make(chan struct{})
		// The reporter stops before Run returns.
		defer func() { close(done); <-progressDone }()
		go func() {
			defer close(progressDone)
			t := time.NewTicker(opts.ProgressEvery)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					rep.mu.Lock()
					compared, n := rep.Compared, rep.Differences()
					rep.mu.Unlock()
					opts.Progress(compared, n)
				case <-done:
					return
				}
			}
		}()
	}
	for range opts.Concurrency {
		wg.Go(func() {
			for batch := range batches {
				if err := lim.wait(ctx, len(batch)); err != nil {
					fail(err)
					continue // drain, so the producer never blocks
				}
				if err := compareBatch(ctx, a, b, batch, rep); err != nil {
					fail(err)
				}
			}
		})
	}
	var produceErr error
	emit := newBatcher(ctx, opts.Batch, batches)
	switch rep.Source {
	case "keys":
		produceErr = readKeys(opts.Keys, opts.KeysBase64, emit)
	case "dataset":
		produceErr = scanDataset(db, opts.Batch, emit)
	case "sample":
		produceErr = sample(ctx, a, b, opts.Sample, opts.Batch, lim, emit)
	case "scan":
		produceErr = scan(ctx, a, opts.Batch, false, emit)
		if produceErr == nil && opts.Both {
			produceErr = scan(ctx, b, opts.Batch, true, emit)
		}
	}
	if produceErr == nil {
		produceErr = emit.flush()
	}
	close(batches)
	wg.Wait()
	if produceErr != nil && firstErr == nil {
		firstErr = produceErr
	}
	rep.A.Latency, rep.B.Latency = a.lat.summary(), b.lat.summary()
	rep.Duration = time.Since(start)
	if firstErr != nil {
		return rep, firstErr
	}
	return rep, ctx.Err()
}

// batcher groups keys into batches for the workers.
type batcher struct {
	ctx   context.Context
	size  int
	cur   []item
	out   chan<- []item
	count int64
}

func newBatcher(ctx context.Context, size int, out chan<- []item) *batcher {
	return &batcher{ctx: ctx, size: size, out: out}
}

func (b *batcher) add(key string, extra bool) error {
	b.cur = append(b.cur, item{key, extra})
	if len(b.cur) >= b.size {
		return b.flush()
	}
	return nil
}

func (b *batcher) flush() error {
	if len(b.cur) == 0 {
		return nil
	}
	select {
	case b.out <- b.cur:
		b.cur = make([]item, 0, b.size)
		return nil
	case <-b.ctx.Done():
		return b.ctx.Err()
	}
}

// maxKeyLine bounds one line of a keys file.
const maxKeyLine = 64 << 20

func readKeys(r io.Reader, b64 bool, emit *batcher) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxKeyLine)
	line := 0
	for sc.Scan() {
		line++
		k := strings.TrimSuffix(sc.Text(), "\r")
		if k == "" {
			continue
		}
		if b64 {
			raw, err := base64.StdEncoding.DecodeString(k)
			if err != nil {
				return fmt.Errorf("diff: keys: line %d: not base64: %w", line, err)
			}
			k = string(raw)
		}
		if err := emit.add(k, false); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("diff: keys: line %d: %w", line+1, err)
	}
	return nil
}

func scanDataset(db *store.DB, batch int, emit *batcher) error {
	var cursor uint64
	for {
		next, err := db.Scan(cursor, batch, func(key []byte, _ store.Value) error {
			return emit.add(string(key), false)
		})
		if err != nil {
			return fmt.Errorf("diff: dataset: %w", err)
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// scan emits every key SCAN returns on s. SCAN may return a key twice (while
// the server rehashes); such a key is compared twice.
func scan(ctx context.Context, s *side, batch int, extra bool, emit *batcher) error {
	var cursor uint64
	for {
		keys, next, err := s.c.Scan(ctx, cursor, "", int64(batch)).Result()
		if err != nil {
			return fmt.Errorf("diff: %s %s: SCAN: %w", s.name, s.addr, err)
		}
		for _, k := range keys {
			if err := emit.add(k, extra); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// sample emits up to n distinct random keys of A, then those of n random
// keys of B not already emitted.
func sample(ctx context.Context, a, b *side, n, batch int, lim *limiter, emit *batcher) error {
	seen := make(map[string]bool, 2*n)
	for _, s := range []*side{a, b} {
		// On A: n distinct keys, in a bounded number of attempts (a small
		// keyspace repeats keys). On B: n attempts, keeping the keys A's
		// sample does not have; those an A sample missed are compared too.
		found, attempts, limit := 0, 0, 10*n+100
		if s == b {
			limit = n
		}
		for found < n && attempts < limit {
			k := min(batch, n-found, limit-attempts)
			if err := lim.wait(ctx, k); err != nil {
				return err
			}
			p := s.c.Pipeline()
			cmds := make([]*redis.StringCmd, k)
			for i := range cmds {
				cmds[i] = p.RandomKey(ctx)
			}
			attempts += k
			if _, err := p.Exec(ctx); err != nil && err != redis.Nil {
				return fmt.Errorf("diff: %s %s: RANDOMKEY: %w", s.name, s.addr, err)
			}
			empty := false
			for _, c := range cmds {
				key, err := c.Result()
				if err == redis.Nil {
					empty = true
					break
				}
				if err != nil {
					return fmt.Errorf("diff: %s %s: RANDOMKEY: %w", s.name, s.addr, err)
				}
				if !seen[key] {
					seen[key] = true
					found++
					if err := emit.add(key, false); err != nil {
						return err
					}
				}
			}
			if empty {
				break
			}
		}
	}
	return nil
}
