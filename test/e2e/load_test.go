package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// kind is what a load client sends, one batch at a time.
type kind int

const (
	kindGet      kind = iota // one GET
	kindHGetAll              // one HGETALL
	kindPipeline             // a pipeline of pipelineLen GETs and HGETALLs
	kindMulti                // MULTI, multiLen GETs, HGETALLs and HGETs, EXEC
	kindScan                 // one SCAN call of a full iteration, over and over
	nKinds
)

func (k kind) String() string {
	return [...]string{"get", "hgetall", "pipeline", "multi", "scan"}[k]
}

const (
	pipelineLen = 50
	multiLen    = 10
	// maxSamples bounds each client's memory: past it, batches are still
	// checked but no longer recorded (the analysis then sees fewer).
	maxSamples = 400_000
	maxErrors  = 10 // error texts kept per client (all are counted)
)

// sample is one batch: when it was sent and answered (since the load's
// start), and the versions every one of its replies is valid for.
type sample struct {
	start, end time.Duration
	m          mask
}

// loadClient is one go-redis client of exactly one connection, owned by one
// goroutine while the load runs.
type loadClient struct {
	n    int
	kind kind
	c    *redis.Client
	rng  *rand.Rand

	idBefore, idAfter int64
	batches           int64
	errs              int64
	errTexts          []string
	inconsistent      int64 // batches no single version explains
	badTexts          []string
	samples           []sample

	// SCAN state: the cursor of the iteration under way and the keys it
	// returned so far; scans counts the full iterations.
	cursor uint64
	seen   map[string]bool
	scans  int64
}

func newLoadClient(n int, k kind, addr string) *loadClient {
	// Half the clients speak RESP2, half RESP3 (go-redis's default: HELLO
	// 3), so that both reply encodings cross the swaps.
	proto := 3
	if n%2 == 1 {
		proto = 2
	}
	return &loadClient{
		n:    n,
		kind: k,
		rng:  rand.New(rand.NewPCG(uint64(n), 42)),
		c: redis.NewClient(&redis.Options{
			Addr:     addr,
			Protocol: proto,
			// One connection that lives for the whole test: its CLIENT ID
			// is compared before and after.
			PoolSize:         1,
			MinIdleConns:     1,
			PipelinePoolSize: -1, // pipelines on that same connection, not a pool of their own
			// No retry: an error must surface, not be hidden by a retry on
			// a new connection.
			MaxRetries:   -1,
			DialTimeout:  5 * time.Second,
			ReadTimeout:  10 * time.Second,
			WriteTimeout: 10 * time.Second,
			PoolTimeout:  10 * time.Second,
		}),
	}
}

func (lc *loadClient) fail(format string, args ...any) {
	lc.errs++
	if len(lc.errTexts) < maxErrors {
		lc.errTexts = append(lc.errTexts, fmt.Sprintf(format, args...))
	}
}

// run sends batches until stop is closed or hardStop passes. Commands run
// on context.Background: cancelling a command would close the connection,
// which is exactly what the test checks never happens.
func (lc *loadClient) run(u *universe, t0 time.Time, stop <-chan struct{}, hardStop time.Time) {
	ctx := context.Background()
	for {
		select {
		case <-stop:
			return
		default:
		}
		start := time.Now()
		if start.After(hardStop) {
			return
		}
		var m mask
		var detail []string
		var err error
		switch lc.kind {
		case kindGet:
			m, detail, err = lc.get(ctx, u)
		case kindHGetAll:
			m, detail, err = lc.hgetall(ctx, u)
		case kindPipeline:
			m, detail, err = lc.pipeline(ctx, u, false)
		case kindMulti:
			m, detail, err = lc.pipeline(ctx, u, true)
		case kindScan:
			m, detail, err = lc.scan(ctx, u)
		}
		end := time.Now()
		lc.batches++
		if err != nil {
			lc.fail("%s batch at +%v: %v", lc.kind, start.Sub(t0), err)
			continue
		}
		if m == 0 {
			lc.inconsistent++
			if len(lc.badTexts) < maxErrors {
				lc.badTexts = append(lc.badTexts, fmt.Sprintf("%s batch at +%v: %s", lc.kind, start.Sub(t0), strings.Join(detail, "; ")))
			}
		}
		if len(lc.samples) < maxSamples {
			lc.samples = append(lc.samples, sample{start: start.Sub(t0), end: end.Sub(t0), m: m})
		}
	}
}

func (lc *loadClient) randString(u *universe) *key { return u.strings[lc.rng.IntN(len(u.strings))] }
func (lc *loadClient) randHash(u *universe) *key   { return u.hashes[lc.rng.IntN(len(u.hashes))] }

func (lc *loadClient) get(ctx context.Context, u *universe) (mask, []string, error) {
	k := lc.randString(u)
	val, err := lc.c.Get(ctx, k.name).Result()
	isNil := errors.Is(err, redis.Nil)
	if err != nil && !isNil {
		return 0, nil, fmt.Errorf("GET %s: %w", k.name, err)
	}
	m := k.matchString(val, isNil)
	return m, []string{fmt.Sprintf("GET %s = %q nil=%v: %v", k.name, val, isNil, m)}, nil
}

func (lc *loadClient) hgetall(ctx context.Context, u *universe) (mask, []string, error) {
	k := lc.randHash(u)
	got, err := lc.c.HGetAll(ctx, k.name).Result()
	if err != nil {
		return 0, nil, fmt.Errorf("HGETALL %s: %w", k.name, err)
	}
	m := k.matchHash(got)
	return m, []string{fmt.Sprintf("HGETALL %s = %v: %v", k.name, got, m)}, nil
}

// scan sends one SCAN call of the iteration under way. The keys of one call
// come from one version, so they must all be present in it: the call fits
// the versions holding every key returned. When the iteration ends, every
// key present in all versions (so throughout the iteration) must have been
// returned: the SPEC's promise that a cursor survives a swap.
func (lc *loadClient) scan(ctx context.Context, u *universe) (mask, []string, error) {
	if lc.seen == nil {
		lc.seen = map[string]bool{}
	}
	keys, next, err := lc.c.Scan(ctx, lc.cursor, "", 100).Result()
	if err != nil {
		return 0, nil, fmt.Errorf("SCAN %d: %w", lc.cursor, err)
	}
	m := allVersions
	var detail []string
	for _, name := range keys {
		k := u.byName[name]
		if k == nil {
			return 0, nil, fmt.Errorf("SCAN %d returned %q, a key of no version", lc.cursor, name)
		}
		if m&k.present == 0 && len(detail) < 5 {
			detail = append(detail, fmt.Sprintf("%s in %v", name, k.present))
		}
		m &= k.present
		lc.seen[name] = true
	}
	if m == 0 {
		detail = append(detail, fmt.Sprintf("SCAN %d: %d keys", lc.cursor, len(keys)))
	}
	lc.cursor = next
	if next == 0 {
		lc.scans++
		missing := 0
		var example string
		for _, k := range append(slices.Clone(u.strings), u.hashes...) {
			if k.present == allVersions && !lc.seen[k.name] {
				missing++
				example = k.name
			}
		}
		clear(lc.seen)
		if missing > 0 {
			return 0, nil, fmt.Errorf("SCAN iteration %d missed %d keys present in every version (e.g. %s)", lc.scans, missing, example)
		}
	}
	return m, detail, nil
}

// pipeline sends one pipeline (or MULTI block) of mixed reads and returns
// the versions that explain all of its replies.
func (lc *loadClient) pipeline(ctx context.Context, u *universe, multi bool) (mask, []string, error) {
	n := pipelineLen
	var p redis.Pipeliner
	if multi {
		n = multiLen
		p = lc.c.TxPipeline()
	} else {
		p = lc.c.Pipeline()
	}
	type check func() (mask, string, error)
	checks := make([]check, 0, n)
	for range n {
		switch r := lc.rng.IntN(10); {
		case r < 6:
			k := lc.randString(u)
			cmd := p.Get(ctx, k.name)
			checks = append(checks, func() (mask, string, error) {
				val, err := cmd.Result()
				isNil := errors.Is(err, redis.Nil)
				if err != nil && !isNil {
					return 0, "", fmt.Errorf("GET %s: %w", k.name, err)
				}
				m := k.matchString(val, isNil)
				return m, fmt.Sprintf("GET %s=%q:%v", k.name, val, m), nil
			})
		case r < 9 || !multi:
			k := lc.randHash(u)
			cmd := p.HGetAll(ctx, k.name)
			checks = append(checks, func() (mask, string, error) {
				got, err := cmd.Result()
				if err != nil {
					return 0, "", fmt.Errorf("HGETALL %s: %w", k.name, err)
				}
				m := k.matchHash(got)
				return m, fmt.Sprintf("HGETALL %s:%v", k.name, m), nil
			})
		default:
			k := lc.randHash(u)
			cmd := p.HGet(ctx, k.name, "ver")
			checks = append(checks, func() (mask, string, error) {
				val, err := cmd.Result()
				isNil := errors.Is(err, redis.Nil)
				if err != nil && !isNil {
					return 0, "", fmt.Errorf("HGET %s ver: %w", k.name, err)
				}
				var m mask
				for v := range nVersions {
					present := k.present&(1<<v) != 0
					if (!present && isNil) || (present && !isNil && val == k.fields[v]["ver"]) {
						m |= 1 << v
					}
				}
				return m, fmt.Sprintf("HGET %s ver=%q:%v", k.name, val, m), nil
			})
		}
	}
	// Exec's error is the first failed command's, and a GET of a missing key
	// "fails" with redis.Nil: the per-command checks below tell them apart.
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, nil, fmt.Errorf("%s of %d: %w", lc.kind, n, err)
	}
	m := allVersions
	detail := make([]string, 0, n)
	for _, c := range checks {
		cm, d, err := c()
		if err != nil {
			return 0, nil, err
		}
		m &= cm
		detail = append(detail, d)
	}
	return m, detail, nil
}

// load is the set of clients, started together and stopped together.
type load struct {
	clients []*loadClient
	t0      time.Time
	stop    chan struct{}
	wg      sync.WaitGroup
	stopped sync.Once
}

// startLoad connects n clients (kinds in turn), records their CLIENT IDs
// and starts their goroutines; they run until stopLoad or hardStop.
func startLoad(addr string, n int, u *universe, hardStop time.Time) (*load, error) {
	l := &load{stop: make(chan struct{})}
	for i := range n {
		lc := newLoadClient(i, kind(i%int(nKinds)), addr)
		l.clients = append(l.clients, lc)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		id, err := lc.c.ClientID(ctx).Result()
		cancel()
		if err != nil {
			l.close()
			return nil, fmt.Errorf("client %d: CLIENT ID: %w", i, err)
		}
		lc.idBefore = id
	}
	l.t0 = time.Now()
	for _, lc := range l.clients {
		l.wg.Go(func() { lc.run(u, l.t0, l.stop, hardStop) })
	}
	return l, nil
}

// stopLoad stops the clients, waits for them, and reads every connection's
// CLIENT ID again. Only the first call does anything, so a test both defers
// it (clients stop before the servers do on a t.Fatal) and calls it.
func (l *load) stopLoad() {
	l.stopped.Do(func() {
		close(l.stop)
		l.wg.Wait()
		for _, lc := range l.clients {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			id, err := lc.c.ClientID(ctx).Result()
			cancel()
			if err != nil {
				lc.fail("CLIENT ID after the load: %v", err)
				continue
			}
			lc.idAfter = id
		}
	})
}

func (l *load) close() {
	for _, lc := range l.clients {
		lc.c.Close()
	}
}

// analysis is what the samples of all clients say about the swaps.
type analysis struct {
	// firstSeen[q] is the earliest reply (end time since t0) attributed to
	// exactly phase q's version on a connection that had moved past the
	// previous phases; -1 when never seen.
	firstSeen []time.Duration
	// violations are batches that contradict the swap order.
	violations []string
	nViolation int
	// saw[i] is the versions client i got a batch attributed to exactly.
	saw []mask
}

func (a *analysis) violate(format string, args ...any) {
	a.nViolation++
	if len(a.violations) < 20 {
		a.violations = append(a.violations, fmt.Sprintf(format, args...))
	}
}

// analyze checks the order of versions each connection saw, and across
// connections.
//
// Per connection: batches are sequential and each one reads one version
// taken when it starts, so the versions one connection sees follow the
// swap order v1, v2, v3, v2 (some possibly skipped, never one going back).
// A batch whose replies fit several versions (a nil fits every version
// lacking the key) is only required to fit some phase not yet passed.
//
// Across connections: once any client got a reply from phase q's version,
// the swap had happened, so every batch sent after that reply must fit a
// phase >= q.
//
// phases is the order in which versions go live (indexes of versions).
func analyze(clients []*loadClient, phases []int) *analysis {
	a := &analysis{firstSeen: make([]time.Duration, len(phases)), saw: make([]mask, len(clients))}
	for q := range a.firstSeen {
		a.firstSeen[q] = -1
	}
	for i, lc := range clients {
		p := 0
		for _, s := range lc.samples {
			if s.m == 0 {
				continue // counted as inconsistent already
			}
			if _, ok := s.m.single(); ok {
				a.saw[i] |= s.m
			}
			if s.m&(1<<phases[p]) != 0 {
				continue
			}
			q := p + 1
			for q < len(phases) && s.m&(1<<phases[q]) == 0 {
				q++
			}
			if q == len(phases) {
				a.violate("client %d (%s): batch at +%v fits %v, but the connection already saw phase %d (v%d)",
					lc.n, lc.kind, s.start, s.m, p, phases[p]+1)
				continue
			}
			p = q
			if _, ok := s.m.single(); ok && (a.firstSeen[q] < 0 || s.end < a.firstSeen[q]) {
				a.firstSeen[q] = s.end
			}
		}
	}
	for _, lc := range clients {
		for _, s := range lc.samples {
			if s.m == 0 {
				continue
			}
			minPhase := 0
			for q := range phases {
				if a.firstSeen[q] >= 0 && a.firstSeen[q] < s.start {
					minPhase = q
				}
			}
			fits := false
			for q := minPhase; q < len(phases); q++ {
				fits = fits || s.m&(1<<phases[q]) != 0
			}
			if !fits {
				a.violate("client %d (%s): batch sent at +%v fits %v, but phase %d (v%d) was already seen at +%v",
					lc.n, lc.kind, s.start, s.m, minPhase, phases[minPhase]+1, a.firstSeen[minPhase])
			}
		}
	}
	return a
}

// latencies returns the p50, p99 and max batch latency of the samples, per
// kind, that start inside (in) or outside (!in) the windows.
func latencies(clients []*loadClient, windows [][2]time.Duration, in bool, skipBefore time.Duration) map[kind][3]time.Duration {
	by := map[kind][]time.Duration{}
	for _, lc := range clients {
		for _, s := range lc.samples {
			if s.start < skipBefore {
				continue
			}
			inside := false
			for _, w := range windows {
				inside = inside || (s.start >= w[0] && s.start < w[1])
			}
			if inside == in {
				by[lc.kind] = append(by[lc.kind], s.end-s.start)
			}
		}
	}
	out := map[kind][3]time.Duration{}
	for k, ds := range by {
		slices.Sort(ds)
		out[k] = [3]time.Duration{ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)], ds[len(ds)-1]}
	}
	return out
}
