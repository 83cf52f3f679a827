package parity

import (
	"bytes"
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
