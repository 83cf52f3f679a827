package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/batchkv/batchkv/internal/cli"
)

// Quick-mode defaults (--quick), for a check in about a minute.
const (
	QuickKeys     = 200_000
	QuickDuration = time.Second
	QuickRepeats  = 1
	QuickWarmup   = 500 * time.Millisecond
)

// Main is batchkv-bench's command line: flags (with BATCHKV_* environment
// fallback), Run, the report on stdout, and optionally the docs section.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	fs := cli.NewFlagSet("batchkv-bench", "batchkv-bench --server-bin PATH [flags]", stderr)
	var o Options
	var commands, conns, pipelines, dists, docs string
	var quick, noPin bool
	fs.StringVar(&o.ServerBin, "server-bin", "bin/batchkv-server", "batchkv-server binary to benchmark")
	fs.StringVar(&o.RedisBin, "redis-bin", DefaultRedisBin, "redis-server 7 binary to compare with")
	fs.Int64Var(&o.Keys, "keys", DefaultKeys, "number of keys in the generated dataset")
	fs.Uint64Var(&o.Seed, "seed", 0, "dataset seed")
	fs.DurationVar(&o.Duration, "duration", DefaultDuration, "duration of one cell against one server")
	fs.IntVar(&o.Repeats, "repeats", DefaultRepeats, "repeats of the matrix (medians are reported)")
	fs.DurationVar(&o.Warmup, "warmup", DefaultWarmup, "warmup per server and command before the matrix (negative: none)")
	fs.Uint64Var(&o.MaxRequests, "max-requests", DefaultMaxRequests, "most requests of one cell run")
	fs.StringVar(&commands, "commands", "GET,HGETALL", "commands of the matrix")
	fs.StringVar(&conns, "conns", "1,50", "connection counts of the matrix")
	fs.StringVar(&pipelines, "pipelines", "1,16", "pipeline depths of the matrix")
	fs.StringVar(&dists, "dists", "uniform,zipfian", "key distributions of the matrix")
	fs.IntVar(&o.ClientProcs, "client-procs", DefaultClientProcs, "GOMAXPROCS of the load generator during the matrix")
	var serverFlags string
	fs.StringVar(&serverFlags, "server-flags", "", "extra batchkv-server flags, space-separated (e.g. \"--io goroutine\")")
	fs.Int64Var(&o.CacheBytes, "cache-bytes", DefaultCacheBytes, "batchkv-server --cache-bytes")
	fs.BoolVar(&noPin, "no-pin", false, "do not pin the servers to the last CPU with taskset")
	fs.StringVar(&o.WorkDir, "workdir", "", "directory for the generated input and built version (default: a temporary one, removed)")
	fs.StringVar(&docs, "docs", "", "also write the report into this Markdown file, between the make bench markers")
	fs.BoolVar(&quick, "quick", false, fmt.Sprintf("a quick check: --keys %d --duration %v --repeats %d --warmup %v unless given", QuickKeys, QuickDuration, QuickRepeats, QuickWarmup))
	if _, err := cli.Parse(fs, args, lookup); err != nil {
		return err
	}
	if quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range map[string]string{"keys": strconv.Itoa(QuickKeys), "duration": QuickDuration.String(),
			"repeats": strconv.Itoa(QuickRepeats), "warmup": QuickWarmup.String()} {
			if !set[name] {
				_ = fs.Set(name, v)
			}
		}
	}
	o.Pin = !noPin
	o.ServerArgs = strings.Fields(serverFlags)
	o.Commands = splitList(strings.ToUpper(commands))
	o.Dists = splitList(dists)
	var err error
	if o.Conns, err = intList("conns", conns); err != nil {
		return err
	}
	if o.Pipelines, err = intList("pipelines", pipelines); err != nil {
		return err
	}
	o.Progress = stderr
	res, err := Run(ctx, o)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("bench: interrupted: %w", err)
		}
		return err
	}
	command := "batchkv-bench " + strings.Join(args, " ")
	res.Report(stdout, command)
	if docs != "" {
		if err := res.WriteDocs(docs, command); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "bench: wrote the report into %s\n", docs)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func intList(name, s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, cli.UsageError("--%s: %q is not a number", name, f)
		}
		out = append(out, n)
	}
	return out, nil
}
