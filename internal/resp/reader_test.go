package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// chunkReader returns its data in reads of at most n bytes.
type chunkReader struct {
	data []byte
	n    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(r.n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// readAll parses every command in data, read in chunks of n bytes. It
// returns the commands (copied) and the first error other than io.EOF.
func readAll(data []byte, n int, limit int64) ([][]string, *Reader, error) {
	r := NewReader(&chunkReader{data: data, n: n})
	r.QueryBufferLimit = limit
	var out [][]string
	for {
		err := r.Fill()
		for {
			args, ok, perr := r.Next()
			if perr != nil {
				return out, r, perr
			}
			if !ok {
				break
			}
			cmd := make([]string, len(args))
			for i, a := range args {
				cmd[i] = string(a)
			}
			out = append(out, cmd)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, r, nil
			}
			return out, r, err
		}
	}
}

func encode(cmds [][]string) []byte {
	var b []byte
	for _, c := range cmds {
		b = fmt.Appendf(b, "*%d\r\n", len(c))
		for _, a := range c {
			b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	return b
}

func TestReaderCommands(t *testing.T) {
	big := strings.Repeat("x", 100_000)
	tests := []struct {
		name string
		in   string
		want [][]string
		err  string
	}{
		{"multibulk", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", [][]string{{"GET", "k"}}, ""},
		{"pipeline", "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", [][]string{{"PING"}, {"ECHO", ""}}, ""},
		{"binary", "*1\r\n$4\r\n\x00\r\n\xff\r\n", [][]string{{"\x00\r\n\xff"}}, ""},
		{"big arg", "*2\r\n$4\r\nECHO\r\n$100000\r\n" + big + "\r\n", [][]string{{"ECHO", big}}, ""},
		{"empty and zero counts", "\r\n\n*0\r\n*-1\r\n*-7\r\nPING\r\n", [][]string{{"PING"}}, ""},
		{"inline", "GET k\r\nSET  a   b\n", [][]string{{"GET", "k"}, {"SET", "a", "b"}}, ""},
		{"inline quotes", `SET "a b" 'c d' "\x41\n\t" 'it\'s'` + "\r\n", [][]string{{"SET", "a b", "c d", "A\n\t", "it's"}}, ""},
		{"inline bad hex", `ECHO "\xZZ"` + "\r\n", [][]string{{"ECHO", "xZZ"}}, ""},
		{"inline vtab in token", "ECHO a\vb\r\n", [][]string{{"ECHO", "a\vb"}}, ""},
		{"inline cr inside", "ECHO a\rb\r\n", [][]string{{"ECHO", "a", "b"}}, ""},
		{"unbalanced", "GET \"a\r\n", nil, "Protocol error: unbalanced quotes in request"},
		{"quote then text", "GET \"a\"b\r\n", nil, "Protocol error: unbalanced quotes in request"},
		{"multibulk count", "*x\r\n", nil, "Protocol error: invalid multibulk length"},
		{"multibulk too many", "*2147483648\r\n", nil, "Protocol error: invalid multibulk length"},
		{"multibulk plus", "*+1\r\n", nil, "Protocol error: invalid multibulk length"},
		{"bulk length", "*1\r\n$536870913\r\n", nil, "Protocol error: invalid bulk length"},
		{"bulk negative", "*1\r\n$-1\r\n", nil, "Protocol error: invalid bulk length"},
		{"bulk leading zero", "*1\r\n$01\r\na\r\n", nil, "Protocol error: invalid bulk length"},
		{"expected dollar", "*1\r\n:1\r\n", nil, "Protocol error: expected '$', got ':'"},
		{"commands before error", "PING\r\n*1\r\n%\r\n", [][]string{{"PING"}}, "Protocol error: expected '$', got '%'"},
		{"too big mbulk count", "*" + strings.Repeat("1", 70000), nil, "Protocol error: too big mbulk count string"},
		{"too big bulk count", "*1\r\n$" + strings.Repeat("1", 70000), nil, "Protocol error: too big bulk count string"},
		{"too big inline", strings.Repeat("a", 70000), nil, "Protocol error: too big inline request"},
		{"nul stops line search", "*1\x00\r\n", nil, ""},
	}
	for _, tc := range tests {
		for _, chunk := range []int{1, 3, 7, 1 << 20} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, chunk), func(t *testing.T) {
				got, _, err := readAll([]byte(tc.in), chunk, 0)
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("commands %q, want %q", got, tc.want)
				}
				gotErr := ""
				if err != nil {
					var pe *ProtocolError
					if !errors.As(err, &pe) {
						t.Fatalf("error %v is not a ProtocolError", err)
					}
					gotErr = err.Error()
				}
				if gotErr != tc.err {
					t.Errorf("error %q, want %q", gotErr, tc.err)
				}
			})
		}
	}
}

func TestReaderUnauthenticatedLimits(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{"*11\r\n", "Protocol error: unauthenticated multibulk length"},
		{"*1\r\n$16385\r\n", "Protocol error: unauthenticated bulk length"},
		{"*10\r\n", ""},
		{"*1\r\n$16384\r\n", ""},
	} {
		r := NewReader(strings.NewReader(tc.in))
		r.Unauthenticated = true
		r.Fill()
		_, _, err := r.Next()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.err {
			t.Errorf("%q: error %q, want %q", tc.in, got, tc.err)
		}
	}
}

// A claimed length allocates nothing until the bytes arrive.
func TestReaderDoesNotTrustClaimedLengths(t *testing.T) {
	r := NewReader(&chunkReader{data: []byte("*1\r\n$536870000\r\nabc"), n: 1 << 20})
	r.Fill()
	if _, ok, err := r.Next(); ok || err != nil {
		t.Fatalf("Next: %v %v", ok, err)
	}
	if c := r.BufferCap(); c > ioBufLen {
		t.Fatalf("buffer grew to %d on a claimed length", c)
	}
	r = NewReader(&chunkReader{data: []byte("*1000000000\r\n"), n: 1 << 20})
	r.Fill()
	r.Next()
	if c := cap(r.offs); c > 64 {
		t.Fatalf("argument offsets grew to %d on a claimed count", c)
	}
}

// Big arguments arrive in pieces; the buffer stays within twice the data.
func TestReaderBigArgumentMemory(t *testing.T) {
	const n = 8 << 20
	data := encode([][]string{{"ECHO", strings.Repeat("z", n)}, {"PING"}})
	got, r, err := readAll(data, 64<<10, 0)
	if err != nil || len(got) != 2 || len(got[0][1]) != n {
		t.Fatalf("got %d commands, err %v", len(got), err)
	}
	if c := r.BufferCap(); c > ioBufLen {
		t.Fatalf("buffer of %d kept after the big command", c)
	}
}

func TestReaderQueryBufferLimit(t *testing.T) {
	data := encode([][]string{{"ECHO", strings.Repeat("z", 3<<20)}})
	_, r, err := readAll(data, 64<<10, 1<<20)
	if !errors.Is(err, ErrQueryBufferLimit) {
		t.Fatalf("err %v, want ErrQueryBufferLimit", err)
	}
	if c := r.BufferCap(); c > 4<<20 {
		t.Fatalf("buffer grew to %d past the 1 MiB limit", c)
	}
	// Many complete commands together beyond the limit are fine: only a
	// single pending request counts.
	var cmds [][]string
	for i := 0; i < 3000; i++ {
		cmds = append(cmds, []string{"ECHO", strings.Repeat("y", 1000)})
	}
	got, _, err := readAll(encode(cmds), 1<<20, 1<<20)
	if err != nil || len(got) != len(cmds) {
		t.Fatalf("%d commands, err %v", len(got), err)
	}
}

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", nil, true},
		{"  a  b ", []string{"a", "b"}, true},
		{`"a\"b"`, []string{`a"b`}, true},
		{`"\x4a\x4B"`, []string{"JK"}, true},
		{`"\x4"`, []string{"x4"}, true},
		{`'a\nb'`, []string{`a\nb`}, true},
		{`"a`, nil, false},
		{`'a`, nil, false},
		{`"a"b`, nil, false},
		{`""`, []string{""}, true},
		{`a"b"`, []string{"ab"}, true},
	} {
		got, ok := SplitArgs([]byte(tc.in))
		var gs []string
		for _, g := range got {
			gs = append(gs, string(g))
		}
		if ok != tc.ok || fmt.Sprint(gs) != fmt.Sprint(tc.want) {
			t.Errorf("SplitArgs(%q) = %q %v, want %q %v", tc.in, gs, ok, tc.want, tc.ok)
		}
	}
}

func TestParseInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"-0", 0, false}, {"01", 0, false}, {"+1", 0, false}, {"", 0, false}, {"-", 0, false},
		{"9223372036854775807", 1<<63 - 1, true}, {"9223372036854775808", 0, false},
		{"-9223372036854775808", -1 << 63, true}, {"-9223372036854775809", 0, false},
		{" 1", 0, false}, {"1 ", 0, false}, {"123", 123, true}, {"-42", -42, true},
	} {
		got, ok := ParseInt([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseInt(%q) = %d %v, want %d %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestWriter(t *testing.T) {
	w2, w3 := NewWriter(), NewWriter()
	w3.Proto = 3
	for _, w := range []*Writer{w2, w3} {
		w.Null()
		w.NullArray()
		w.Map(1)
		w.Set(2)
		w.Bool(true)
		w.Double(1.5)
		w.Verbatim("txt", []byte("hi"))
		w.BigNumber("12")
		w.Push(1)
		w.Error("ERR a\r\nb")
	}
	if got, want := string(w2.Bytes()), "$-1\r\n*-1\r\n*2\r\n*2\r\n:1\r\n$3\r\n1.5\r\n$2\r\nhi\r\n$2\r\n12\r\n*1\r\n-ERR a  b\r\n"; got != want {
		t.Errorf("RESP2 %q, want %q", got, want)
	}
	if got, want := string(w3.Bytes()), "_\r\n_\r\n%1\r\n~2\r\n#t\r\n,1.5\r\n=6\r\ntxt:hi\r\n(12\r\n>1\r\n-ERR a  b\r\n"; got != want {
		t.Errorf("RESP3 %q, want %q", got, want)
	}
}

// The GET path parses without allocating in steady state.
func TestReaderNoAllocs(t *testing.T) {
	req := bytes.Repeat([]byte("*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n"), 100)
	src := &loopReader{data: req}
	r := NewReader(src)
	allocs := testing.AllocsPerRun(100, func() {
		src.off = 0
		r.Fill()
		for {
			_, ok, _ := r.Next()
			if !ok {
				break
			}
		}
	})
	if allocs > 0 {
		t.Fatalf("%v allocations per batch", allocs)
	}
}

type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.off:])
	l.off += n
	return n, nil
}
