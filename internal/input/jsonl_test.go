package input

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fields renders a record for comparison: "k=v" or "k{f=v,g=w}".
func render(r *Record) string {
	if r.Kind == KindString {
		return string(r.Key) + "=" + string(r.Value)
	}
	var b strings.Builder
	b.WriteString(string(r.Key) + "{")
	for i, f := range r.Hash {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(string(f.Name) + "=" + string(f.Value))
	}
	return b.String() + "}"
}

func TestParseJSONL(t *testing.T) {
	tests := []struct {
		line, want string
	}{
		{`{"key":"k","value":"v"}`, "k=v"},
		{` { "value" : "v" , "key" : "k" } `, "k=v"},
		{`{"key":"k","value":""}`, "k="},
		{`{"key":"","value":"empty key"}`, "=empty key"},
		{`{"key":"k","value":42}`, "k=42"},
		{`{"key":"k","value":-7}`, "k=-7"},
		{`{"key":"k","value":-0}`, "k=-0"},
		{`{"key":"k","value":123456789012345678901234567890}`, "k=123456789012345678901234567890"},
		{`{"key":"k","value":1.50}`, "k=1.5"},
		{`{"key":"k","value":1e3}`, "k=1000"},
		{`{"key":"k","value":2.5E-3}`, "k=0.0025"},
		{`{"key":"k","value":1.0}`, "k=1"},
		{`{"key":"k","value":0.1}`, "k=0.1"},
		{`{"key":12,"value":"numeric key"}`, "12=numeric key"},
		{`{"key":"a\"b\\c\/d\n\t\u00e9\ud83d\ude00","value":"x"}`, "a\"b\\c/d\n\té😀=x"},
		{`{"key":"héllo","value":"wörld"}`, "héllo=wörld"},
		{`{"key_b64":"AP8=","value_b64":"AAEC"}`, "\x00\xff=\x00\x01\x02"},
		{`{"key_b64":"a2V5","value_b64":""}`, "key="},
		{`{"key":"k","value_b64":"Pz8\/"}`, "k=???"}, // an escaped '/' inside base64
		{`{"key":"k","hash":{"b":"1","a":2,"c":"x"}}`, "k{b=1,a=2,c=x}"},
		{`{"key":"k","hash":{"f":"1","g":"x","f":"2"}}`, "k{f=2,g=x}"}, // as HSET k f 1 g x f 2
		{`{"key":"k","hash":{"n":1.25e2,"big":99999999999999999999}}`, "k{n=125,big=99999999999999999999}"},
		{`{"key":"k","hash_b64":{"AP8=":"AA==","Zg==":"dg=="}}`, "k{\x00\xff=\x00,f=v}"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			var p Parser
			var r Record
			if err := p.Parse([]byte(tt.line), &r); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := render(&r); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseJSONLDuplicateFieldsManyFields(t *testing.T) {
	// Above 32 fields the parser merges repeated names with a map: same rule.
	var b strings.Builder
	b.WriteString(`{"key":"k","hash":{`)
	for i := range 40 {
		b.WriteString(`"f` + strconv.Itoa(i) + `":"1",`)
	}
	b.WriteString(`"f0":"last","f1":"2"}}`)
	var p Parser
	var r Record
	if err := p.Parse([]byte(b.String()), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Hash) != 40 || string(r.Hash[0].Name) != "f0" || string(r.Hash[0].Value) != "last" || string(r.Hash[1].Value) != "2" {
		t.Fatalf("got %d fields, first %s=%s", len(r.Hash), r.Hash[0].Name, r.Hash[0].Value)
	}
}

func TestParseJSONLErrors(t *testing.T) {
	tests := []struct {
		line, want string
	}{
		{`not json`, "malformed JSON: expected a JSON object"},
		{`{"key":"k","value":"v"`, "malformed JSON"},
		{`{"key":"k","value":"v}`, "unterminated string"},
		{`{"key":"k" "value":"v"}`, "expected ',' or '}'"},
		{`{key:"k"}`, "field name in double quotes"},
		{`{"value":"v"}`, `missing "key"`},
		{`{}`, `missing "key"`},
		{`{"key":"k"}`, "missing value"},
		{`{"key":"k","value":"v","hash":{"a":"b"}}`, "more than one of"},
		{`{"key":"k","value":"v","value_b64":"dg=="}`, "more than one of"},
		{`{"key":"k","key_b64":"aw==","value":"v"}`, `both "key" and "key_b64"`},
		{`{"key":"k","value":null}`, "value must be a string or a number, got null"},
		{`{"key":"k","value":true}`, "value must be a string or a number, got a boolean"},
		{`{"key":"k","value":[1]}`, "value must be a string or a number, got an array"},
		{`{"key":"k","value":{"a":1}}`, "value must be a string or a number, got an object"},
		{`{"key":null,"value":"v"}`, "key must be a string or a number, got null"},
		{`{"key":"k","hash":{"a":null}}`, `hash field "a" must be a string or a number, got null`},
		{`{"key":"k","hash":{"a":[1]}}`, "got an array"},
		{`{"key":"k","hash":{"a":{"b":1}}}`, "got an object"},
		{`{"key":"k","hash":"x"}`, "hash must be an object"},
		{`{"key":"k","hash":{}}`, "hash is empty; Redis cannot hold an empty hash"},
		{`{"key":"k","hash_b64":{}}`, "hash_b64 is empty"},
		{`{"key":"k","value_b64":"!!"}`, "value_b64 is not valid standard base64"},
		{`{"key_b64":"a","value":"v"}`, "key_b64 is not valid standard base64"},
		{`{"key":"k","value_b64":3}`, "value_b64 must be a base64 string, got a number"},
		{`{"key":"k","hash_b64":{"Zg==":"%%"}}`, "hash_b64 field value is not valid standard base64"},
		{`{"key":"k","hash_b64":{"%%":"Zg=="}}`, "hash_b64 field name is not valid standard base64"},
		{"{\"key\":\"k\",\"value\":\"\xff\"}", "value holds invalid UTF-8; send raw bytes base64-encoded in value_b64"},
		{"{\"key\":\"\xc3\x28\",\"value\":\"v\"}", "key holds invalid UTF-8; send raw bytes base64-encoded in key_b64"},
		{"{\"key\":\"k\",\"hash\":{\"\xff\":\"v\"}}", "hash field name holds invalid UTF-8"},
		{`{"key":"k","value":"\ud800"}`, "unpaired UTF-16 surrogate"},
		{`{"key":"k","value":"\x"}`, `invalid escape '\x'`},
		{`{"key":"k","value":"\u12"}`, `bad \u escape`},
		{"{\"key\":\"k\",\"value\":\"a\tb\"}", "control character 0x09"},
		{`{"key":"k","valeu":"v"}`, `unknown field "valeu"`},
		{`{"key":"k","value":"v","ttl":5}`, `unknown field "ttl"`},
		{`{"key":"k","key":"j","value":"v"}`, `field "key" given twice`},
		{`{"key":"k","value":"v"} x`, "unexpected data after the JSON object"},
		{`{"key":"k","value":"v"}{"key":"j","value":"w"}`, "unexpected data after the JSON object"},
		{`{"key":"k","value":01}`, "invalid number"},
		{`{"key":"k","value":1.}`, "invalid number"},
		{`{"key":"k","value":-}`, "invalid number"},
		{`{"key":"k","value":1e}`, "invalid number"},
		{`{"key":"k","value":1e999}`, "out of range"},
		{`{"key":"k","value":NaN}`, "got malformed JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			var p Parser
			var r Record
			err := p.Parse([]byte(tt.line), &r)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%s) = %v, want an error containing %q", tt.line, err, tt.want)
			}
		})
	}
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// readAll reads every record of path (format detected) as rendered strings
// with their lines.
func readAll(t *testing.T, path string, format Format, opts Options) ([]string, []int64, error) {
	t.Helper()
	files, err := Expand([]string{path}, format)
	if err != nil {
		return nil, nil, err
	}
	var out []string
	var lines []int64
	for _, f := range files {
		rd, err := Open(f, opts)
		if err != nil {
			return out, lines, err
		}
		var r Record
		for {
			err := rd.Next(&r)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rd.Close()
				return out, lines, err
			}
			out = append(out, render(&r))
			lines = append(lines, r.Line)
		}
		if err := rd.Close(); err != nil {
			return out, lines, err
		}
	}
	return out, lines, nil
}

func TestJSONLFileErrorsNameFileAndLine(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "part-00000.jsonl", []byte("{\"key\":\"a\",\"value\":\"1\"}\n\n   \r\n{\"key\":\"b\",\"valeu\":\"2\"}\n"))
	got, lines, err := readAll(t, p, FormatAuto, Options{})
	if err == nil || !strings.Contains(err.Error(), p+`:4: unknown field "valeu"`) {
		t.Fatalf("err = %v, want one naming %s:4", err, p)
	}
	if len(got) != 1 || got[0] != "a=1" || lines[0] != 1 {
		t.Fatalf("records before the error = %q at %v", got, lines)
	}
}

func TestJSONLBlankLinesAndCRLF(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "x.ndjson", []byte("\n{\"key\":\"a\",\"value\":\"1\"}\r\n\n{\"key\":\"b\",\"value\":2}"))
	got, lines, err := readAll(t, p, FormatAuto, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "a=1 b=2" || lines[0] != 2 || lines[1] != 4 {
		t.Fatalf("got %q at lines %v", got, lines)
	}
}

func TestJSONLLineTooLong(t *testing.T) {
	dir := t.TempDir()
	long := `{"key":"k","value":"` + strings.Repeat("x", 5000) + `"}`
	p := writeFile(t, dir, "x.jsonl", []byte(`{"key":"a","value":"1"}`+"\n"+long+"\n"))
	_, _, err := readAll(t, p, FormatAuto, Options{MaxLine: 1000})
	if err == nil || !strings.Contains(err.Error(), p+":2: line longer than 1000 bytes") {
		t.Fatalf("err = %v", err)
	}
	// The same line within the bound reads, also across the reader's buffer.
	huge := `{"key":"k","value":"` + strings.Repeat("y", 3<<20) + `"}`
	p = writeFile(t, dir, "y.jsonl", []byte(huge+"\n"))
	got, _, err := readAll(t, p, FormatAuto, Options{})
	if err != nil || len(got) != 1 || len(got[0]) != 2+3<<20 {
		t.Fatalf("a 3 MiB line: %v", err)
	}
}
