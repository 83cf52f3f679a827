package resp

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// FuzzReader feeds arbitrary bytes in arbitrary chunk sizes: the reader must
// never panic, never hold a buffer much larger than the data it was given,
// and parse the same commands whatever the chunking.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "PING\r\n", "GET \"a\\x41\" 'b'\r\n", "*1\r\n$536870913\r\n",
		"*-1\r\n\r\n*0\r\n", "*1\r\nx\r\n", "GET \"a\r\n", "*3\r\n$1\r\na\r\n$0\r\n\r\n$2\r\nbc\r\n",
	} {
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(200))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		n := int(chunk) + 1
		got, r, err := readAll(data, n, 0)
		if c := r.BufferCap(); c > 2*len(data)+2*ioBufLen {
			t.Fatalf("buffer of %d for %d bytes of input", c, len(data))
		}
		whole, _, werr := readAll(data, 1<<20, 0)
		if fmt.Sprint(got) != fmt.Sprint(whole) {
			t.Fatalf("chunked %q, whole %q", got, whole)
		}
		var pe, wpe *ProtocolError
		if errors.As(err, &pe) != errors.As(werr, &wpe) {
			// Chunking can only change when a too-long line is noticed,
			// never whether a complete request is valid.
			if !(isLongLine(err) || isLongLine(werr)) {
				t.Fatalf("chunked error %v, whole error %v", err, werr)
			}
		}
	})
}

func isLongLine(err error) bool {
	return err != nil && bytes.Contains([]byte(err.Error()), []byte("too big"))
}

// FuzzReaderRoundTrip builds valid multibulk commands from fuzz input and
// checks the reader returns exactly them (a simple encoder is the reference).
func FuzzReaderRoundTrip(f *testing.F) {
	f.Add([]byte("GET\x00key"), uint8(3))
	f.Add([]byte("ECHO\x00\x00\r\n\x00"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		// NUL-separated arguments; a 0x01 byte ends a command.
		var cmds [][]string
		for _, c := range bytes.Split(data, []byte{1}) {
			var args []string
			for _, a := range bytes.Split(c, []byte{0}) {
				args = append(args, string(a))
			}
			cmds = append(cmds, args)
		}
		got, _, err := readAll(encode(cmds), int(chunk)+1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", cmds) {
			t.Fatalf("got %q, want %q", got, cmds)
		}
	})
}

// FuzzSplitArgs: inline parsing never panics, and re-quoting the arguments
// it returns parses back to the same arguments.
func FuzzSplitArgs(f *testing.F) {
	f.Add([]byte(`SET "a\x41" 'b\'c' d`))
	f.Fuzz(func(t *testing.T, line []byte) {
		if bytes.IndexByte(line, 0) >= 0 || bytes.IndexByte(line, '\n') >= 0 {
			return
		}
		args, ok := SplitArgs(line)
		if !ok {
			return
		}
		var q []byte
		for _, a := range args {
			q = append(q, '"')
			for _, c := range a {
				q = fmt.Appendf(q, "\\x%02x", c)
			}
			q = append(q, '"', ' ')
		}
		back, ok := SplitArgs(q)
		if !ok || fmt.Sprintf("%q", back) != fmt.Sprintf("%q", args) {
			t.Fatalf("%q -> %q -> %q", line, args, back)
		}
	})
}
