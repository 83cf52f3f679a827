package input

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonlReader reads JSON Lines: one object per line, blank lines skipped.
type jsonlReader struct {
	f      File
	br     *bufio.Reader
	closer io.Closer
	max    int
	line   int64
	long   []byte // a line longer than the bufio buffer, assembled
	p      Parser
	// off is the offset of the next line relative to where reading began;
	// limit, if positive, ends the input before a line starting at or past it.
	off, limit int64
}

func newJSONLReader(f File, r io.Reader, closer io.Closer, opts Options) *jsonlReader {
	return &jsonlReader{f: f, br: bufio.NewReaderSize(r, 1<<20), closer: closer, max: opts.maxLine()}
}

func (j *jsonlReader) Close() error { return j.closer.Close() }

func (j *jsonlReader) Next(r *Record) error {
	for {
		line, err := j.readLine()
		if err != nil {
			return err
		}
		if line == nil {
			return io.EOF
		}
		if isBlank(line) {
			continue
		}
		if err := j.p.Parse(line, r); err != nil {
			return &Error{File: j.f, Line: j.line, Msg: err.Error()}
		}
		r.Line = j.line
		return nil
	}
}

// readLine returns the next line without its newline, or nil at the end.
func (j *jsonlReader) readLine() ([]byte, error) {
	if j.limit > 0 && j.off >= j.limit {
		return nil, nil
	}
	b, err := j.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		j.long = append(j.long[:0], b...)
		for err == bufio.ErrBufferFull {
			if len(j.long) > j.max+1 {
				return nil, &Error{File: j.f, Line: j.line + 1, Msg: fmt.Sprintf("line longer than %d bytes", j.max)}
			}
			b, err = j.br.ReadSlice('\n')
			j.long = append(j.long, b...)
		}
		b = j.long
	}
	if err != nil && err != io.EOF {
		var ie *Error
		if errors.As(err, &ie) {
			return nil, err
		}
		return nil, &Error{File: j.f, Line: j.line + 1, Msg: err.Error()}
	}
	if len(b) == 0 {
		return nil, nil
	}
	j.line++
	j.off += int64(len(b))
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if len(b) > j.max {
		return nil, &Error{File: j.f, Line: j.line, Msg: fmt.Sprintf("line longer than %d bytes", j.max)}
	}
	return b, nil
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// Parser parses one JSON Lines record. It keeps buffers between calls; the
// zero value is ready to use. A Record it fills aliases the line and the
// parser's buffers until the next Parse.
//
// The parser is strict and hand-written for the record shape (it is the hot
// path of every build): one object with "key" or "key_b64" and exactly one of
// "value", "value_b64", "hash", "hash_b64". Numbers become their decimal
// text: an integer literal exactly as written (also beyond 64 bits), any other
// number as the shortest decimal that reads back as the same float64, in plain
// notation (1.50 → "1.5", 1e3 → "1000", 2.5E-3 → "0.0025"), which is how Redis
// prints the result of INCRBYFLOAT. Keys may be numbers too (a Spark bigint key
// column).
type Parser struct {
	line    []byte
	pos     int
	scratch []byte // unescaped strings, base64 payloads and number texts
	spans   []span // hash fields: name, value, name, value…
	fields  []Field
	index   map[string]int
	// ascii is true after str returned a string of ASCII bytes only (which
	// needs no UTF-8 check); false may also mean unknown.
	ascii bool
}

// span is a byte range of the line (inScratch false) or of the scratch buffer.
// Ranges are resolved into slices only at the end, because scratch may grow.
type span struct {
	start, end int
	inScratch  bool
}

func (p *Parser) bytes(s span) []byte {
	if s.inScratch {
		return p.scratch[s.start:s.end:s.end]
	}
	return p.line[s.start:s.end:s.end]
}

type fieldSet uint8

const (
	seenKey fieldSet = 1 << iota
	seenKeyB64
	seenValue
	seenValueB64
	seenHash
	seenHashB64
)

// Parse parses line into r.
func (p *Parser) Parse(line []byte, r *Record) error {
	p.line, p.pos = line, 0
	p.scratch = p.scratch[:0]
	p.spans = p.spans[:0]
	var key, value span
	var seen fieldSet
	p.ws()
	if !p.consume('{') {
		return p.errExpected("a JSON object")
	}
	p.ws()
	if !p.consume('}') {
		for {
			p.ws()
			if p.peek() != '"' {
				return p.errExpected("a field name in double quotes")
			}
			ns, err := p.str("field name")
			if err != nil {
				return err
			}
			name := p.bytes(ns)
			p.ws()
			if !p.consume(':') {
				return p.errExpected("':' after a field name")
			}
			p.ws()
			var bit fieldSet
			switch string(name) {
			case "key":
				bit = seenKey
			case "key_b64":
				bit = seenKeyB64
			case "value":
				bit = seenValue
			case "value_b64":
				bit = seenValueB64
			case "hash":
				bit = seenHash
			case "hash_b64":
				bit = seenHashB64
			}
			if bit == 0 {
				return fmt.Errorf("unknown field %s (want key or key_b64, and one of value, value_b64, hash, hash_b64)", strconv.Quote(string(name)))
			}
			if seen&bit != 0 {
				return fmt.Errorf("field %q given twice", name)
			}
			seen |= bit
			switch bit {
			case seenKey:
				key, _, err = p.scalar("key")
			case seenKeyB64:
				key, err = p.b64("key_b64")
			case seenValue:
				value, _, err = p.scalar("value")
			case seenValueB64:
				value, err = p.b64("value_b64")
			case seenHash:
				err = p.hash("hash", false)
			case seenHashB64:
				err = p.hash("hash_b64", true)
			}
			if err != nil {
				return err
			}
			p.ws()
			if p.consume('}') {
				break
			}
			if !p.consume(',') {
				return p.errExpected("',' or '}' after a field")
			}
		}
	}
	p.ws()
	if p.pos != len(p.line) {
		return fmt.Errorf("unexpected data after the JSON object at column %d", p.pos+1)
	}
	switch {
	case seen&(seenKey|seenKeyB64) == 0:
		return errors.New(`missing "key" (or "key_b64")`)
	case seen&seenKey != 0 && seen&seenKeyB64 != 0:
		return errors.New(`both "key" and "key_b64" given`)
	}
	vals := 0
	for _, b := range []fieldSet{seenValue, seenValueB64, seenHash, seenHashB64} {
		if seen&b != 0 {
			vals++
		}
	}
	if vals == 0 {
		return errors.New(`missing value: want one of "value", "value_b64", "hash", "hash_b64"`)
	}
	if vals > 1 {
		return errors.New(`more than one of "value", "value_b64", "hash", "hash_b64" given; a key holds either a string or a hash`)
	}
	r.Key = p.bytes(key)
	r.Line = 0
	if seen&(seenValue|seenValueB64) != 0 {
		r.Kind, r.Value, r.Hash = KindString, p.bytes(value), nil
		return nil
	}
	r.Kind, r.Value = KindHash, nil
	r.Hash = p.resolveHash()
	return nil
}

// resolveHash turns the field spans into fields, merging repeated names as
// HSET k f 1 f 2 does: one field f, at its first position, with the last value.
func (p *Parser) resolveHash() []Field {
	p.fields = p.fields[:0]
	n := len(p.spans) / 2
	if n > 32 {
		if p.index == nil {
			p.index = make(map[string]int, n)
		}
		clear(p.index)
	}
	// seen has a bit per hash of the names so far: a name whose bit is
	// clear is not a repeat, without comparing it to each.
	var seen uint64
	for i := 0; i < len(p.spans); i += 2 {
		name, val := p.bytes(p.spans[i]), p.bytes(p.spans[i+1])
		dup := -1
		bit := uint64(1) << (nameHash(name) & 63)
		if n <= 32 && seen&bit == 0 {
			seen |= bit
			p.fields = append(p.fields, Field{Name: name, Value: val})
			continue
		}
		if n > 32 {
			if j, ok := p.index[string(name)]; ok {
				dup = j
			} else {
				p.index[string(name)] = len(p.fields)
			}
		} else {
			for j := range p.fields {
				if string(p.fields[j].Name) == string(name) {
					dup = j
					break
				}
			}
		}
		if dup >= 0 {
			p.fields[dup].Value = val
			continue
		}
		p.fields = append(p.fields, Field{Name: name, Value: val})
	}
	return p.fields
}

// nameHash is a cheap hash of a hash field name for resolveHash: its length
// and first and last two bytes (names often differ only near the end:
// clicks_1d, clicks_7d).
func nameHash(b []byte) uint {
	h := uint(len(b)) * 7
	if len(b) >= 2 {
		h += uint(b[0])*13 + uint(b[len(b)-2])*31 + uint(b[len(b)-1])
	} else if len(b) == 1 {
		h += uint(b[0])
	}
	return h
}

func (p *Parser) peek() byte {
	if p.pos < len(p.line) {
		return p.line[p.pos]
	}
	return 0
}

func (p *Parser) consume(c byte) bool {
	if p.pos < len(p.line) && p.line[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

func (p *Parser) ws() {
	for p.pos < len(p.line) {
		switch p.line[p.pos] {
		case ' ', '\t', '\r', '\n':
			p.pos++
		default:
			return
		}
	}
}

func (p *Parser) errExpected(what string) error {
	if p.pos >= len(p.line) {
		return fmt.Errorf("malformed JSON: expected %s, found the end of the line", what)
	}
	return fmt.Errorf("malformed JSON: expected %s at column %d, found %s", what, p.pos+1, describe(p.line[p.pos]))
}

func describe(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// jsonType names the JSON value starting at the current position.
func (p *Parser) jsonType() string {
	switch c := p.peek(); {
	case c == 'n':
		return "null"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == '[':
		return "an array"
	case c == '{':
		return "an object"
	case c == '"':
		return "a string"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a number"
	case p.pos >= len(p.line):
		return "the end of the line"
	default:
		return "malformed JSON (" + describe(c) + ")"
	}
}

// scalar parses a string or a number (as its decimal text).
func (p *Parser) scalar(what string) (s span, isNum bool, err error) {
	c := p.peek()
	switch {
	case c == '"':
		s, err = p.str(what)
		if err == nil && !p.ascii && !utf8.Valid(p.bytes(s)) {
			err = fmt.Errorf("%s holds invalid UTF-8; send raw bytes base64-encoded in %s_b64", what, baseName(what))
		}
		return s, false, err
	case c == '-' || (c >= '0' && c <= '9'):
		s, err = p.number(what)
		return s, true, err
	}
	return span{}, false, fmt.Errorf("%s must be a string or a number, got %s", what, p.jsonType())
}

func baseName(what string) string {
	switch what {
	case "key", "value":
		return what
	}
	return "hash"
}

// str parses a JSON string. Without escapes it is a range of the line;
// otherwise it is unescaped into scratch. UTF-8 validity is checked by the
// caller where it matters (it does not for base64 payloads, which are ASCII
// or rejected by the decoder).
func (p *Parser) str(what string) (span, error) {
	if !p.consume('"') {
		return span{}, p.errExpected("a string")
	}
	start := p.pos
	var high uint64
	p.pos, high = scanPlain(p.line, p.pos)
	p.ascii = high == 0
	for p.pos < len(p.line) {
		c := p.line[p.pos]
		if c == '"' {
			s := span{start: start, end: p.pos}
			p.pos++
			return s, nil
		}
		if c == '\\' {
			p.ascii = false
			return p.strEscaped(start, what)
		}
		if c >= 0x80 {
			p.ascii = false
		}
		if c < 0x20 {
			return span{}, fmt.Errorf("malformed JSON: control character 0x%02x in %s at column %d (must be escaped)", c, what, p.pos+1)
		}
		p.pos++
	}
	return span{}, fmt.Errorf("malformed JSON: unterminated string in %s", what)
}

// SWAR constants: every byte 0x01, every byte 0x80.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// scanPlain returns the position of the first byte at or after pos that may
// end or complicate a JSON string ('"', '\\' or a control character), eight
// bytes at a time; the bytewise loop after it finds the exact byte (the test
// may flag a word early, never late). high is non-zero if a byte skipped has
// its top bit set (so the text may not be ASCII).
func scanPlain(b []byte, pos int) (end int, high uint64) {
	for ; pos+8 <= len(b); pos += 8 {
		w := binary.LittleEndian.Uint64(b[pos:])
		q := w ^ ('"' * ones)
		bs := w ^ ('\\' * ones)
		special := ((q - ones) &^ q) | ((bs - ones) &^ bs) | (w - 0x20*ones)
		if special&^w&highs != 0 {
			break
		}
		high |= w
	}
	return pos, high & highs
}

func (p *Parser) strEscaped(start int, what string) (span, error) {
	out := len(p.scratch)
	p.scratch = append(p.scratch, p.line[start:p.pos]...)
	for p.pos < len(p.line) {
		c := p.line[p.pos]
		switch {
		case c == '"':
			p.pos++
			return span{start: out, end: len(p.scratch), inScratch: true}, nil
		case c < 0x20:
			return span{}, fmt.Errorf("malformed JSON: control character 0x%02x in %s at column %d (must be escaped)", c, what, p.pos+1)
		case c != '\\':
			p.scratch = append(p.scratch, c)
			p.pos++
			continue
		}
		if p.pos+1 >= len(p.line) {
			break
		}
		e := p.line[p.pos+1]
		p.pos += 2
		switch e {
		case '"', '\\', '/':
			p.scratch = append(p.scratch, e)
		case 'b':
			p.scratch = append(p.scratch, '\b')
		case 'f':
			p.scratch = append(p.scratch, '\f')
		case 'n':
			p.scratch = append(p.scratch, '\n')
		case 'r':
			p.scratch = append(p.scratch, '\r')
		case 't':
			p.scratch = append(p.scratch, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return span{}, fmt.Errorf("malformed JSON: bad \\u escape in %s at column %d", what, p.pos-1)
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if p.pos+1 < len(p.line) && p.line[p.pos] == '\\' && p.line[p.pos+1] == 'u' {
					p.pos += 2
					if r2, ok = p.hex4(); !ok {
						return span{}, fmt.Errorf("malformed JSON: bad \\u escape in %s at column %d", what, p.pos-1)
					}
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return span{}, fmt.Errorf("%s holds an unpaired UTF-16 surrogate escape, which is not text; send raw bytes base64-encoded in %s_b64", what, baseName(what))
				}
			}
			p.scratch = utf8.AppendRune(p.scratch, r)
		default:
			return span{}, fmt.Errorf("malformed JSON: invalid escape '\\%c' in %s at column %d", e, what, p.pos-1)
		}
	}
	return span{}, fmt.Errorf("malformed JSON: unterminated string in %s", what)
}

func (p *Parser) hex4() (rune, bool) {
	if p.pos+4 > len(p.line) {
		return 0, false
	}
	var r rune
	for _, c := range p.line[p.pos : p.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}

// number parses a JSON number and returns its decimal text (see Parser).
func (p *Parser) number(what string) (span, error) {
	start := p.pos
	p.consume('-')
	digits := func() int {
		n := 0
		for p.pos < len(p.line) && p.line[p.pos] >= '0' && p.line[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	intStart := p.pos
	n := digits()
	if n == 0 || (n > 1 && p.line[intStart] == '0') {
		return span{}, fmt.Errorf("malformed JSON: invalid number in %s at column %d", what, start+1)
	}
	integer := true
	if p.consume('.') {
		integer = false
		if digits() == 0 {
			return span{}, fmt.Errorf("malformed JSON: invalid number in %s at column %d", what, start+1)
		}
	}
	if p.peek() == 'e' || p.peek() == 'E' {
		integer = false
		p.pos++
		if !p.consume('+') {
			p.consume('-')
		}
		if digits() == 0 {
			return span{}, fmt.Errorf("malformed JSON: invalid number in %s at column %d", what, start+1)
		}
	}
	if integer {
		return span{start: start, end: p.pos}, nil
	}
	text := p.line[start:p.pos]
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		return span{}, fmt.Errorf("number %s in %s is out of range", text, what)
	}
	out := len(p.scratch)
	p.scratch = strconv.AppendFloat(p.scratch, f, 'f', -1, 64)
	return span{start: out, end: len(p.scratch), inScratch: true}, nil
}

// b64 parses a JSON string holding standard base64 and decodes it.
func (p *Parser) b64(what string) (span, error) {
	if p.peek() != '"' {
		return span{}, fmt.Errorf("%s must be a base64 string, got %s", what, p.jsonType())
	}
	s, err := p.str(what)
	if err != nil {
		return span{}, err
	}
	return p.decodeB64(s, what)
}

func (p *Parser) decodeB64(s span, what string) (span, error) {
	// The encoded text may sit in scratch, which decoding appends to: copy
	// its bounds first and decode from a stable slice.
	enc := p.bytes(s)
	need := base64.StdEncoding.DecodedLen(len(enc))
	out := len(p.scratch)
	if cap(p.scratch)-out < need {
		grown := make([]byte, out, 2*cap(p.scratch)+need)
		copy(grown, p.scratch)
		p.scratch = grown
		enc = p.bytes(s)
	}
	n, err := base64.StdEncoding.Decode(p.scratch[out:out+need], enc)
	if err != nil {
		return span{}, fmt.Errorf("%s is not valid standard base64: %v", what, err)
	}
	p.scratch = p.scratch[:out+n]
	return span{start: out, end: out + n, inScratch: true}, nil
}

// fieldNameWhat names a hash field name in errors, without building strings
// on the hot path.
func fieldNameWhat(b64 bool) string {
	if b64 {
		return "hash_b64 field name"
	}
	return "hash field name"
}

// hash parses an object of field → string or number (b64: both base64).
func (p *Parser) hash(what string, b64 bool) error {
	if p.peek() != '{' {
		return fmt.Errorf("%s must be an object of field names to values, got %s", what, p.jsonType())
	}
	p.pos++
	p.ws()
	if p.consume('}') {
		return fmt.Errorf("%s is empty; Redis cannot hold an empty hash", what)
	}
	for {
		p.ws()
		if p.peek() != '"' {
			return p.errExpected("a hash field name in double quotes")
		}
		name, err := p.str(fieldNameWhat(b64))
		if err != nil {
			return err
		}
		if b64 {
			name, err = p.decodeB64(name, fieldNameWhat(b64))
		} else if !p.ascii && !utf8.Valid(p.bytes(name)) {
			err = fmt.Errorf("%s field name holds invalid UTF-8; send raw bytes base64-encoded in hash_b64", what)
		}
		if err != nil {
			return err
		}
		p.ws()
		if !p.consume(':') {
			return p.errExpected("':' after a hash field name")
		}
		p.ws()
		var val span
		if b64 {
			if p.peek() != '"' {
				return fmt.Errorf("%s field %s must be a base64 string, got %s", what, strconv.Quote(string(p.bytes(name))), p.jsonType())
			}
			if val, err = p.str("hash_b64 field value"); err == nil {
				val, err = p.decodeB64(val, "hash_b64 field value")
			}
		} else {
			c := p.peek()
			if c != '"' && c != '-' && (c < '0' || c > '9') {
				return fmt.Errorf("%s field %s must be a string or a number, got %s", what, strconv.Quote(string(p.bytes(name))), p.jsonType())
			}
			val, _, err = p.scalar("hash field value")
		}
		if err != nil {
			// Name the field only now: building the text eagerly costs
			// more than the rest of the parse.
			return fmt.Errorf("%s field %s: %w", what, strconv.Quote(string(p.bytes(name))), err)
		}
		p.spans = append(p.spans, name, val)
		p.ws()
		if p.consume('}') {
			return nil
		}
		if !p.consume(',') {
			return p.errExpected("',' or '}' in " + what)
		}
	}
}
