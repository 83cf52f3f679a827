package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Reply is a parsed RESP2/RESP3 reply, for comparisons that look at meaning
// rather than bytes (sets, formats).
type Reply struct {
	// Kind is the RESP type byte: + - : $ * _ , # ! = ( % ~ | >.
	Kind byte
	// Str holds the text of simple strings, errors, bulk and verbatim strings
	// (with its "txt:" prefix), doubles, big numbers and booleans.
	Str []byte
	// Int holds the value of an integer.
	Int int64
	// Null is set for _ and for the RESP2 nulls $-1 and *-1.
	Null bool
	// Elems holds the elements of an array, set or push, and the keys and
	// values, alternating, of a map.
	Elems []*Reply
	// Attr is the attribute map sent before this reply, if any.
	Attr *Reply
}

// Parse parses exactly one reply from raw.
func Parse(raw []byte) (*Reply, error) {
	c := &Conn{r: bufio.NewReader(bytes.NewReader(raw))}
	if err := c.readValue(0); err != nil {
		return nil, err
	}
	if len(c.raw) != len(raw) {
		return nil, fmt.Errorf("%w: %d bytes after the reply", ErrProtocol, len(raw)-len(c.raw))
	}
	r, _, err := build(c.raw, 0)
	return r, err
}

// MustParse is Parse for replies already read by ReadReply; it panics on
// bytes that are not one reply.
func MustParse(raw []byte) *Reply {
	r, err := Parse(raw)
	if err != nil {
		panic(fmt.Sprintf("redistest: parse %s: %v", Escape(raw), err))
	}
	return r
}

// build parses one already-validated reply from b.
func build(b []byte, depth int) (*Reply, []byte, error) {
	if depth > maxDepth {
		return nil, nil, fmt.Errorf("%w: too deep", ErrProtocol)
	}
	i := bytes.Index(b, []byte("\r\n"))
	if i < 1 {
		return nil, nil, fmt.Errorf("%w: no line", ErrProtocol)
	}
	t, line, rest := b[0], b[1:i], b[i+2:]
	r := &Reply{Kind: t}
	switch t {
	case '+', '-', ',', '(', '#':
		r.Str = line
	case '_':
		r.Null = true
	case ':':
		n, err := strconv.ParseInt(string(line), 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: integer %q", ErrProtocol, line)
		}
		r.Int = n
	case '$', '!', '=':
		if string(line) == "?" {
			var s []byte
			for {
				j := bytes.Index(rest, []byte("\r\n"))
				n, _ := strconv.Atoi(string(rest[1:j]))
				rest = rest[j+2:]
				if n == 0 {
					break
				}
				s = append(s, rest[:n]...)
				rest = rest[n+2:]
			}
			r.Str = s
			break
		}
		n, _ := strconv.Atoi(string(line))
		if n < 0 {
			r.Null = true
			break
		}
		r.Str, rest = rest[:n:n], rest[n+2:]
	case '*', '~', '>', '%', '|':
		n := -2
		if string(line) != "?" {
			n, _ = strconv.Atoi(string(line))
			if n < 0 {
				r.Null = true
				break
			}
			if t == '%' || t == '|' {
				n *= 2
			}
		}
		for k := 0; n == -2 || k < n; k++ {
			if n == -2 && bytes.HasPrefix(rest, []byte(".\r\n")) {
				rest = rest[3:]
				break
			}
			e, rr, err := build(rest, depth+1)
			if err != nil {
				return nil, nil, err
			}
			r.Elems, rest = append(r.Elems, e), rr
		}
		if t == '|' {
			v, rr, err := build(rest, depth+1)
			if err != nil {
				return nil, nil, err
			}
			r.Kind = '%'
			v.Attr, rest = r, rr
			return v, rest, nil
		}
	default:
		return nil, nil, fmt.Errorf("%w: type %q", ErrProtocol, t)
	}
	return r, rest, nil
}

// IsError reports whether r is an error (simple or bulk).
func (r *Reply) IsError() bool { return r.Kind == '-' || r.Kind == '!' }

// IsAggregate reports whether r holds elements.
func (r *Reply) IsAggregate() bool {
	return strings.IndexByte("*~>%", r.Kind) >= 0 && !r.Null
}

// Text returns the string value of a simple, bulk or verbatim string (for a
// verbatim string, without its format prefix).
func (r *Reply) Text() []byte {
	if r.Kind == '=' && len(r.Str) >= 4 && r.Str[3] == ':' {
		return r.Str[4:]
	}
	return r.Str
}

// String renders r compactly and deterministically, e.g. [$"a" :1 _].
func (r *Reply) String() string {
	var sb strings.Builder
	r.write(&sb)
	return sb.String()
}

func (r *Reply) write(sb *strings.Builder) {
	if r.Attr != nil {
		sb.WriteString("|")
		r.Attr.write(sb)
	}
	switch {
	case r.Null:
		sb.WriteString("null")
	case r.Kind == ':':
		sb.WriteString(strconv.FormatInt(r.Int, 10))
	case r.IsAggregate():
		sb.WriteByte(r.Kind)
		sb.WriteByte('[')
		for i, e := range r.Elems {
			if i > 0 {
				sb.WriteByte(' ')
			}
			e.write(sb)
		}
		sb.WriteByte(']')
	default:
		sb.WriteByte(r.Kind)
		sb.WriteString(strconv.Quote(string(r.Str)))
	}
}

// Canonical renders r like String but with the elements of sets and maps
// (and of arrays, when unordered is set, at every level) in sorted order, so
// two replies that differ only in element order render the same.
func (r *Reply) Canonical(unordered bool) string {
	if !r.IsAggregate() {
		return r.String()
	}
	var parts []string
	switch {
	case r.Kind == '%':
		for i := 0; i+1 < len(r.Elems); i += 2 {
			parts = append(parts, r.Elems[i].Canonical(unordered)+"=>"+r.Elems[i+1].Canonical(unordered))
		}
		slices.Sort(parts)
	default:
		for _, e := range r.Elems {
			parts = append(parts, e.Canonical(unordered))
		}
		if unordered || r.Kind == '~' {
			slices.Sort(parts)
		}
	}
	return string(r.Kind) + "[" + strings.Join(parts, " ") + "]"
}

// Pairs returns the elements of a RESP2 flat array or RESP3 map as pairs
// rendered "key=>value", sorted: HGETALL's fields as a set.
func (r *Reply) Pairs() ([]string, bool) {
	if !r.IsAggregate() || len(r.Elems)%2 != 0 {
		return nil, false
	}
	var out []string
	for i := 0; i < len(r.Elems); i += 2 {
		out = append(out, r.Elems[i].String()+"=>"+r.Elems[i+1].String())
	}
	slices.Sort(out)
	return out, true
}

// Escape renders raw bytes readably for failure messages: Go-quoted, with
// long inputs cut in the middle.
func Escape(b []byte) string {
	const keep = 300
	if len(b) <= 2*keep {
		return strconv.Quote(string(b))
	}
	return strconv.Quote(string(b[:keep])) + fmt.Sprintf("…(%d bytes)…", len(b)-2*keep) + strconv.Quote(string(b[len(b)-keep:]))
}
