package bench

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Columns of the table, in order. A test checks every row has them all.
var Columns = []string{
	"command", "conns", "pipeline", "keys",
	"batchkv ops/s", "redis ops/s", "ops ratio",
	"batchkv p50/p99/p99.9 µs", "redis p50/p99/p99.9 µs", "p99 ratio",
	"batchkv CPU s/M req", "redis CPU s/M req", "CPU ratio",
	"client CPU batchkv / redis",
}

// Doc markers delimit the section WriteDocs owns in docs/BENCHMARKS.md.
const (
	DocBegin = "<!-- make bench: begin (written by batchkv-bench --docs; edits inside are overwritten) -->"
	DocEnd   = "<!-- make bench: end -->"
)

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func us(d time.Duration) string {
	v := float64(d) / 1e3
	switch {
	case v < 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func lat(s Stats) string { return us(s.P50) + " / " + us(s.P99) + " / " + us(s.P999) }

// Table writes the result as a Markdown table, one row per cell.
func (r *Result) Table(w io.Writer) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(Columns, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(Columns)))
	for _, c := range r.Cells {
		b, rd := c.Batchkv, c.Redis
		fmt.Fprintf(w, "| %s | %d | %d | %s | %.0f | %.0f | %s | %s | %s | %s | %.2f | %.2f | %s | %.0f%% / %.0f%% |\n",
			c.Command, c.Conns, c.Pipeline, c.Dist,
			b.OpsPerSec, rd.OpsPerSec, ratio(b.OpsPerSec, rd.OpsPerSec),
			lat(b), lat(rd), ratio(float64(b.P99), float64(rd.P99)),
			b.CPUPerM, rd.CPUPerM, ratio(b.CPUPerM, rd.CPUPerM), 100*b.ClientCPU, 100*rd.ClientCPU)
	}
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// Report writes the table and everything needed to read it: the machine, the
// setup, memory and disk figures, and what each column means.
func (r *Result) Report(w io.Writer, command string) {
	o := r.Options
	fmt.Fprintf(w, "Command: `%s`\n\n", command)
	fmt.Fprintf(w, "Machine: %s\n\n", r.Machine)
	pin := "not pinned"
	if r.Pinned != "" {
		pin = "both servers pinned to CPU " + r.Pinned + " with taskset (the load generator is not pinned)"
	}
	fmt.Fprintf(w, "Setup: %d keys (%d strings, %d hashes of 1–20 fields), seed %d; %v per cell and server, %d repeats (medians), warmup %v and at least one request per key of the command, per server and command; load generator GOMAXPROCS %d; %s; batchkv-server `--cache-bytes %d` (%s); redis-server `--save '' --appendonly no`. Total run time %v (generate %v, build %v, load redis %v).\n\n",
		o.Keys, r.StringKeys, r.HashKeys, o.Seed, o.Duration, o.Repeats, max(o.Warmup, 0), o.ClientProcs, pin,
		o.CacheBytes, mib(o.CacheBytes), r.Total.Round(time.Second), r.GenTime.Round(time.Millisecond),
		r.BuildTime.Round(time.Millisecond), r.RedisLoadTime.Round(time.Millisecond))
	fmt.Fprintf(w, "| memory and disk | batchkv | redis-server | ratio |\n|---|---|---|---|\n")
	fmt.Fprintf(w, "| VmRSS after load | %s | %s | %s |\n", mib(r.RSSLoaded[Batchkv]), mib(r.RSSLoaded[Redis]),
		ratio(float64(r.RSSLoaded[Batchkv]), float64(r.RSSLoaded[Redis])))
	fmt.Fprintf(w, "| VmRSS after the matrix | %s | %s | %s |\n", mib(r.RSSEnd[Batchkv]), mib(r.RSSEnd[Redis]),
		ratio(float64(r.RSSEnd[Batchkv]), float64(r.RSSEnd[Redis])))
	fmt.Fprintf(w, "| block caches after the matrix (decoded blocks + Pebble's) | %s | – | |\n", mib(r.CacheEnd))
	beyond := r.RSSEnd[Batchkv] - r.CacheEnd
	fmt.Fprintf(w, "| VmRSS beyond the caches after the matrix | %s, %.1f bytes/key | %s, %.1f bytes/key (all of it) | %s |\n",
		mib(beyond), float64(beyond)/float64(o.Keys), mib(r.RSSEnd[Redis]), float64(r.RSSEnd[Redis])/float64(o.Keys),
		ratio(float64(beyond), float64(r.RSSEnd[Redis])))
	fmt.Fprintf(w, "| on disk | %s, %.1f bytes/key | – (no persistence) | |\n\n", mib(r.DiskBytes), float64(r.DiskBytes)/float64(o.Keys))
	r.Table(w)
	fmt.Fprintf(w, "\nops/s: replies per second over all connections. Latency: one pipelined batch (P requests sent, P replies read), in microseconds. CPU s/M req: the server's user+system CPU seconds (from /proc/PID/stat) per million requests. Client CPU: the load generator's own CPU time over wall time (near %d%% it, not the server, limited the cell). Ratios are batchkv / redis: above 1 is better for ops/s, worse for latency and CPU. GET asks only string keys and HGETALL only hash keys; zipfian is math/rand/v2 Zipf with s=%.1f over the key list.\n", 100*o.ClientProcs, ZipfS)
	var errs, misses uint64
	for _, c := range r.Cells {
		errs += c.Batchkv.Errors + c.Redis.Errors
		misses += c.Batchkv.Misses + c.Redis.Misses
	}
	if errs+misses > 0 {
		fmt.Fprintf(w, "\n**Warning:** %d error replies and %d misses during the run: the numbers are suspect.\n", errs, misses)
	}
}

// WriteDocs puts the report into the Markdown file path between DocBegin and
// DocEnd, replacing what was there, or appends the section if the markers are
// missing. The rest of the file is kept as it is.
func (r *Result) WriteDocs(path, command string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	var sec bytes.Buffer
	sec.WriteString(DocBegin + "\n## `make bench`: batchkv-server and redis-server side by side\n\n")
	fmt.Fprintf(&sec, "Run %s by batchkv-bench (`make bench` runs `bin/batchkv-bench --server-bin bin/batchkv-server --docs docs/BENCHMARKS.md $(BENCHFLAGS)`).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	r.Report(&sec, command)
	sec.WriteString(DocEnd)
	out, err := replaceSection(string(old), sec.String())
	if err != nil {
		return fmt.Errorf("bench: %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(out), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

func replaceSection(doc, section string) (string, error) {
	i, j := strings.Index(doc, DocBegin), strings.Index(doc, DocEnd)
	switch {
	case i < 0 && j < 0:
		return strings.TrimRight(doc, "\n") + "\n\n" + section + "\n", nil
	case i < 0 || j < i:
		return "", fmt.Errorf("the markers of the make bench section are broken (begin at %d, end at %d)", i, j)
	}
	return doc[:i] + section + doc[j+len(DocEnd):], nil
}

// machine describes where the benchmark ran.
func machine(redisBin string) string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	debian, _ := os.ReadFile("/etc/debian_version")
	load, _ := os.ReadFile("/proc/loadavg")
	redis := "redis-server ?"
	if out, err := exec.Command(redisBin, "--version").Output(); err == nil {
		redis = strings.TrimSpace(string(out))
		if i := strings.Index(redis, " sha="); i > 0 {
			redis = redis[:i]
		}
	}
	la := strings.Fields(string(load))
	if len(la) > 3 {
		la = la[:3]
	}
	return fmt.Sprintf("%s, %d CPUs%s, Linux %s, Debian %s, %s, %s; load average at start %s (shared machine: other work ran at the same time)",
		model, runtime.NumCPU(), mem, strings.TrimSpace(string(kernel)), strings.TrimSpace(string(debian)),
		runtime.Version(), redis, strings.Join(la, " "))
}
