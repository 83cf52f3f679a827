package input

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

// TestOpenRange tiles files into ranges of every size and checks that the
// ranges together read every record exactly once, at the right line.
func TestOpenRange(t *testing.T) {
	for name, data := range map[string]string{
		"plain":      `{"key":"a","value":"1"}` + "\n" + `{"key":"bb","value":"22"}` + "\n" + `{"key":"c","value":"333"}` + "\n",
		"blank":      "\n\n" + `{"key":"a","value":"1"}` + "\n\n" + `{"key":"b","value":"2"}` + "\n\n",
		"no newline": `{"key":"a","value":"1"}` + "\n" + `{"key":"b","value":"2"}`,
		"crlf":       `{"key":"a","value":"1"}` + "\r\n" + `{"key":"b","hash":{"f":"v"}}` + "\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "x.jsonl", []byte(data))
			files, err := Expand([]string{p}, FormatAuto)
			if err != nil {
				t.Fatal(err)
			}
			f := files[0]
			want, wantLines, err := readAll(t, p, FormatAuto, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for size := int64(1); size <= f.Size+1; size++ {
				var got []string
				var lines []int64
				for start := int64(0); start < f.Size; start += size {
					rd, err := OpenRange(f, start, start+size, Options{})
					if err != nil {
						t.Fatal(err)
					}
					base, err := LineBase(f, start)
					if err != nil {
						t.Fatal(err)
					}
					var r Record
					for {
						err := rd.Next(&r)
						if errors.Is(err, io.EOF) {
							break
						}
						if err != nil {
							t.Fatalf("size %d start %d: %v", size, start, err)
						}
						got = append(got, render(&r))
						lines = append(lines, base+r.Line)
					}
					rd.Close()
				}
				if !slices.Equal(got, want) || !slices.Equal(lines, wantLines) {
					t.Fatalf("ranges of %d bytes read %q at %v, want %q at %v", size, got, lines, want, wantLines)
				}
			}
		})
	}
}

func TestOpenRangeErrorLine(t *testing.T) {
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, `{"key":"k%d","value":"%d"}`+"\n", i, i)
	}
	b.WriteString(`{"key":"bad"}` + "\n")
	p := writeFile(t, t.TempDir(), "x.jsonl", []byte(b.String()))
	files, _ := Expand([]string{p}, FormatAuto)
	start := files[0].Size / 2
	rd, _ := OpenRange(files[0], start, files[0].Size, Options{})
	defer rd.Close()
	var r Record
	var err error
	for err == nil {
		err = rd.Next(&r)
	}
	var ie *Error
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v", err)
	}
	base, _ := LineBase(files[0], start)
	if base+ie.Line != 101 {
		t.Fatalf("error at range line %d + base %d, want file line 101", ie.Line, base)
	}
}
