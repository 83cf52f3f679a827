package input

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

// FuzzParseJSONL checks that the hand-written JSON Lines parser never panics
// and only accepts valid JSON; what it accepts as a plain "key" string must
// be what encoding/json decodes.
func FuzzParseJSONL(f *testing.F) {
	for _, s := range []string{
		`{"key":"k","value":"v"}`,
		`{"key":"k","value":12.5e3}`,
		`{"key":"k","hash":{"a":"1","b":2,"a":"3"}}`,
		`{"key_b64":"AP8=","hash_b64":{"Zg==":"dg=="}}`,
		`{"key":"a\u00e9\ud83d\ude00\"","value_b64":"Pz8\/"}`,
		`{"key":"k","value":null}`,
		`{"key":"k","hash":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var p Parser
		var r Record
		if err := p.Parse(line, &r); err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if !json.Valid(line) {
			t.Fatalf("accepted invalid JSON %q", line)
		}
		if r.Kind == KindHash && len(r.Hash) == 0 {
			t.Fatalf("accepted an empty hash: %q", line)
		}
		var doc map[string]json.RawMessage
		dec := json.NewDecoder(bytes.NewReader(line))
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("accepted %q, encoding/json says %v", line, err)
		}
		if raw, ok := doc["key"]; ok && len(raw) > 0 && raw[0] == '"' {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil || s != string(r.Key) {
				t.Fatalf("key %q, encoding/json decodes %q (%v)", r.Key, s, err)
			}
		}
		// Parsing again with the same parser gives the same record.
		want := render(&r)
		if err := p.Parse(line, &r); err != nil || render(&r) != want {
			t.Fatalf("second parse differs: %v", err)
		}
	})
}

// FuzzCSV checks that the CSV and TSV readers never panic and report
// problems as errors naming the file and line.
func FuzzCSV(f *testing.F) {
	for _, s := range []string{
		"k,v\n", "key,value\nk,v\n", "\"a\nb\",c\n", "a,b,c\n", "a\tb\n", "\"unterminated\n", "a,\"b\"\"c\"\r\n",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, tsv bool) {
		r := NewCSVParser("fuzz.csv", bytes.NewReader(data), tsv, HeaderAuto)
		var rec Record
		for range 100000 {
			err := r.Next(&rec)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				var ie *Error
				if !errors.As(err, &ie) || ie.File.Path != "fuzz.csv" {
					t.Fatalf("error %v does not name the file", err)
				}
				return
			}
			if rec.Kind != KindString || rec.Line < 1 {
				t.Fatalf("bad record %+v", rec)
			}
		}
		t.Fatal("more records than input bytes")
	})
}
