package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"
)

// Commands and key distributions of the matrix.
const (
	CmdGET      = "GET"
	CmdHGETALL  = "HGETALL"
	DistUniform = "uniform"
	DistZipfian = "zipfian"
)

// ZipfS is the exponent of the zipfian key choice (rank 0 most popular).
const ZipfS = 1.1

// KeyLen is the length of every generated key (64 hex characters).
const KeyLen = 64

// Cell is one point of the matrix.
type Cell struct {
	Command  string
	Conns    int
	Pipeline int
	Dist     string
}

func (c Cell) String() string {
	return fmt.Sprintf("%s c=%d P=%d %s", c.Command, c.Conns, c.Pipeline, c.Dist)
}

// loadResult is what one run of one cell against one server measured.
type loadResult struct {
	ops     uint64 // replies received
	errs    uint64 // error replies
	misses  uint64 // nil / empty replies (the key should exist)
	elapsed time.Duration
	hist    Hist // latency of each pipelined batch (P requests)
}

// runLoad drives addr with cell.Conns connections, each sending
// cell.Pipeline requests for keys drawn from keys and reading as many replies,
// until dur passes, maxReqs requests were sent in total, or ctx ends.
func runLoad(ctx context.Context, addr string, keys [][KeyLen]byte, cell Cell, dur time.Duration, maxReqs uint64, seed uint64) (*loadResult, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("bench: %s: no keys to ask for", cell.Command)
	}
	conns := make([]net.Conn, cell.Conns)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return nil, fmt.Errorf("bench: dial %s: %w", addr, err)
		}
		conns[i] = c
	}
	perConn := max(maxReqs/uint64(cell.Conns), uint64(cell.Pipeline))
	results := make([]loadResult, cell.Conns)
	errs := make([]error, cell.Conns)
	start := time.Now()
	end := start.Add(dur)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() { // owned by runLoad: it waits below
			defer wg.Done()
			errs[i] = connLoop(ctx, c, keys, cell, end, perConn, seed+uint64(i), &results[i])
		}()
	}
	wg.Wait()
	total := &loadResult{elapsed: time.Since(start)}
	for i := range results {
		total.ops += results[i].ops
		total.errs += results[i].errs
		total.misses += results[i].misses
		total.hist.Merge(&results[i].hist)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return total, nil
}

// connLoop is one connection's request/response loop. It allocates only its
// buffers, before the loop.
func connLoop(ctx context.Context, c net.Conn, keys [][KeyLen]byte, cell Cell, end time.Time, maxReqs uint64, seed uint64, res *loadResult) error {
	// Every read and write is bounded: a server that stops answering fails
	// the cell instead of hanging the run.
	if err := c.SetDeadline(end.Add(30 * time.Second)); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 0x62617463686b76))
	var zipf *rand.Zipf
	if cell.Dist == DistZipfian {
		zipf = rand.NewZipf(rng, ZipfS, 1, uint64(len(keys)-1))
	}
	// The request buffer is P copies of one command; only the keys change.
	head := "*2\r\n$" + strconv.Itoa(len(cell.Command)) + "\r\n" + cell.Command + "\r\n$" + strconv.Itoa(KeyLen) + "\r\n"
	one := len(head) + KeyLen + 2
	req := make([]byte, 0, one*cell.Pipeline)
	offs := make([]int, cell.Pipeline)
	for i := range cell.Pipeline {
		req = append(req, head...)
		offs[i] = len(req)
		req = append(req, make([]byte, KeyLen)...)
		req = append(req, "\r\n"...)
	}
	r := bufio.NewReaderSize(c, 64<<10)
	n := uint64(len(keys))
	for res.ops+uint64(cell.Pipeline) <= maxReqs {
		if ctx.Err() != nil {
			return nil // interrupted: what was measured stands
		}
		for _, off := range offs {
			var k uint64
			if zipf != nil {
				k = zipf.Uint64()
			} else {
				k = rng.Uint64N(n)
			}
			copy(req[off:off+KeyLen], keys[k][:])
		}
		t0 := time.Now()
		if _, err := c.Write(req); err != nil {
			return fmt.Errorf("bench: %s: write: %w", cell, err)
		}
		for range cell.Pipeline {
			kind, size, err := skipReply(r, 0)
			if err != nil {
				return fmt.Errorf("bench: %s: read reply: %w", cell, err)
			}
			switch {
			case kind == '-':
				res.errs++
			case size <= 0: // nil bulk, empty array: the key was not found
				res.misses++
			}
		}
		t1 := time.Now()
		res.hist.Record(t1.Sub(t0))
		res.ops += uint64(cell.Pipeline)
		if !t1.Before(end) {
			return nil
		}
	}
	return nil
}

// skipReply reads one RESP2 reply from r without keeping it and returns its
// type byte and, for bulk strings and arrays, its length.
func skipReply(r *bufio.Reader, depth int) (kind byte, size int, err error) {
	if depth > 8 {
		return 0, 0, errors.New("reply nested too deep")
	}
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, 0, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return 0, 0, fmt.Errorf("malformed reply line %q", line)
	}
	kind, body := line[0], line[1:len(line)-2]
	switch kind {
	case '+', '-', ':':
		return kind, 1, nil
	case '$', '*':
		size, err = atoi(body)
		if err != nil {
			return 0, 0, err
		}
		if kind == '$' {
			if size >= 0 {
				if _, err := r.Discard(size + 2); err != nil {
					return 0, 0, err
				}
			}
			return kind, size, nil
		}
		for range size {
			if _, _, err := skipReply(r, depth+1); err != nil {
				return 0, 0, err
			}
		}
		return kind, size, nil
	}
	return 0, 0, fmt.Errorf("unexpected reply type %q", kind)
}

// atoi parses a RESP length without allocating.
func atoi(b []byte) (int, error) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, fmt.Errorf("bad length %q", b)
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad length %q", b)
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		return -n, nil
	}
	return n, nil
}
