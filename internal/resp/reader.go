package resp

import (
	"bytes"
	"errors"
	"io"
	"math"
)

// Limits and sizes as redis-server 7.0 has them.
const (
	// DefaultMaxBulkLen is proto-max-bulk-len's default: 512 MiB.
	DefaultMaxBulkLen = 512 << 20
	// DefaultQueryBufferLimit is client-query-buffer-limit's default: 1 GiB.
	DefaultQueryBufferLimit = 1 << 30
	// InlineMaxSize is PROTO_INLINE_MAX_SIZE: the longest inline request, and
	// the longest multibulk or bulk count line, Redis waits for.
	InlineMaxSize = 64 << 10

	// ioBufLen is PROTO_IOBUF_LEN, the initial buffer and the read size.
	ioBufLen = 16 << 10
	// keepBufCap is the largest buffer kept once the command that needed it
	// is done; a larger one is dropped (as redcon drops writer buffers over
	// maxBufferCap) so one huge command does not pin memory for the
	// connection's lifetime.
	keepBufCap = 1 << 20
	// argCost is what one parsed argument costs beside its bytes, counted
	// against the query buffer limit so many tiny arguments cannot amplify
	// memory.
	argCost = 16
	// unauthMaxArgs and unauthMaxBulk are the limits Redis applies before a
	// client authenticates.
	unauthMaxArgs = 10
	unauthMaxBulk = 16384
)

// ProtocolError is a malformed request. Redis answers "-ERR " + Error() and
// closes the connection.
type ProtocolError struct{ msg string }

func (e *ProtocolError) Error() string { return "Protocol error: " + e.msg }

func protoErr(msg string) error { return &ProtocolError{msg: msg} }

// ErrQueryBufferLimit is returned by Fill when a single pending request holds
// more than Reader.QueryBufferLimit bytes. Redis closes such a client without
// a reply (and logs it); so does the server.
var ErrQueryBufferLimit = errors.New("resp: client query buffer limit reached")

// Reader reads Redis requests from a stream. It keeps one buffer and parses
// complete commands into argument slices that alias it.
//
// Use: Fill (one read), then Next until it reports no complete command; the
// arguments of every command Next returned stay valid until the next Fill.
type Reader struct {
	rd io.Reader

	// MaxBulkLen is proto-max-bulk-len (0: DefaultMaxBulkLen).
	MaxBulkLen int64
	// QueryBufferLimit is client-query-buffer-limit (0:
	// DefaultQueryBufferLimit).
	QueryBufferLimit int64
	// Unauthenticated applies Redis's limits for clients that must still
	// authenticate: at most 10 arguments and 16 KiB per argument.
	Unauthenticated bool

	buf   []byte
	start int // start of the multibulk command being parsed
	pos   int // parse position
	end   int // end of the data read

	// State of a multibulk command whose bytes have not all arrived; offsets
	// are relative to start so they survive compaction.
	inMulti   bool
	remaining int64
	bulkLen   int64
	offs      []int

	// Arenas for the commands returned since the last Fill.
	argv   [][]byte
	inline []byte
}

// NewReader returns a reader of rd with Redis's default limits.
func NewReader(rd io.Reader) *Reader {
	return &Reader{rd: rd, bulkLen: -1}
}

// Reset makes r read from rd, dropping any buffered data.
func (r *Reader) Reset(rd io.Reader) {
	*r = Reader{rd: rd, bulkLen: -1, MaxBulkLen: r.MaxBulkLen, QueryBufferLimit: r.QueryBufferLimit,
		buf: r.buf[:0], offs: r.offs[:0], argv: r.argv[:0], inline: r.inline[:0]}
	if cap(r.buf) > keepBufCap {
		r.buf = nil
	}
}

// Buffered returns the number of bytes read but not yet parsed into commands.
func (r *Reader) Buffered() int { return r.end - r.keep() }

// BufferCap returns the capacity of the input buffer (for tests of memory
// bounds).
func (r *Reader) BufferCap() int { return cap(r.buf) }

func (r *Reader) keep() int {
	if r.inMulti {
		return r.start
	}
	return r.pos
}

// Fill reads once from the underlying reader into the buffer. It invalidates
// the arguments returned by Next. Data read before an error stays buffered:
// call Next until it returns no command, then handle the error.
func (r *Reader) Fill() error {
	r.argv = r.argv[:0]
	r.inline = r.inline[:0]
	keep := r.keep()
	pending := r.end - keep
	if cap(r.buf) > keepBufCap && pending < ioBufLen {
		nb := make([]byte, ioBufLen)
		copy(nb, r.buf[keep:r.end])
		r.buf = nb
		r.shift(keep, pending)
	} else if keep > 0 {
		copy(r.buf, r.buf[keep:r.end])
		r.shift(keep, pending)
	}
	if len(r.buf) == 0 {
		r.buf = make([]byte, ioBufLen)
	}
	if len(r.buf)-r.end < ioBufLen/4 {
		// Grow by doubling what arrived, never by a claimed length: the
		// buffer is at most about twice the pending bytes.
		nb := make([]byte, 2*len(r.buf))
		copy(nb, r.buf[:r.end])
		r.buf = nb
	}
	n, err := r.rd.Read(r.buf[r.end:])
	r.end += n
	if n > 0 {
		if int64(r.end-r.keep())+int64(len(r.offs)/2)*argCost > r.queryLimit() {
			return ErrQueryBufferLimit
		}
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

func (r *Reader) shift(keep, pending int) {
	r.pos -= keep
	r.start -= keep
	if r.start < 0 {
		r.start = 0
	}
	r.end = pending
}

func (r *Reader) queryLimit() int64 {
	if r.QueryBufferLimit > 0 {
		return r.QueryBufferLimit
	}
	return DefaultQueryBufferLimit
}

func (r *Reader) maxBulk() int64 {
	if r.MaxBulkLen > 0 {
		return r.MaxBulkLen
	}
	return DefaultMaxBulkLen
}

// Next returns the next complete command in the buffer. ok is false when the
// buffer holds no complete command (call Fill). Empty inline lines and
// multibulk counts <= 0 are skipped, as Redis does. A *ProtocolError means
// the connection must be answered and closed.
func (r *Reader) Next() (args [][]byte, ok bool, err error) {
	for {
		if !r.inMulti {
			if r.pos >= r.end {
				return nil, false, nil
			}
			if r.buf[r.pos] != '*' {
				args, ok, err := r.nextInline()
				if err != nil || !ok {
					return nil, false, err
				}
				if len(args) == 0 {
					continue
				}
				return args, true, nil
			}
			b := r.buf[r.pos:r.end]
			nl := indexC(b, '\r')
			if nl < 0 {
				if len(b) > InlineMaxSize {
					return nil, false, protoErr("too big mbulk count string")
				}
				return nil, false, nil
			}
			if nl > len(b)-2 {
				return nil, false, nil // the \n has not arrived
			}
			ll, valid := ParseInt(b[1:nl])
			if !valid || ll > math.MaxInt32 {
				return nil, false, protoErr("invalid multibulk length")
			}
			if ll > unauthMaxArgs && r.Unauthenticated {
				return nil, false, protoErr("unauthenticated multibulk length")
			}
			r.pos += nl + 2
			if ll <= 0 {
				continue
			}
			r.start = r.pos
			r.inMulti, r.remaining, r.bulkLen, r.offs = true, ll, -1, r.offs[:0]
		}
		for r.remaining > 0 {
			if r.bulkLen < 0 {
				b := r.buf[r.pos:r.end]
				nl := indexC(b, '\r')
				if nl < 0 {
					if len(b) > InlineMaxSize {
						return nil, false, protoErr("too big bulk count string")
					}
					return nil, false, nil
				}
				if nl > len(b)-2 {
					return nil, false, nil
				}
				if b[0] != '$' {
					return nil, false, protoErr("expected '$', got '" + cChar(b[0]) + "'")
				}
				ll, valid := ParseInt(b[1:nl])
				if !valid || ll < 0 || ll > r.maxBulk() {
					return nil, false, protoErr("invalid bulk length")
				}
				if ll > unauthMaxBulk && r.Unauthenticated {
					return nil, false, protoErr("unauthenticated bulk length")
				}
				r.pos += nl + 2
				r.bulkLen = ll
			}
			if int64(r.end-r.pos) < r.bulkLen+2 {
				return nil, false, nil
			}
			// Like Redis, the two bytes after the argument are skipped
			// unchecked.
			s := r.pos - r.start
			r.offs = append(r.offs, s, s+int(r.bulkLen))
			r.pos += int(r.bulkLen) + 2
			r.bulkLen = -1
			r.remaining--
		}
		r.inMulti = false
		first := len(r.argv)
		for i := 0; i < len(r.offs); i += 2 {
			a, b := r.start+r.offs[i], r.start+r.offs[i+1]
			r.argv = append(r.argv, r.buf[a:b:b])
		}
		return r.argv[first:len(r.argv):len(r.argv)], true, nil
	}
}

// cChar renders a byte as C's %c does inside an error text (which Redis
// later cleans of newlines).
func cChar(c byte) string { return string([]byte{c}) }

// indexC is strchr over a buffer: the index of c, or -1 when absent or when a
// NUL byte comes first (Redis searches its NUL-terminated query buffer with
// strchr, which stops there).
func indexC(b []byte, c byte) int {
	i := bytes.IndexByte(b, c)
	if i < 0 {
		return -1
	}
	if bytes.IndexByte(b[:i], 0) >= 0 {
		return -1
	}
	return i
}

func (r *Reader) nextInline() ([][]byte, bool, error) {
	b := r.buf[r.pos:r.end]
	nl := indexC(b, '\n')
	if nl < 0 {
		if len(b) > InlineMaxSize {
			return nil, false, protoErr("too big inline request")
		}
		return nil, false, nil
	}
	line := b[:nl]
	if nl > 0 && line[nl-1] == '\r' {
		line = line[:nl-1]
	}
	first := len(r.argv)
	if !r.splitArgs(line) {
		r.argv = r.argv[:first]
		return nil, false, protoErr("unbalanced quotes in request")
	}
	r.pos += nl + 1
	return r.argv[first:len(r.argv):len(r.argv)], true, nil
}

// SplitArgs splits an inline request line as Redis's sdssplitargs does:
// whitespace separates arguments, "double quotes" take \xHH and \n \r \t \b \a
// escapes, 'single quotes' take \'. ok is false for unbalanced quotes.
func SplitArgs(line []byte) (args [][]byte, ok bool) {
	var r Reader
	if !r.splitArgs(line) {
		return nil, false
	}
	return r.argv, true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// splitArgs appends the arguments of line to r.argv, their bytes to r.inline.
// line holds no NUL (indexC stops there), so a C string's end is len(line).
func (r *Reader) splitArgs(line []byte) bool {
	at := func(i int) byte {
		if i < len(line) {
			return line[i]
		}
		return 0
	}
	p := 0
	for {
		for p < len(line) && isSpace(line[p]) {
			p++
		}
		if p >= len(line) {
			return true
		}
		inq, insq, done := false, false, false
		start := len(r.inline)
		for !done {
			c := at(p)
			switch {
			case inq:
				switch {
				case c == '\\' && at(p+1) == 'x' && isHex(at(p+2)) && isHex(at(p+3)):
					r.inline = append(r.inline, hexVal(at(p+2))*16+hexVal(at(p+3)))
					p += 3
				case c == '\\' && at(p+1) != 0:
					p++
					e := at(p)
					switch e {
					case 'n':
						e = '\n'
					case 'r':
						e = '\r'
					case 't':
						e = '\t'
					case 'b':
						e = '\b'
					case 'a':
						e = '\a'
					}
					r.inline = append(r.inline, e)
				case c == '"':
					if n := at(p + 1); n != 0 && !isSpace(n) {
						return false
					}
					done = true
				case c == 0:
					return false
				default:
					r.inline = append(r.inline, c)
				}
			case insq:
				switch {
				case c == '\\' && at(p+1) == '\'':
					p++
					r.inline = append(r.inline, '\'')
				case c == '\'':
					if n := at(p + 1); n != 0 && !isSpace(n) {
						return false
					}
					done = true
				case c == 0:
					return false
				default:
					r.inline = append(r.inline, c)
				}
			default:
				switch c {
				case ' ', '\n', '\r', '\t', 0:
					done = true
				case '"':
					inq = true
				case '\'':
					insq = true
				default:
					r.inline = append(r.inline, c)
				}
			}
			if at(p) != 0 {
				p++
			}
		}
		end := len(r.inline)
		r.argv = append(r.argv, r.inline[start:end:end])
	}
}

// ParseInt parses a decimal integer exactly as Redis's string2ll: optional
// '-', no '+', no leading zeros, no spaces, at most 20 bytes, within int64.
func ParseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) >= 21 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := false
	i := 0
	if b[0] == '-' {
		neg = true
		i++
		if i == len(b) {
			return 0, false
		}
	}
	if b[i] < '1' || b[i] > '9' {
		return 0, false
	}
	var v uint64
	for ; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > math.MaxUint64/10 {
			return 0, false
		}
		v *= 10
		if v > math.MaxUint64-uint64(c-'0') {
			return 0, false
		}
		v += uint64(c - '0')
	}
	if neg {
		if v > uint64(math.MaxInt64)+1 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}
