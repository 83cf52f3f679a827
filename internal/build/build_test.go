package build

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/gen"
	"github.com/batchkv/batchkv/internal/store"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func write(t *testing.T, path, data string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func openDB(t *testing.T, dir string) *store.DB {
	t.Helper()
	db, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// get returns a key's value as "s:<bytes>" or "h:f=v,…", or "" when missing.
func get(t *testing.T, db *store.DB, key []byte) string {
	t.Helper()
	v, c, err := db.Get(key)
	if errors.Is(err, store.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v.Type == store.TypeString {
		return "s:" + string(v.Data)
	}
	var parts []string
	if err := v.Hash().Range(func(f, val []byte) bool {
		parts = append(parts, string(f)+"="+string(val))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return "h:" + strings.Join(parts, ",")
}

func genWant(r gen.Record) string {
	if r.Fields == nil {
		return "s:" + r.Value
	}
	var parts []string
	for _, f := range r.Fields {
		parts = append(parts, f.Name+"="+strconv.FormatInt(f.Value, 10))
	}
	return "h:" + strings.Join(parts, ",")
}

// dump returns every key and value of db in stored order.
func dump(t *testing.T, db *store.DB) []byte {
	t.Helper()
	var out bytes.Buffer
	cursor := uint64(0)
	for {
		next, err := db.Scan(cursor, 1000, func(key []byte, v store.Value) error {
			fmt.Fprintf(&out, "%q %d %q\n", key, v.Type, v.Data)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if next == 0 {
			return out.Bytes()
		}
		cursor = next
	}
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	const n = 20000
	if _, err := gen.Generate(context.Background(), gen.Options{Dir: filepath.Join(dir, "gen"), Keys: n, Seed: 3, Parts: 3, Gzip: true}); err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	extra := write(t, filepath.Join(dir, "extra.jsonl"), strings.Join([]string{
		`{"key_b64":"` + b64([]byte("bin\x00\xff\xfe")) + `","value_b64":"` + b64([]byte{0, 1, 2, 0xff}) + `"}`,
		`{"key":"empty","value":""}`,
		`{"key":"","value":"the empty key"}`,
		`{"key":"big","value":"` + big + `"}`,
		`{"key":"float","value":2.50}`,
		`{"key":"h","hash":{"z":"1","a":"2","z":"3"}}`,
		`{"key_b64":"` + b64([]byte("hb\xff")) + `","hash_b64":{"` + b64([]byte("\x00f")) + `":"` + b64([]byte("\xffv")) + `","` + b64(nil) + `":""}}`,
	}, "\n")+"\n")
	csv := write(t, filepath.Join(dir, "c.csv"), "key,value\ncsv1,\"a,b\"\ncsv2,\n")
	out := filepath.Join(dir, "versions", "v1")
	meta, err := Build(context.Background(), Options{Inputs: []string{filepath.Join(dir, "gen"), extra, csv}, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, out)
	m := db.Meta()
	if m.Name != "v1" || m.Version == "" || m.Format != store.FormatVersion || m.ToolVersion == "" {
		t.Fatalf("meta = %+v", m)
	}
	if _, err := time.Parse(VersionLayout, m.Version); err != nil {
		t.Fatalf("default version %q is not a timestamp: %v", m.Version, err)
	}
	if m.Keys != n+9 || m.Keys != meta.Keys {
		t.Fatalf("keys = %d, want %d", m.Keys, n+9)
	}
	var strs, hashes, fields int64
	for i := range int64(n) {
		r := gen.RecordAt(3, i)
		if got, want := get(t, db, []byte(r.Key)), genWant(r); got != want {
			t.Fatalf("key %s = %q, want %q", r.Key, got, want)
		}
		if r.Fields == nil {
			strs++
		} else {
			hashes++
			fields += int64(len(r.Fields))
		}
	}
	if m.Strings != strs+7 || m.Hashes != hashes+2 || m.HashFields != fields+4 {
		t.Fatalf("counts %d strings %d hashes %d fields, want %d %d %d", m.Strings, m.Hashes, m.HashFields, strs+7, hashes+2, fields+4)
	}
	for key, want := range map[string]string{
		"bin\x00\xff\xfe": "s:\x00\x01\x02\xff",
		"empty":           "s:",
		"":                "s:the empty key",
		"big":             "s:" + big,
		"float":           "s:2.5",
		"h":               "h:z=3,a=2",
		"hb\xff":          "h:\x00f=\xffv,=",
		"csv1":            "s:a,b",
		"csv2":            "s:",
		"missing":         "",
	} {
		if got := get(t, db, []byte(key)); got != want {
			t.Errorf("key %q = %.80q, want %.80q", key, got, want)
		}
	}
	if len(m.Inputs) != 5 {
		t.Fatalf("inputs = %+v", m.Inputs)
	}
	var recs int64
	for _, in := range m.Inputs[:3] {
		if in.Format != "jsonl" || in.Compression != "gzip" || in.Bytes == 0 {
			t.Fatalf("input %+v", in)
		}
		recs += in.Records
	}
	if recs != n || m.Inputs[3].Records != 7 || m.Inputs[4].Format != "csv" || m.Inputs[4].Records != 2 {
		t.Fatalf("inputs = %+v", m.Inputs)
	}
	// No WAL, no temporary files left beside the output.
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Fatalf("output parent holds %v", entries)
	}
	logs, _ := filepath.Glob(filepath.Join(out, store.DBDir, "*.log"))
	for _, l := range logs {
		if fi, err := os.Stat(l); err == nil && fi.Size() > 0 {
			t.Fatalf("WAL %s left with %d bytes", l, fi.Size())
		}
	}
}

func TestParquetBuild(t *testing.T) {
	dir := t.TempDir()
	const n = 5000
	if _, err := gen.Generate(context.Background(), gen.Options{Dir: filepath.Join(dir, "gen"), Keys: n, Seed: 9, Parts: 2, Format: gen.FormatParquet}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "v")
	if _, err := Build(context.Background(), Options{Inputs: []string{filepath.Join(dir, "gen")}, Out: out, Name: "features", Version: "2024-01-02.1"}); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, out)
	if m := db.Meta(); m.Keys != n || m.Name != "features" || m.Version != "2024-01-02.1" || m.Inputs[0].Format != "parquet" {
		t.Fatalf("meta = %+v", m)
	}
	for i := range int64(n) {
		r := gen.RecordAt(9, i)
		if got, want := get(t, db, []byte(r.Key)), genWant(r); got != want {
			t.Fatalf("key %s = %q, want %q", r.Key, got, want)
		}
	}
}

// TestSpill builds with a budget far below the data and checks that the
// external sort really spilled many runs and produced the same dataset as a
// build that fits in memory.
func TestSpill(t *testing.T) {
	dir := t.TempDir()
	const n = 60000 // about 8 MB encoded
	if _, err := gen.Generate(context.Background(), gen.Options{Dir: filepath.Join(dir, "gen"), Keys: n, Seed: 5, Parts: 4}); err != nil {
		t.Fatal(err)
	}
	// Duplicates far apart in the input land in different runs.
	first := gen.RecordAt(5, 10)
	dups := write(t, filepath.Join(dir, "z-dups.jsonl"), `{"key":"`+first.Key+`","value":"late"}`+"\n")
	inputs := []string{filepath.Join(dir, "gen"), dups}

	core, logs := observer.New(zap.InfoLevel)
	small := filepath.Join(dir, "small")
	if _, err := Build(context.Background(), Options{Inputs: inputs, Out: small, Version: "v", Memory: 1 << 20, OnDuplicate: DuplicateLast, Logger: zap.New(core)}); err != nil {
		t.Fatal(err)
	}
	sorted := logs.FilterMessage("input read and sorted").All()
	if len(sorted) != 1 {
		t.Fatalf("log lines: %v", logs.All())
	}
	if runs := sorted[0].ContextMap()["spilled_runs"].(int64); runs < 8 {
		t.Fatalf("only %d runs spilled with a 1 MiB budget", runs)
	}
	bigOut := filepath.Join(dir, "big")
	if _, err := Build(context.Background(), Options{Inputs: inputs, Out: bigOut, Version: "v", OnDuplicate: DuplicateLast}); err != nil {
		t.Fatal(err)
	}
	a, b := openDB(t, small), openDB(t, bigOut)
	da, dbb := dump(t, a), dump(t, b)
	if !bytes.Equal(da, dbb) {
		t.Fatalf("spilled build differs from in-memory build (%d vs %d bytes of dump)", len(da), len(dbb))
	}
	if a.Meta().Keys != n || get(t, a, []byte(first.Key)) != "s:late" {
		t.Fatalf("keys %d, dup = %q", a.Meta().Keys, get(t, a, []byte(first.Key)))
	}
	// The same duplicate across runs is an error by default.
	_, err := Build(context.Background(), Options{Inputs: inputs, Out: filepath.Join(dir, "err"), Version: "v", Memory: 1 << 20})
	var de *DuplicateError
	if !errors.As(err, &de) || string(de.Key) != first.Key || !strings.HasSuffix(de.Second, "z-dups.jsonl:1") {
		t.Fatalf("err = %v", err)
	}
}

func TestDuplicates(t *testing.T) {
	dir := t.TempDir()
	a := write(t, filepath.Join(dir, "in", "a.jsonl"), `{"key":"x","value":"a1"}`+"\n"+`{"key":"dup\n\u00ff","value":"a2"}`+"\n"+`{"key":"y","value":"a3"}`+"\n")
	b := write(t, filepath.Join(dir, "in", "b.jsonl"), `{"key":"z","value":"b1"}`+"\n\n"+`{"key":"dup\n\u00ff","hash":{"f":"b3"}}`+"\n"+`{"key":"y","value":"b4"}`+"\n")
	tests := []struct {
		name   string
		inputs []string
		dup    Duplicate
		want   string // the value of the duplicate key, or the error
	}{
		{"error", []string{a, b}, "", `build: duplicate key "dup\nÿ" at ` + a + `:2 and at ` + b + `:3 (pass --on-duplicate first or last to keep one)` +
			"|" + `build: duplicate key "y" at ` + a + `:3 and at ` + b + `:4 (pass --on-duplicate first or last to keep one)`},
		{"error reversed", []string{b, a}, DuplicateFail, `build: duplicate key "dup\nÿ" at ` + b + `:3 and at ` + a + `:2` +
			"|" + `build: duplicate key "y" at ` + b + `:4 and at ` + a + `:3`},
		{"first", []string{a, b}, DuplicateFirst, "s:a2"},
		{"last", []string{a, b}, DuplicateLast, "h:f=b3"},
		{"first reversed", []string{b, a}, DuplicateFirst, "h:f=b3"},
		{"last reversed", []string{b, a}, DuplicateLast, "s:a2"},
		{"directory order", []string{filepath.Join(dir, "in")}, DuplicateLast, "h:f=b3"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, fmt.Sprintf("out%d", i))
			_, err := Build(context.Background(), Options{Inputs: tt.inputs, Out: out, Version: "v", OnDuplicate: tt.dup})
			if strings.HasPrefix(tt.want, "build:") {
				// Either duplicate may be found first: partitions merge in parallel.
				want1, want2, _ := strings.Cut(tt.want, "|")
				if err == nil || !(strings.HasPrefix(err.Error(), want1) || strings.HasPrefix(err.Error(), want2)) || !errors.Is(err, ErrDuplicate) {
					t.Fatalf("err = %v\nwant %s", err, tt.want)
				}
				if _, serr := os.Stat(out); !os.IsNotExist(serr) {
					t.Fatalf("failed build left %s", out)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			db := openDB(t, out)
			if got := get(t, db, []byte("dup\n\u00ff")); got != tt.want {
				t.Fatalf("dup = %q, want %q", got, tt.want)
			}
			aFirst := tt.inputs[0] != b
			wantY := map[bool]string{true: "s:a3", false: "s:b4"}[(tt.dup == DuplicateFirst) == aFirst]
			if got := get(t, db, []byte("y")); got != wantY {
				t.Fatalf("y = %q, want %q", got, wantY)
			}
			if db.Meta().Keys != 4 {
				t.Fatalf("keys = %d", db.Meta().Keys)
			}
		})
	}
}

// TestFailureLeavesNothing: a bad line near the end of the input fails the
// build with no output directory and no temporary files left behind, and a
// crashed build's leftovers are cleaned up by the next build.
func TestFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	if _, err := gen.Generate(context.Background(), gen.Options{Dir: filepath.Join(dir, "gen"), Keys: 30000, Parts: 2}); err != nil {
		t.Fatal(err)
	}
	var lines strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&lines, `{"key":"bad-%d","value":"%d"}`+"\n", i, i)
	}
	lines.WriteString(`{"key":"last","value":[1,2]}` + "\n")
	bad := write(t, filepath.Join(dir, "zz.jsonl"), lines.String())
	parent := filepath.Join(dir, "versions")
	if err := os.MkdirAll(filepath.Join(parent, ".v1.tmp-crashed", "runs"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(parent, "v1")
	_, err := Build(context.Background(), Options{Inputs: []string{filepath.Join(dir, "gen"), bad}, Out: out, Memory: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), bad+":5001: value must be a string or a number, got an array") {
		t.Fatalf("err = %v", err)
	}
	entries, err := os.ReadDir(parent)
	if err != nil || len(entries) != 0 {
		t.Fatalf("left behind in %s: %v %v", parent, entries, err)
	}
}

func TestBuildErrors(t *testing.T) {
	dir := t.TempDir()
	good := write(t, filepath.Join(dir, "good.jsonl"), `{"key":"k","value":"v"}`+"\n")
	blank := write(t, filepath.Join(dir, "blank.jsonl"), "\n  \n")
	exists := filepath.Join(dir, "exists")
	os.Mkdir(exists, 0o755)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"out exists", Options{Inputs: []string{good}, Out: exists}, "already exists"},
		{"no records", Options{Inputs: []string{blank}, Out: filepath.Join(dir, "o1")}, "the inputs hold no records"},
		{"no inputs", Options{Out: filepath.Join(dir, "o2")}, "no --input"},
		{"bad version", Options{Inputs: []string{good}, Out: filepath.Join(dir, "o3"), Version: "a/b"}, `invalid version "a/b"`},
		{"tiny memory", Options{Inputs: []string{good}, Out: filepath.Join(dir, "o4"), Memory: 1000}, "below the minimum"},
		{"s3", Options{Inputs: []string{"s3://b/p"}, Out: filepath.Join(dir, "o5")}, "not supported yet"},
		{"bad policy", Options{Inputs: []string{good}, Out: filepath.Join(dir, "o6"), OnDuplicate: "newest"}, "unknown duplicate policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if entries, _ := filepath.Glob(filepath.Join(dir, ".*")); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
}

func TestCancel(t *testing.T) {
	dir := t.TempDir()
	if _, err := gen.Generate(context.Background(), gen.Options{Dir: filepath.Join(dir, "gen"), Keys: 50000, Parts: 2}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Build(ctx, Options{Inputs: []string{filepath.Join(dir, "gen")}, Out: filepath.Join(dir, "v")})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1024": 1024, "512MiB": 512 << 20, "1GiB": 1 << 30, "2GB": 2e9, "1g": 1 << 30, "1.5GiB": 3 << 29, "64k": 64 << 10, "10 MB": 10e6,
	} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "1XB", "-1", "1e400"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

// TestManyTables cuts every partition into many small sstables: they must
// ingest side by side (non-overlapping) and read back like one.
func TestManyTables(t *testing.T) {
	dir := t.TempDir()
	const n = 20000
	if _, err := gen.Generate(context.Background(), gen.Options{Dir: filepath.Join(dir, "gen"), Keys: n, Seed: 11, Parts: 2}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "v")
	if _, err := Build(context.Background(), Options{Inputs: []string{filepath.Join(dir, "gen")}, Out: out, Version: "v", TableBytes: 64 << 10, Partitions: 4}); err != nil {
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(out, store.DBDir, "*.sst"))
	if len(tables) < 20 {
		t.Fatalf("%d tables, want many", len(tables))
	}
	db := openDB(t, out)
	for i := range int64(n) {
		r := gen.RecordAt(11, i)
		if got, want := get(t, db, []byte(r.Key)), genWant(r); got != want {
			t.Fatalf("key %s = %q, want %q", r.Key, got, want)
		}
	}
	if keys := bytes.Count(dump(t, db), []byte("\n")); keys != n {
		t.Fatalf("scan finds %d keys, want %d", keys, n)
	}
}

// TestParquetDuplicateNamesRows: positions in Parquet inputs are rows.
func TestParquetDuplicateNamesRows(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"a", "b"} {
		if _, err := gen.Generate(context.Background(), gen.Options{Dir: filepath.Join(dir, d), Keys: 3, Seed: 1, Format: gen.FormatParquet}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Build(context.Background(), Options{Inputs: []string{filepath.Join(dir, "a"), filepath.Join(dir, "b")}, Out: filepath.Join(dir, "v"), Version: "v"})
	var de *DuplicateError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v", err)
	}
	row := -1
	for i := range int64(3) {
		if gen.RecordAt(1, i).Key == string(de.Key) {
			row = int(i) + 1
		}
	}
	pa := filepath.Join(dir, "a", "part-00000.snappy.parquet")
	pb := filepath.Join(dir, "b", "part-00000.snappy.parquet")
	if de.First != fmt.Sprintf("%s: row %d", pa, row) || de.Second != fmt.Sprintf("%s: row %d", pb, row) {
		t.Fatalf("positions %q and %q, want rows %d of %s and %s", de.First, de.Second, row, pa, pb)
	}
}

// TestSplitFile parses one large JSON Lines file in many ranges: the result,
// the order for --on-duplicate and the line numbers in messages are those of
// reading it whole.
func TestSplitFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := gen.Generate(context.Background(), gen.Options{Dir: filepath.Join(dir, "gen"), Keys: 20000, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "gen", "part-00000.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	dupKey := gen.RecordAt(2, 5).Key
	// The same key again near the end (line 19001) and once more at the end
	// (line 20002): first keeps line 6, last keeps line 20002.
	lines := strings.SplitAfter(string(data), "\n")
	lines = slices.Insert(lines, 19000, `{"key":"`+dupKey+`","value":"middle"}`+"\n")
	lines = append(lines, "\n", `{"key":"`+dupKey+`","value":"end"}`+"\n")
	big := write(t, filepath.Join(dir, "big.jsonl"), strings.Join(lines, ""))

	whole := filepath.Join(dir, "whole")
	if _, err := Build(context.Background(), Options{Inputs: []string{big}, Out: whole, Version: "v", OnDuplicate: DuplicateLast}); err != nil {
		t.Fatal(err)
	}
	split := filepath.Join(dir, "split")
	if _, err := Build(context.Background(), Options{Inputs: []string{big}, Out: split, Version: "v", OnDuplicate: DuplicateLast, SplitBytes: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	a, b := openDB(t, whole), openDB(t, split)
	if !bytes.Equal(dump(t, a), dump(t, b)) || get(t, b, []byte(dupKey)) != "s:end" {
		t.Fatalf("split build differs; dup = %q", get(t, b, []byte(dupKey)))
	}
	if b.Meta().Inputs[0].Records != 20002 {
		t.Fatalf("records = %d", b.Meta().Inputs[0].Records)
	}
	first := filepath.Join(dir, "first")
	if _, err := Build(context.Background(), Options{Inputs: []string{big}, Out: first, Version: "v", OnDuplicate: DuplicateFirst, SplitBytes: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	if got, want := get(t, openDB(t, first), []byte(dupKey)), genWant(gen.RecordAt(2, 5)); got != want {
		t.Fatalf("first = %q, want %q", got, want)
	}
	_, err = Build(context.Background(), Options{Inputs: []string{big}, Out: filepath.Join(dir, "err"), Version: "v", SplitBytes: 64 << 10})
	var de *DuplicateError
	if !errors.As(err, &de) || de.First != big+":6" || de.Second != big+":19001" {
		t.Fatalf("err = %v", err)
	}
	// A bad line in a late range is reported at its line in the file.
	bad := write(t, filepath.Join(dir, "bad.jsonl"), string(data)+`{"key":"x","value":null}`+"\n")
	_, err = Build(context.Background(), Options{Inputs: []string{bad}, Out: filepath.Join(dir, "err2"), Version: "v", SplitBytes: 64 << 10})
	if err == nil || !strings.Contains(err.Error(), bad+":20001: value must be a string or a number, got null") {
		t.Fatalf("err = %v", err)
	}
}

func TestProgressCallback(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	var b strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&b, `{"key":"k%d","value":"%d"}`+"\n", i, i)
	}
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	last := map[string][2]int64{}
	_, err := Build(context.Background(), Options{Inputs: []string{in}, Out: filepath.Join(dir, "v"), Partitions: 4,
		Progress: func(phase string, done, total int64) {
			mu.Lock()
			defer mu.Unlock()
			if prev, ok := last[phase]; ok && done < prev[0] {
				t.Errorf("%s went backwards: %d after %d", phase, done, prev[0])
			}
			last[phase] = [2]int64{done, total}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if got := last["read"]; got[1] != int64(b.Len()) || got[0] != got[1] {
		t.Errorf("read progress ended at %v, want %d of %d bytes", got, b.Len(), b.Len())
	}
	if got := last["merge"]; got != [2]int64{4, 4} {
		t.Errorf("merge progress ended at %v, want 4 of 4 partitions", got)
	}
}

// TestOnDiskSize: the benchmark-shaped dataset (64-hex-character keys,
// counters and small hashes; 127 raw bytes per key) takes well under 100
// bytes per key in sstables: data blocks are zstd-compressed (Snappy left it
// at 136).
func TestOnDiskSize(t *testing.T) {
	dir := t.TempDir()
	const n = 50000
	if _, err := gen.Generate(context.Background(), gen.Options{Dir: filepath.Join(dir, "gen"), Keys: n, Seed: 4}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "v")
	meta, err := Build(context.Background(), Options{Inputs: []string{filepath.Join(dir, "gen")}, Out: out, Version: "v"})
	if err != nil {
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(out, store.DBDir, "*.sst"))
	var size int64
	for _, p := range tables {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		size += fi.Size()
	}
	raw := float64(meta.KeyBytes+meta.ValueBytes) / n
	perKey := float64(size) / n
	t.Logf("%d keys: %.1f raw bytes per key, %.1f in sstables", n, raw, perKey)
	if raw < 110 || perKey > 85 {
		t.Fatalf("%.1f bytes per key in sstables for %.1f raw bytes per key; want at most 85", perKey, raw)
	}
}
