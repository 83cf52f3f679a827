package diff

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// side is a connection pool to one server.
type side struct {
	name, addr string
	c          *redis.Client
	lat        latency
}

func dial(ctx context.Context, name string, e Endpoint, opts Options) (*side, error) {
	c := redis.NewClient(&redis.Options{
		Addr:     e.Addr,
		Username: e.Username,
		Password: e.Password,
		// RESP2 and no client-side features: the tool must work against
		// any server that speaks RESP, and a comparison must never be
		// repeated behind our back.
		Protocol:        2,
		MaxRetries:      -1,
		DisableIdentity: true,
		DialTimeout:     opts.Timeout,
		DialerRetries:   1,
		ReadTimeout:     opts.Timeout,
		WriteTimeout:    opts.Timeout,
		PoolSize:        opts.Concurrency + 2,
		TLSConfig:       e.TLS,
	})
	s := &side{name: name, addr: e.Addr, c: c}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("diff: %s %s: cannot connect: %w", name, e.Addr, err)
	}
	return s, nil
}

func (s *side) close() { s.c.Close() }

// pipeline runs the commands queue adds as one round trip and records its
// latency. Per-command errors (a server's error reply, redis.Nil) stay in
// the commands; an error of the connection itself is returned.
func (s *side) pipeline(ctx context.Context, queue func(p redis.Pipeliner)) error {
	p := s.c.Pipeline()
	queue(p)
	if p.Len() == 0 {
		return nil
	}
	start := time.Now()
	_, err := p.Exec(ctx)
	s.lat.add(time.Since(start))
	// Exec returns the first failed command's error. A server's error reply
	// belongs to that command; anything else (a refused connection, a
	// timeout) failed every command of the pipeline and ends the run: the
	// tool never retries.
	if err == nil || errors.Is(err, redis.Nil) || isRedisError(err) {
		return nil
	}
	return fmt.Errorf("diff: %s %s: %w", s.name, s.addr, err)
}

func isRedisError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

// compareBatch compares one batch: TYPE of every key on both sides, then
// the reads that fit the types, then the values.
func compareBatch(ctx context.Context, a, b *side, batch []item, rep *Report) error {
	types := [2][]*redis.StatusCmd{make([]*redis.StatusCmd, len(batch)), make([]*redis.StatusCmd, len(batch))}
	if err := both(ctx, a, b, func(i int, p redis.Pipeliner) {
		for j, it := range batch {
			types[i][j] = p.Type(ctx, it.key)
		}
	}); err != nil {
		return err
	}

	reads := [2][]redis.Cmder{make([]redis.Cmder, len(batch)), make([]redis.Cmder, len(batch))}
	typ := [2][]string{make([]string, len(batch)), make([]string, len(batch))}
	pending := make([]bool, len(batch))
	for j, it := range batch {
		ta, errA := types[0][j].Result()
		tb, errB := types[1][j].Result()
		typ[0][j], typ[1][j] = ta, tb
		switch {
		case errA != nil || errB != nil:
			rep.record(errorDiff(it.key, errA, errB))
		case it.extra:
			// Found by scanning B: A's scan compared it if A has it; if
			// not, B's value is read to describe it.
			pending[j] = ta == "none" && tb != "none"
		case ta == "none" && tb == "none":
			rep.same(true)
		case ta != tb:
			pending[j] = true // read both to describe them
		case !supported(ta):
			rep.record(Difference{Kind: KindUnsupported, Key: quote(it.key), A: "type " + ta, B: "type " + tb})
		default:
			pending[j] = true
		}
	}
	if err := both(ctx, a, b, func(i int, p redis.Pipeliner) {
		for j, it := range batch {
			if pending[j] {
				reads[i][j] = queueFetch(ctx, p, it.key, typ[i][j])
			}
		}
	}); err != nil {
		return err
	}

	for j, it := range batch {
		if !pending[j] {
			continue
		}
		var vals [2]value
		var errs [2]error
		for i := range 2 {
			if reads[i][j] == nil { // none or an unsupported type
				vals[i] = value{typ: typ[i][j]}
				continue
			}
			vals[i], errs[i] = fetched(typ[i][j], reads[i][j])
		}
		va, vb := vals[0], vals[1]
		k := quote(it.key)
		switch {
		case errs[0] != nil || errs[1] != nil:
			rep.record(errorDiff(it.key, errs[0], errs[1]))
		case va.typ == "none" && vb.typ == "none":
			rep.same(true)
		case va.typ == "none":
			rep.record(Difference{Kind: KindMissingA, Key: k, A: describe(va, nil), B: describe(vb, nil)})
		case vb.typ == "none":
			rep.record(Difference{Kind: KindMissingB, Key: k, A: describe(va, nil), B: describe(vb, nil)})
		case va.typ != vb.typ:
			rep.record(Difference{Kind: KindType, Key: k, A: describe(va, nil), B: describe(vb, nil)})
		case equal(va, vb):
			rep.same(false)
		default:
			rep.record(Difference{Kind: KindMismatch, Key: k, A: describe(va, &vb), B: describe(vb, &va)})
		}
	}
	return nil
}

func errorDiff(key string, errA, errB error) Difference {
	d := Difference{Kind: KindError, Key: quote(key), A: "ok", B: "ok"}
	if errA != nil {
		d.A = describeErr(errA)
	}
	if errB != nil {
		d.B = describeErr(errB)
	}
	return d
}

// both runs one pipeline on each side at the same time (queue is called
// with 0 for A and 1 for B).
func both(ctx context.Context, a, b *side, queue func(i int, p redis.Pipeliner)) error {
	errc := make(chan error, 1)
	go func() {
		errc <- b.pipeline(ctx, func(p redis.Pipeliner) { queue(1, p) })
	}()
	errA := a.pipeline(ctx, func(p redis.Pipeliner) { queue(0, p) })
	errB := <-errc
	return errors.Join(errA, errB)
}
