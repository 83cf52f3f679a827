// Package redistest runs real servers for tests — redis-server as the
// reference and batchkv-server as the system under test — and talks to them
// with a raw RESP client that returns every reply's exact bytes, so that tests
// can compare the two byte for byte.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strconv"
	"time"
)

// DefaultTimeout bounds every read and write of a Conn unless changed with
// SetTimeout.
const DefaultTimeout = 10 * time.Second

// maxBulk bounds the length a reply may announce; a larger one is a broken
// stream, not something to allocate.
const maxBulk = 1 << 30

// maxDepth bounds nesting so a corrupt stream cannot recurse without end.
const maxDepth = 64

// ErrProtocol reports bytes that are not a RESP reply.
var ErrProtocol = errors.New("redistest: protocol error")

// Conn is a raw RESP connection. It is not safe for concurrent use.
type Conn struct {
	nc      net.Conn
	r       *bufio.Reader
	timeout time.Duration
	raw     []byte // the reply being read
}

// Dial connects to addr (host:port) within DefaultTimeout.
func Dial(addr string) (*Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, DefaultTimeout)
	if err != nil {
		return nil, fmt.Errorf("redistest: dial %s: %w", addr, err)
	}
	return &Conn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10), timeout: DefaultTimeout}, nil
}

// SetTimeout sets the deadline applied to each later Send and ReadReply.
func (c *Conn) SetTimeout(d time.Duration) { c.timeout = d }

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Send writes raw bytes as they are.
func (c *Conn) Send(raw []byte) error {
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return err
	}
	if _, err := c.nc.Write(raw); err != nil {
		return fmt.Errorf("redistest: send: %w", err)
	}
	return nil
}

// ReadReply reads exactly one complete reply (an attribute is returned
// together with the reply it annotates) and returns its raw bytes. The slice
// is the caller's.
func (c *Conn) ReadReply() ([]byte, error) {
	if err := c.nc.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return nil, err
	}
	c.raw = c.raw[:0]
	if err := c.readValue(0); err != nil {
		if len(c.raw) > 0 && errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return bytes.Clone(c.raw), nil
}

// Do sends one command as a RESP array of bulk strings and reads its reply.
func (c *Conn) Do(args ...[]byte) ([]byte, error) {
	if err := c.Send(AppendCommand(nil, args...)); err != nil {
		return nil, err
	}
	return c.ReadReply()
}

// DoString is Do with string arguments.
func (c *Conn) DoString(args ...string) ([]byte, error) {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	return c.Do(b...)
}

// ReadUntilClose reads everything the server sends until it closes the
// connection or sends nothing for idle. closed reports whether it closed.
func (c *Conn) ReadUntilClose(idle, total time.Duration) (got []byte, closed bool, err error) {
	end := time.Now().Add(total)
	buf := make([]byte, 32<<10)
	for {
		dl := time.Now().Add(idle)
		if dl.After(end) {
			dl = end
		}
		if err := c.nc.SetReadDeadline(dl); err != nil {
			return got, false, err
		}
		n, err := c.r.Read(buf)
		got = append(got, buf[:n]...)
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
			return got, true, nil
		case isTimeout(err):
			return got, false, nil
		default:
			// A reset after the server closed with unread input is a close.
			return got, true, nil
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// AppendCommand appends args encoded as a RESP array of bulk strings.
func AppendCommand(dst []byte, args ...[]byte) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, '\r', '\n')
	for _, a := range args {
		dst = append(dst, '$')
		dst = strconv.AppendInt(dst, int64(len(a)), 10)
		dst = append(dst, '\r', '\n')
		dst = append(dst, a...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// line reads one \r\n-terminated line into c.raw and returns it without the
// terminator (aliasing c.raw).
func (c *Conn) line() ([]byte, error) {
	start := len(c.raw)
	for {
		b, err := c.r.ReadSlice('\n')
		c.raw = append(c.raw, b...)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
		if len(c.raw)-start > maxBulk {
			return nil, fmt.Errorf("%w: line too long", ErrProtocol)
		}
	}
	l := c.raw[start:]
	if len(l) < 2 || l[len(l)-2] != '\r' {
		return nil, fmt.Errorf("%w: line %q not ended by CRLF", ErrProtocol, l)
	}
	return l[:len(l)-2], nil
}

func (c *Conn) readN(n int) error {
	start := len(c.raw)
	c.raw = append(c.raw, make([]byte, n)...)
	_, err := io.ReadFull(c.r, c.raw[start:])
	return err
}

func parseLen(b []byte) (int, error) {
	n, err := strconv.Atoi(string(b))
	if err != nil || n < -1 || n > maxBulk {
		return 0, fmt.Errorf("%w: bad length %q", ErrProtocol, b)
	}
	return n, nil
}

func (c *Conn) readValue(depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nesting deeper than %d", ErrProtocol, maxDepth)
	}
	l, err := c.line()
	if err != nil {
		return err
	}
	if len(l) == 0 {
		return fmt.Errorf("%w: empty line", ErrProtocol)
	}
	t, rest := l[0], string(l[1:])
	switch t {
	case '+', '-':
		return nil
	case ':':
		if _, err := strconv.ParseInt(rest, 10, 64); err != nil {
			return fmt.Errorf("%w: integer %q", ErrProtocol, rest)
		}
		return nil
	case '(':
		if _, ok := new(big.Int).SetString(rest, 10); !ok {
			return fmt.Errorf("%w: big number %q", ErrProtocol, rest)
		}
		return nil
	case ',':
		if rest == "" {
			return fmt.Errorf("%w: empty double", ErrProtocol)
		}
		return nil
	case '#':
		if rest != "t" && rest != "f" {
			return fmt.Errorf("%w: boolean %q", ErrProtocol, rest)
		}
		return nil
	case '_':
		if rest != "" {
			return fmt.Errorf("%w: null %q", ErrProtocol, rest)
		}
		return nil
	case '$', '!', '=':
		if t == '$' && rest == "?" {
			return c.readStreamedString()
		}
		n, err := parseLen(l[1:])
		if err != nil || n < 0 {
			return err // $-1 is the RESP2 null
		}
		if err := c.readN(n + 2); err != nil {
			return err
		}
		if c.raw[len(c.raw)-2] != '\r' || c.raw[len(c.raw)-1] != '\n' {
			return fmt.Errorf("%w: bulk not ended by CRLF", ErrProtocol)
		}
		return nil
	case '*', '~', '>', '%', '|':
		if rest == "?" {
			return c.readStreamedAggregate(depth)
		}
		n, err := parseLen(l[1:])
		if err != nil {
			return err
		}
		if t == '%' || t == '|' {
			n *= 2
		}
		for i := 0; i < n; i++ {
			if err := c.readValue(depth + 1); err != nil {
				return err
			}
		}
		if t == '|' { // an attribute annotates the reply that follows it
			return c.readValue(depth + 1)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown type byte %q", ErrProtocol, t)
}

// readStreamedString reads the chunks of a RESP3 streamed string ($?).
func (c *Conn) readStreamedString() error {
	for {
		l, err := c.line()
		if err != nil {
			return err
		}
		if len(l) < 2 || l[0] != ';' {
			return fmt.Errorf("%w: bad chunk %q", ErrProtocol, l)
		}
		n, err := parseLen(l[1:])
		if err != nil || n < 0 {
			return fmt.Errorf("%w: bad chunk %q", ErrProtocol, l)
		}
		if n == 0 {
			return nil
		}
		if err := c.readN(n + 2); err != nil {
			return err
		}
	}
}

// readStreamedAggregate reads elements of a RESP3 streamed aggregate up to
// its terminating ".".
func (c *Conn) readStreamedAggregate(depth int) error {
	for i := 0; i < maxBulk; i++ {
		b, err := c.r.Peek(3)
		if err != nil {
			return err
		}
		if string(b) == ".\r\n" {
			_, err := c.line()
			return err
		}
		if err := c.readValue(depth + 1); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w: endless streamed aggregate", ErrProtocol)
}
