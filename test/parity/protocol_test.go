package parity

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/redistest"
)

// protocolCases are malformed or unusual request streams. Each is sent on a
// fresh connection to both servers; everything received until the server
// closes the connection (Redis closes after a protocol error) or goes quiet
// must be identical.
var protocolCases = []struct {
	name string
	in   string
}{
	{"bad multibulk length", "*abc\r\n"},
	{"negative multibulk length", "*-5\r\n$4\r\nPING\r\n"},
	{"null multibulk then command", "*-1\r\n*1\r\n$4\r\nPING\r\n"},
	{"multibulk length over INT_MAX", "*2147483648\r\n"},
	{"huge multibulk length", "*99999999999999999999\r\n"},
	{"truncated command", "*3\r\n$3\r\nGET"},
	{"truncated bulk", "*2\r\n$3\r\nGET\r\n$10\r\nabc"},
	{"negative bulk length", "*1\r\n$-5\r\n"},
	{"bulk length -1 in request", "*1\r\n$-1\r\n"},
	{"non-numeric bulk length", "*1\r\n$abc\r\n"},
	{"huge bulk length 2^40", "*1\r\n$1099511627776\r\n"},
	{"bulk length over proto-max-bulk-len", "*1\r\n$536870913\r\n"},
	{"missing dollar", "*1\r\nPING\r\n"},
	{"bulk not ended by CRLF", "*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n"},
	{"$-5 as an inline command", "$-5\r\n"},
	{"inline command", "PING\r\n"},
	{"inline commands with LF only", "PING\nECHO hi\n"},
	{"inline with quotes", "ECHO \"a b\\x41\\n\" 'c d'\r\n"},
	{"inline unbalanced double quote", "GET \"abc\r\n"},
	{"inline unbalanced single quote", "GET 'abc\r\n"},
	{"inline closing quote not followed by space", "GET \"a\"b\r\n"},
	{"inline GET of a key", "GET ctr:1\r\nEXISTS empty\r\n"},
	{"inline unknown command", "NOSUCH a b\r\n"},
	{"empty lines", "\r\n\r\n\n*1\r\n$4\r\nPING\r\n"},
	{"spaces only", "   \r\n*1\r\n$4\r\nPING\r\n"},
	{"zero-length multibulk", "*0\r\n*1\r\n$4\r\nPING\r\n"},
	{"multibulk then inline", "*1\r\n$4\r\nPING\r\nPING\r\n"},
	{"pipelined with an error in the middle", "*1\r\n$4\r\nPING\r\n*1\r\n$x\r\n*1\r\n$4\r\nPING\r\n"},
	{"too big inline request", strings.Repeat("a", 70*1024)},
	{"inline QUIT", "QUIT\r\n"},
	{"command then protocol error", "*2\r\n$4\r\nECHO\r\n$1\r\n3\r\n*x\r\n"},
	{"NUL in inline", "PI\x00NG\r\n"},
}

func testProtocolErrors(t *testing.T, p *pair) {
	type got struct {
		b      []byte
		closed bool
		err    error
	}
	exchange := func(addr, in string) got {
		c, err := redistest.Dial(addr)
		if err != nil {
			return got{err: err}
		}
		defer c.Close()
		if err := c.Send([]byte(in)); err != nil {
			return got{err: err}
		}
		b, closed, err := c.ReadUntilClose(1500*time.Millisecond, 5*time.Second)
		return got{b, closed, err}
	}
	results := make([][2]got, len(protocolCases))
	var wg sync.WaitGroup
	for i, tc := range protocolCases {
		for j, addr := range []string{p.ref, p.tgt} {
			wg.Add(1)
			go func() { // owned by this function: joined below
				defer wg.Done()
				results[i][j] = exchange(addr, tc.in)
			}()
		}
	}
	wg.Wait()
	for i, tc := range protocolCases {
		ref, tgt := results[i][0], results[i][1]
		if ref.err != nil {
			t.Errorf("%s: reference: %v", tc.name, ref.err)
			continue
		}
		if tgt.err != nil || !bytes.Equal(ref.b, tgt.b) || ref.closed != tgt.closed {
			t.Errorf("protocol case %q: sent %s\n  redis:  %s closed=%v\n  target: %s closed=%v err=%v",
				tc.name, redistest.Escape([]byte(tc.in)), redistest.Escape(ref.b), ref.closed,
				redistest.Escape(tgt.b), tgt.closed, tgt.err)
		}
	}
	t.Logf("protocol cases compared: %d", len(protocolCases))
}

// testFragmented sends a pipeline cut into tiny writes at every possible
// boundary (inside lengths, CRLFs and binary values) to both servers: the
// replies must be the same as for the whole pipeline.
func testFragmented(t *testing.T, p *pair, seed uint64) {
	g := newGen(seed, p.m, p.writes, p.known)
	var cmds []*command
	for len(cmds) < 200 {
		c := g.next()
		if c.check == exact { // byte-comparable replies only
			cmds = append(cmds, c)
		}
	}
	var raw []byte
	for _, c := range cmds {
		raw = redistest.AppendCommand(raw, c.args...)
	}
	raw = append(raw, "PING\r\nECHO \"in\\x00line\"\r\n"...) // and two inline commands
	run := func(addr string) ([][]byte, error) {
		c, err := redistest.Dial(addr)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		r := rand.New(rand.NewPCG(seed, 1))
		for off := 0; off < len(raw); {
			n := min(1+r.IntN(7), len(raw)-off)
			if err := c.Send(raw[off : off+n]); err != nil {
				return nil, err
			}
			off += n
			if r.IntN(8) == 0 {
				time.Sleep(50 * time.Microsecond) // let the server read a fragment
			}
		}
		var out [][]byte
		for range len(cmds) + 2 {
			b, err := c.ReadReply()
			if err != nil {
				return out, err
			}
			out = append(out, b)
		}
		return out, nil
	}
	ref, err := run(p.ref)
	if err != nil {
		t.Fatalf("reference: %v", err)
	}
	tgt, err := run(p.tgt)
	if err != nil {
		t.Errorf("target: %v after %d replies", err, len(tgt))
	}
	for i := range min(len(ref), len(tgt)) {
		if !bytes.Equal(ref[i], tgt[i]) {
			name := "inline"
			if i < len(cmds) {
				name = showArgs(cmds[i].args)
			}
			t.Errorf("fragmented pipeline, reply %d (%s):\n  redis:  %s\n  target: %s", i, name,
				redistest.Escape(ref[i]), redistest.Escape(tgt[i]))
			return
		}
	}
	t.Logf("fragmented pipeline: %d bytes in 1-7 byte writes, %d replies compared", len(raw), len(ref))
}
