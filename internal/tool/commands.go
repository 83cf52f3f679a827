package tool

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/batchkv/batchkv/internal/build"
	"github.com/batchkv/batchkv/internal/buildinfo"
	"github.com/batchkv/batchkv/internal/cli"
	"github.com/batchkv/batchkv/internal/gen"
	"github.com/batchkv/batchkv/internal/input"
	"github.com/batchkv/batchkv/internal/slot"
	"github.com/batchkv/batchkv/internal/store"
)

func buildCommand() *Command {
	c := &Command{
		Name:     "build",
		Synopsis: "batchkv build --input PATH [--input PATH…] --out DIR [--shards N [--shard I]] [flags]",
		Summary:  "build a dataset version from JSON Lines, CSV, TSV or Parquet files",
	}
	c.Run = func(ctx context.Context, env *Env, args []string) error {
		fs := env.FlagSet(c)
		var inputs cli.StringList
		fs.Var(&inputs, "input", "input file or directory of part files (repeatable; order decides --on-duplicate first/last; from the environment: comma-separated)")
		out := fs.String("out", "", "version directory to create (must not exist)")
		format := fs.String("format", "auto", "input format: auto, jsonl, csv, tsv or parquet (auto: by file name, .gz/.zst/.snappy allowed)")
		name := fs.String("name", "", "dataset name (default: the base name of --out)")
		version := fs.String("version", "", "version name, [A-Za-z0-9._-] (default: the UTC build time, 20060102T150405Z)")
		memory := build.SizeFlag(build.DefaultMemory)
		fs.Var(&memory, "memory", "memory budget, e.g. 512MiB, 1GiB, 2GB")
		dup := fs.String("on-duplicate", "error", "a key given twice: error, first or last (in input order)")
		header := fs.String("csv-header", "auto", "CSV/TSV header row: auto (skip a first row key,value), yes or no")
		shards := fs.Int("shards", 0, "partition by Redis Cluster hash slot into N shards, written as DIR/shard-<i>/ (docs/CLUSTER.md); 0: unsharded")
		shard := fs.Int("shard", -1, "with --shards: build only shard I into DIR/shard-I/ (one job per shard; needs --version)")
		quiet := fs.Bool("quiet", false, "no progress messages")
		cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the build to this file (for diagnosing slow builds)")
		memprofile := fs.String("memprofile", "", "write an allocation profile (pprof allocs) of the build to this file when it ends")
		pos, err := env.Parse(fs, args)
		if err != nil {
			return err
		}
		if len(pos) > 0 {
			return cli.UsageError("unexpected argument %q", pos[0])
		}
		if v, ok := env.LookupEnv(cli.EnvName("input")); ok && !flagGiven(args, "input") {
			inputs = splitList(v) // the environment holds a comma-separated list
		}
		if len(inputs) == 0 || *out == "" {
			return cli.UsageError("--input and --out are required")
		}
		if *shards < 0 || *shards > slot.Count {
			return cli.UsageError("--shards %d: want 1 to %d", *shards, slot.Count)
		}
		if *shard >= 0 {
			switch {
			case *shards == 0:
				return cli.UsageError("--shard needs --shards")
			case *shard >= *shards:
				return cli.UsageError("--shard %d: want 0 to %d (of --shards %d)", *shard, *shards-1, *shards)
			case *version == "":
				return cli.UsageError("--shard needs --version: the jobs building the other shards must use the same version name")
			}
		} else if *shard != -1 {
			return cli.UsageError("--shard %d: want 0 to N-1", *shard)
		}
		opts := build.Options{Inputs: inputs, Out: *out, Name: *name, Version: *version, Memory: int64(memory), Logger: env.Logger(*quiet),
			Shards: *shards, OneShard: *shard >= 0, Shard: max(*shard, 0)}
		// A bar on a terminal; log lines (the builder's own) elsewhere.
		if !*quiet && isTerminal(env.Stderr) {
			bars := newProgressBars(env.Stderr, func(phase string) (string, bool) {
				if phase == "read" {
					return "reading and sorting", true
				}
				return "writing sstables", false
			})
			defer bars.Finish()
			opts.Progress = bars.Update
			opts.ProgressEvery = time.Hour
		}
		if opts.Format, err = input.ParseFormat(*format); err != nil {
			return cli.UsageError("%v", err)
		}
		if opts.CSVHeader, err = input.ParseCSVHeader(*header); err != nil {
			return cli.UsageError("%v", err)
		}
		if opts.OnDuplicate, err = build.ParseDuplicate(*dup); err != nil {
			return cli.UsageError("%v", err)
		}
		if opts.Version != "" {
			if err := build.ValidateVersion(opts.Version); err != nil {
				return cli.UsageError("%v", err)
			}
		}
		if *cpuprofile != "" {
			f, err := os.Create(*cpuprofile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		metas, err := build.BuildShards(ctx, opts)
		if err != nil {
			return err
		}
		if *memprofile != "" {
			runtime.GC() // the profile is as of the last collection: include the whole build
			f, err := os.Create(*memprofile)
			if err != nil {
				return err
			}
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		}
		for _, meta := range metas {
			dir := *out
			if s := meta.Shard; s != nil {
				dir = store.ShardDir(*out, s.Index)
			}
			fmt.Fprintf(env.Stdout, "built %s: dataset %s version %s, %d keys (%d strings, %d hashes)",
				dir, meta.Name, meta.Version, meta.Keys, meta.Strings, meta.Hashes)
			if s := meta.Shard; s != nil {
				fmt.Fprintf(env.Stdout, ", shard %d of %d (slots %d-%d)", s.Index, s.Count, s.SlotStart, s.SlotEnd)
			}
			fmt.Fprintln(env.Stdout)
		}
		return nil
	}
	return c
}

// flagGiven reports whether the flag name was given on the command line (a
// flag set from the environment looks set to the flag package too).
func flagGiven(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			break
		}
		for _, p := range []string{"-", "--"} {
			if a == p+name || strings.HasPrefix(a, p+name+"=") {
				return true
			}
		}
	}
	return false
}

func splitList(v string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(v); i++ {
		if i == len(v) || v[i] == ',' {
			if i > start {
				out = append(out, v[start:i])
			}
			start = i + 1
		}
	}
	return out
}

func inspectCommand() *Command {
	c := &Command{
		Name:     "inspect",
		Synopsis: "batchkv inspect DIR [--json] [--samples N]",
		Summary:  "show a built version's metadata, size and sample keys",
	}
	c.Run = func(ctx context.Context, env *Env, args []string) error {
		fs := env.FlagSet(c)
		asJSON := fs.Bool("json", false, "print the metadata as JSON")
		samples := fs.Int("samples", 5, "number of sample keys to show")
		pos, err := env.Parse(fs, args)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return cli.UsageError("want exactly one version directory")
		}
		dir := pos[0]
		if store.IsSharded(dir) {
			return inspectSharded(env, dir, *asJSON)
		}
		db, err := store.Open(dir, nil)
		if err != nil {
			return err
		}
		defer db.Close()
		m := db.Meta()
		if *asJSON {
			b, _ := json.MarshalIndent(m, "", "  ")
			fmt.Fprintf(env.Stdout, "%s\n", b)
			return nil
		}
		size, err := dirSize(dir)
		if err != nil {
			return err
		}
		w := env.Stdout
		fmt.Fprintf(w, "dataset:      %s\n", m.Name)
		fmt.Fprintf(w, "version:      %s\n", m.Version)
		fmt.Fprintf(w, "format:       %d\n", m.Format)
		fmt.Fprintf(w, "built at:     %s\n", m.BuiltAt.UTC().Format(time.RFC3339))
		fmt.Fprintf(w, "tool version: %s\n", m.ToolVersion)
		fmt.Fprintf(w, "keys:         %d (%d strings, %d hashes with %d fields)\n", m.Keys, m.Strings, m.Hashes, m.HashFields)
		fmt.Fprintf(w, "data:         %d key bytes, %d value bytes\n", m.KeyBytes, m.ValueBytes)
		perKey := 0.0
		if m.Keys > 0 {
			perKey = float64(size) / float64(m.Keys)
		}
		fmt.Fprintf(w, "on disk:      %d bytes (%.1f per key)\n", size, perKey)
		if s := m.Shard; s != nil {
			fmt.Fprintf(w, "shard:        %d of %d, slots %d-%d\n", s.Index, s.Count, s.SlotStart, s.SlotEnd)
		}
		fmt.Fprintf(w, "inputs:       %d\n", len(m.Inputs))
		for i, in := range m.Inputs {
			if i == 10 {
				fmt.Fprintf(w, "  … %d more\n", len(m.Inputs)-10)
				break
			}
			comp := ""
			if in.Compression != "" {
				comp = "+" + in.Compression
			}
			fmt.Fprintf(w, "  %s (%s%s, %d bytes, %d records)\n", in.Path, in.Format, comp, in.Bytes, in.Records)
		}
		if *samples > 0 {
			fmt.Fprintf(w, "sample keys:\n")
			_, err = db.Scan(0, *samples, func(key []byte, v store.Value) error {
				switch v.Type {
				case store.TypeHash:
					n, err := v.Hash().Len()
					if err != nil {
						return err
					}
					fmt.Fprintf(w, "  %s hash (%d fields)\n", strconv.Quote(string(key)), n)
				default:
					fmt.Fprintf(w, "  %s %s (%d bytes)\n", strconv.Quote(string(key)), v.Type, len(v.Data))
				}
				return nil
			})
		}
		return err
	}
	return c
}

// inspectSharded describes a sharded build directory: each shard-<i> in it.
func inspectSharded(env *Env, dir string, asJSON bool) error {
	shards, err := store.ReadShards(dir)
	if err != nil {
		return err
	}
	idx := slices.Sorted(maps.Keys(shards))
	w := env.Stdout
	if asJSON {
		list := make([]*store.Meta, 0, len(idx))
		for _, i := range idx {
			list = append(list, shards[i])
		}
		b, _ := json.MarshalIndent(list, "", "  ")
		_, err := fmt.Fprintf(w, "%s\n", b)
		return err
	}
	first := shards[idx[0]]
	fmt.Fprintf(w, "dataset:      %s\n", first.Name)
	fmt.Fprintf(w, "version:      %s\n", first.Version)
	fmt.Fprintf(w, "sharded:      %d shards, %d in this directory\n", first.Shard.Count, len(idx))
	var keys, size int64
	for _, i := range idx {
		m := shards[i]
		n, err := dirSize(store.ShardDir(dir, i))
		if err != nil {
			return err
		}
		keys += m.Keys
		size += n
		fmt.Fprintf(w, "  shard %d: slots %d-%d, %d keys (%d strings, %d hashes), %d bytes on disk\n",
			i, m.Shard.SlotStart, m.Shard.SlotEnd, m.Keys, m.Strings, m.Hashes, n)
	}
	perKey := 0.0
	if keys > 0 {
		perKey = float64(size) / float64(keys)
	}
	_, err = fmt.Fprintf(w, "total:        %d keys, %d bytes on disk (%.1f per key)\n", keys, size, perKey)
	return err
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

// ErrNotFound is returned by get for a missing key (exit status 1).
var ErrNotFound = errors.New("(nil)")

func getCommand() *Command {
	c := &Command{
		Name:     "get",
		Synopsis: "batchkv get DIR KEY [--b64]",
		Summary:  "look a key up in a built version, or in the shard of its slot in a sharded build directory (offline)",
	}
	c.Run = func(ctx context.Context, env *Env, args []string) error {
		fs := env.FlagSet(c)
		b64 := fs.Bool("b64", false, "KEY is standard base64 (for binary keys)")
		pos, err := env.Parse(fs, args)
		if err != nil {
			return err
		}
		if len(pos) != 2 {
			return cli.UsageError("want a version directory and a key")
		}
		key := []byte(pos[1])
		if *b64 {
			if key, err = base64.StdEncoding.DecodeString(pos[1]); err != nil {
				return cli.UsageError("KEY is not base64: %v", err)
			}
		}
		dir := pos[0]
		if store.IsSharded(dir) {
			// The shard of the key's slot.
			shards, err := store.ReadShards(dir)
			if err != nil {
				return err
			}
			var count int
			for _, m := range shards {
				count = m.Shard.Count
				break
			}
			s := slot.Of(key)
			i := slices.IndexFunc(slot.Split(count), func(r slot.Range) bool { return r.Contains(s) })
			if _, ok := shards[i]; !ok {
				return fmt.Errorf("get: key %s is in slot %d of shard %d, which %s does not hold", strconv.Quote(string(key)), s, i, dir)
			}
			dir = store.ShardDir(dir, i)
		}
		db, err := store.Open(dir, nil)
		if err != nil {
			return err
		}
		defer db.Close()
		v, closer, err := db.Get(key)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("get: %w: key %s not found", ErrNotFound, strconv.Quote(string(key)))
		}
		if err != nil {
			return err
		}
		defer closer.Close()
		w := env.Stdout
		if v.Type == store.TypeString {
			_, err := fmt.Fprintf(w, "%s\n", v.Data)
			return err
		}
		// Like redis-cli --raw HGETALL: field and value on alternate lines,
		// in stored order.
		return v.Hash().Range(func(f, val []byte) bool {
			_, err = fmt.Fprintf(w, "%s\n%s\n", f, val)
			return err == nil
		})
	}
	return c
}

func genCommand() *Command {
	c := &Command{
		Name:     "gen",
		Synopsis: "batchkv gen --out DIR --keys N [--seed S] [--parts K] [--format jsonl|parquet] [--gzip]",
		Summary:  "generate a synthetic feature-counts dataset (a development tool)",
	}
	c.Run = func(ctx context.Context, env *Env, args []string) error {
		fs := env.FlagSet(c)
		out := fs.String("out", "", "directory to create, receiving part files and _SUCCESS as Spark writes them")
		keys := fs.Int64("keys", 0, "number of records")
		seed := fs.Uint64("seed", 0, "seed; the same seed gives the same data")
		parts := fs.Int("parts", 1, "number of part files")
		format := fs.String("format", gen.FormatJSONL, "jsonl or parquet")
		gz := fs.Bool("gzip", false, "gzip the JSON Lines parts")
		pos, err := env.Parse(fs, args)
		if err != nil {
			return err
		}
		if len(pos) > 0 {
			return cli.UsageError("unexpected argument %q", pos[0])
		}
		if *out == "" || *keys <= 0 {
			return cli.UsageError("--out and a positive --keys are required")
		}
		if *format != gen.FormatJSONL && *format != gen.FormatParquet {
			return cli.UsageError("--format must be jsonl or parquet")
		}
		start := time.Now()
		paths, err := gen.Generate(ctx, gen.Options{Dir: *out, Keys: *keys, Seed: *seed, Parts: *parts, Format: *format, Gzip: *gz})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "generated %d records in %d files under %s in %s\n", *keys, len(paths), *out, time.Since(start).Round(time.Millisecond))
		return nil
	}
	return c
}

func runVersion(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 {
		if args[0] == "--help" || args[0] == "-h" {
			fmt.Fprintln(env.Stderr, "Usage: batchkv version")
			return flag.ErrHelp
		}
		return cli.UsageError("version takes no arguments")
	}
	_, err := fmt.Fprintf(env.Stdout, "batchkv %s\n", buildinfo.Version)
	return err
}
