package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/cli"
	"github.com/batchkv/batchkv/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// TestRun runs the whole pipeline — generate, load redis-server, build, serve
// with the real batchkv-server, drive both — on a tiny dataset, so that
// `make bench` cannot rot unnoticed.
func TestRun(t *testing.T) {
	bin, err := redistest.ServerBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	res, err := Run(ctx, Options{
		ServerBin: bin,
		Keys:      2000,
		Duration:  250 * time.Millisecond,
		Repeats:   1,
		Warmup:    100 * time.Millisecond,
		Commands:  []string{CmdGET, CmdHGETALL},
		Conns:     []int{3},
		Pipelines: []int{4},
		Dists:     []string{DistUniform, DistZipfian},
		WorkDir:   t.TempDir(),
		Progress:  &progress,
	})
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	if len(res.Cells) != 4 {
		t.Fatalf("got %d cells, want 4", len(res.Cells))
	}
	if res.StringKeys+res.HashKeys != 2000 || res.StringKeys == 0 || res.HashKeys == 0 {
		t.Errorf("keys split %d strings + %d hashes, want 2000 of both kinds", res.StringKeys, res.HashKeys)
	}
	if res.DiskBytes <= 0 {
		t.Errorf("disk bytes %d", res.DiskBytes)
	}
	for _, name := range []string{Batchkv, Redis} {
		if res.RSSLoaded[name] <= 0 || res.RSSEnd[name] <= 0 {
			t.Errorf("%s: RSS after load %d, at end %d", name, res.RSSLoaded[name], res.RSSEnd[name])
		}
	}
	// Every key was read, so the caches hold the whole (small) dataset.
	if res.CacheEnd <= 0 || res.CacheEnd >= res.RSSEnd[Batchkv] {
		t.Errorf("block caches %d bytes with RSS %d", res.CacheEnd, res.RSSEnd[Batchkv])
	}
	for _, c := range res.Cells {
		for name, s := range map[string]Stats{Batchkv: c.Batchkv, Redis: c.Redis} {
			if s.OpsPerSec <= 0 || s.Requests == 0 {
				t.Errorf("%s %s: %v ops/s, %d requests", c.Cell, name, s.OpsPerSec, s.Requests)
			}
			if s.Requests%uint64(c.Pipeline) != 0 {
				t.Errorf("%s %s: %d requests is not a multiple of the pipeline depth", c.Cell, name, s.Requests)
			}
			if s.P50 <= 0 || s.P50 > s.P99 || s.P99 > s.P999 || s.P999 > 10*time.Second {
				t.Errorf("%s %s: latency p50 %v p99 %v p99.9 %v", c.Cell, name, s.P50, s.P99, s.P999)
			}
			if s.CPUPerM < 0 || s.CPUPerM > 1000 {
				t.Errorf("%s %s: %v CPU s per million requests", c.Cell, name, s.CPUPerM)
			}
			if s.ClientCPU < 0 || s.ClientCPU > 64 {
				t.Errorf("%s %s: client CPU %v", c.Cell, name, s.ClientCPU)
			}
			if s.Errors != 0 || s.Misses != 0 {
				t.Errorf("%s %s: %d error replies, %d misses (every key exists)", c.Cell, name, s.Errors, s.Misses)
			}
		}
	}

	var out bytes.Buffer
	res.Report(&out, "batchkv-bench --test")
	rows := tableRows(t, out.String())
	if len(rows) != 4 {
		t.Fatalf("table has %d rows, want 4:\n%s", len(rows), out.String())
	}
	for _, row := range rows {
		if len(row) != len(Columns) {
			t.Fatalf("row %q has %d columns, want %d", row, len(row), len(Columns))
		}
		for i, col := range Columns {
			// A ratio may be "–" only when its denominator was 0 (a tiny run
			// can use less than one clock tick of server CPU).
			if row[i] == "" || row[i] == "–" && !strings.HasSuffix(col, "ratio") {
				t.Errorf("row %q: column %q is empty", row, col)
			}
			if strings.HasSuffix(col, "ops/s") {
				if v, err := strconv.ParseFloat(row[i], 64); err != nil || v <= 0 {
					t.Errorf("row %q: column %q = %q, want a positive number", row, col, row[i])
				}
			}
		}
	}
	if strings.Contains(out.String(), "Warning") {
		t.Errorf("report warns:\n%s", out.String())
	}

	// The docs section replaces itself and keeps the rest of the file.
	doc := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := os.WriteFile(doc, []byte("# Benchmarks\n\n## Other\n\nkept\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := res.WriteDocs(doc, "batchkv-bench --test"); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(doc)
	if got := strings.Count(string(b), DocBegin); got != 1 || !strings.HasPrefix(string(b), "# Benchmarks\n\n## Other\n\nkept\n") ||
		!strings.HasSuffix(string(b), DocEnd+"\n") || len(tableRows(t, string(b))) != 4 {
		t.Errorf("docs after two writes:\n%s", b)
	}
}

// tableRows returns the cells of the main table's data rows.
func tableRows(t *testing.T, report string) [][]string {
	t.Helper()
	header := "| " + strings.Join(Columns, " | ") + " |"
	i := strings.Index(report, header)
	if i < 0 {
		t.Fatalf("no table header %q in:\n%s", header, report)
	}
	var rows [][]string
	lines := strings.Split(report[i:], "\n")
	for _, l := range lines[2:] {
		if !strings.HasPrefix(l, "|") {
			break
		}
		var row []string
		for _, f := range strings.Split(strings.Trim(l, "|"), "|") {
			row = append(row, strings.TrimSpace(f))
		}
		rows = append(rows, row)
	}
	return rows
}

func TestSkipReply(t *testing.T) {
	for _, c := range []struct {
		in   string
		kind byte
		size int
		err  bool
	}{
		{"+OK\r\n", '+', 1, false},
		{"-ERR x\r\n", '-', 1, false},
		{":12\r\n", ':', 1, false},
		{"$3\r\nabc\r\n", '$', 3, false},
		{"$-1\r\n", '$', -1, false},
		{"*2\r\n$1\r\na\r\n$2\r\nbc\r\n", '*', 2, false},
		{"*0\r\n", '*', 0, false},
		{"*1\r\n*1\r\n:1\r\n", '*', 1, false},
		{"$3\r\nab", 0, 0, true},
		{"%1\r\n", 0, 0, true},
		{"$x\r\n", 0, 0, true},
		{"+OK\n", 0, 0, true},
		{strings.Repeat("*1\r\n", 20) + ":1\r\n", 0, 0, true},
	} {
		r := bufio.NewReader(strings.NewReader(c.in))
		kind, size, err := skipReply(r, 0)
		if (err != nil) != c.err || !c.err && (kind != c.kind || size != c.size) {
			t.Errorf("skipReply(%q) = %q, %d, %v", c.in, kind, size, err)
			continue
		}
		if !c.err && r.Buffered() != 0 {
			t.Errorf("skipReply(%q) left %d bytes", c.in, r.Buffered())
		}
	}
}

func TestProcStats(t *testing.T) {
	// Burn a little CPU so the counter moves past one clock tick.
	deadline := time.Now().Add(50 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	cpu, err := cpuTime(os.Getpid())
	if err != nil || cpu <= 0 {
		t.Errorf("cpuTime(self) = %v, %v (spun %d times)", cpu, err, x)
	}
	rss, err := rssBytes(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Errorf("rssBytes(self) = %d, %v", rss, err)
	}
	if _, err := cpuTime(1 << 30); err == nil {
		t.Error("cpuTime of a missing process: no error")
	}
}

func TestReplaceSection(t *testing.T) {
	sec := DocBegin + "\nnew\n" + DocEnd
	for _, c := range []struct{ doc, want string }{
		{"# B\n", "# B\n\n" + sec + "\n"},
		{"# B\n\n" + DocBegin + "\nold\n" + DocEnd + "\n## after\n", "# B\n\n" + sec + "\n## after\n"},
	} {
		got, err := replaceSection(c.doc, sec)
		if err != nil || got != c.want {
			t.Errorf("replaceSection(%q) = %q, %v; want %q", c.doc, got, err, c.want)
		}
	}
	if _, err := replaceSection(DocEnd+"\n"+DocBegin, sec); err == nil {
		t.Error("markers in the wrong order: no error")
	}
}

func TestMainUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--conns", "x"},
		{"--pipelines", "1,a"},
		{"--nope"},
	} {
		err := Main(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}, func(string) (string, bool) { return "", false })
		if !errors.Is(err, cli.ErrUsage) {
			t.Errorf("Main(%q) = %v, want a usage error", args, err)
		}
	}
	for _, o := range []Options{
		{ServerBin: "x", Commands: []string{"SET"}},
		{ServerBin: "x", Dists: []string{"gauss"}},
		{ServerBin: "x", Conns: []int{0}},
		{},
	} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("Run(%+v): no error", o)
		}
	}
}
