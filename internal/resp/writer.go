package resp

import (
	"math"
	"strconv"

	"github.com/tidwall/redcon"
)

// Writer accumulates replies in one buffer for one connection, encoded for
// the connection's protocol version. The caller writes Bytes to the network
// and then calls Reset.
type Writer struct {
	// Proto is 2 (RESP2, the default) or 3 (after HELLO 3).
	Proto int
	b     []byte
}

// NewWriter returns a RESP2 writer.
func NewWriter() *Writer { return &Writer{Proto: 2} }

// Bytes returns the encoded replies.
func (w *Writer) Bytes() []byte { return w.b }

// Len returns the number of buffered bytes.
func (w *Writer) Len() int { return len(w.b) }

// Reset empties the buffer, dropping it if it grew beyond keepBufCap.
func (w *Writer) Reset() {
	if cap(w.b) > keepBufCap {
		w.b = nil
		return
	}
	w.b = w.b[:0]
}

// Truncate drops replies written after the first n bytes.
func (w *Writer) Truncate(n int) { w.b = w.b[:n] }

// Raw appends pre-encoded bytes.
func (w *Writer) Raw(b []byte) { w.b = append(w.b, b...) }

// RawString appends pre-encoded bytes.
func (w *Writer) RawString(s string) { w.b = append(w.b, s...) }

// Bulk appends a bulk string.
func (w *Writer) Bulk(b []byte) { w.b = redcon.AppendBulk(w.b, b) }

// BulkString appends a bulk string.
func (w *Writer) BulkString(s string) { w.b = redcon.AppendBulkString(w.b, s) }

// BulkInt appends the decimal text of n as a bulk string.
func (w *Writer) BulkInt(n int64) { w.b = redcon.AppendBulkInt(w.b, n) }

// Int appends an integer.
func (w *Writer) Int(n int64) { w.b = redcon.AppendInt(w.b, n) }

// Array appends an array header of n elements.
func (w *Writer) Array(n int) { w.b = redcon.AppendArray(w.b, n) }

// Simple appends a simple string; s must hold no CR or LF.
func (w *Writer) Simple(s string) { w.b = redcon.AppendString(w.b, s) }

// OK appends +OK.
func (w *Writer) OK() { w.b = redcon.AppendOK(w.b) }

// Error appends an error reply. msg starts with its code ("ERR ...",
// "WRONGTYPE ..."); CR and LF in it become spaces, as Redis does for texts
// built from client input.
func (w *Writer) Error(msg string) { w.b = redcon.AppendError(w.b, msg) }

// Null appends the null of a missing bulk string: $-1 in RESP2, _ in RESP3.
func (w *Writer) Null() {
	if w.Proto == 3 {
		w.b = append(w.b, "_\r\n"...)
		return
	}
	w.b = redcon.AppendNull(w.b)
}

// NullArray appends the null of a missing array: *-1 in RESP2, _ in RESP3.
func (w *Writer) NullArray() {
	if w.Proto == 3 {
		w.b = append(w.b, "_\r\n"...)
		return
	}
	w.b = append(w.b, "*-1\r\n"...)
}

// Map appends a map header of n key-value pairs: %n in RESP3, a flat array
// of 2n elements in RESP2.
func (w *Writer) Map(n int) {
	if w.Proto == 3 {
		w.b = appendHeader(w.b, '%', n)
		return
	}
	w.b = redcon.AppendArray(w.b, 2*n)
}

// Set appends a set header: ~n in RESP3, an array in RESP2.
func (w *Writer) Set(n int) {
	if w.Proto == 3 {
		w.b = appendHeader(w.b, '~', n)
		return
	}
	w.b = redcon.AppendArray(w.b, n)
}

// Push appends a push header: >n in RESP3, an array in RESP2.
func (w *Writer) Push(n int) {
	if w.Proto == 3 {
		w.b = appendHeader(w.b, '>', n)
		return
	}
	w.b = redcon.AppendArray(w.b, n)
}

// Bool appends a boolean: #t/#f in RESP3, :1/:0 in RESP2.
func (w *Writer) Bool(v bool) {
	switch {
	case w.Proto == 3 && v:
		w.b = append(w.b, "#t\r\n"...)
	case w.Proto == 3:
		w.b = append(w.b, "#f\r\n"...)
	case v:
		w.b = append(w.b, ":1\r\n"...)
	default:
		w.b = append(w.b, ":0\r\n"...)
	}
}

// Double appends a double as Redis 7.0's addReplyDouble: ",<%.17g>" in RESP3,
// a bulk string in RESP2; infinities are "inf" and "-inf".
func (w *Writer) Double(f float64) {
	var tmp [32]byte
	var s []byte
	switch {
	case math.IsInf(f, 1):
		s = append(tmp[:0], "inf"...)
	case math.IsInf(f, -1):
		s = append(tmp[:0], "-inf"...)
	default:
		s = strconv.AppendFloat(tmp[:0], f, 'g', 17, 64)
	}
	if w.Proto == 3 {
		w.b = append(w.b, ',')
		w.b = append(w.b, s...)
		w.b = append(w.b, '\r', '\n')
		return
	}
	w.b = redcon.AppendBulk(w.b, s)
}

// BigNumber appends a big number: (n in RESP3, a bulk string in RESP2.
func (w *Writer) BigNumber(n string) {
	if w.Proto == 3 {
		w.b = append(w.b, '(')
		w.b = append(w.b, n...)
		w.b = append(w.b, '\r', '\n')
		return
	}
	w.b = redcon.AppendBulkString(w.b, n)
}

// Verbatim appends a verbatim string of format ext ("txt"): =len\r\ntxt:... in
// RESP3, a bulk string in RESP2 (as INFO and CLIENT INFO reply).
func (w *Writer) Verbatim(ext string, s []byte) {
	if w.Proto == 3 {
		w.b = appendHeader(w.b, '=', len(s)+4)
		w.b = append(w.b, ext...)
		w.b = append(w.b, ':')
		w.b = append(w.b, s...)
		w.b = append(w.b, '\r', '\n')
		return
	}
	w.b = redcon.AppendBulk(w.b, s)
}

func appendHeader(b []byte, c byte, n int) []byte {
	b = append(b, c)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// Consume drops the first n buffered bytes (the part of a partial write that
// went out); the rest moves to the front.
func (w *Writer) Consume(n int) {
	if n >= len(w.b) {
		w.Reset()
		return
	}
	w.b = w.b[:copy(w.b, w.b[n:])]
}
