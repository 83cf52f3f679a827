package tool

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/batchkv/batchkv/internal/cli"
	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/remote"
	"go.uber.org/zap"
)

// The commands that work on a published dataset: publish, versions, pin.

func publishCommand() *Command {
	c := &Command{
		Name:     "publish",
		Synopsis: "batchkv publish DIR URL   (URL: s3://bucket/prefix/dataset or file:///path/dataset; DIR: a version, or a sharded build's shard-<i>/ dirs)",
		Summary:  "upload a built version (or the shards of a sharded build); each release file is written last",
	}
	c.Run = func(ctx context.Context, env *Env, args []string) error {
		fs := env.FlagSet(c)
		var ro remote.Options
		ro.AddFlags(fs)
		concurrency := fs.Int("concurrency", 4, "files hashed and uploaded at once")
		activateAt := fs.String("activate-at", "", "RFC 3339 time before which servers must not make the version live (sharded datasets swap together)")
		quiet := fs.Bool("quiet", false, "no progress lines")
		pos, err := env.Parse(fs, args)
		if err != nil {
			return err
		}
		if len(pos) != 2 {
			return cli.UsageError("want a version directory and a dataset URL")
		}
		opts := publish.Options{Concurrency: *concurrency}
		if *activateAt != "" {
			if opts.ActivateAt, err = time.Parse(time.RFC3339, *activateAt); err != nil {
				return cli.UsageError("--activate-at: %v", err)
			}
		}
		switch {
		case *quiet:
		case isTerminal(env.Stderr):
			bars := newProgressBars(env.Stderr, func(string) (string, bool) { return "uploading", true })
			defer bars.Finish()
			opts.Progress = func(done, total int64) { bars.Update("upload", done, total) }
		default:
			opts.Progress = progressLogger(env.Logger(false), "uploaded")
		}
		dst, err := remote.Open(ctx, pos[1], ro)
		if err != nil {
			return err
		}
		start := time.Now()
		res, err := publish.Publish(ctx, pos[0], dst, opts)
		if err != nil {
			return err
		}
		r := res.Release
		if res.Count > 0 {
			fmt.Fprintf(env.Stdout, "published %s version %s shards %v of %d to %s: %d files uploaded now (%d bytes), %d resumed, %d shards already published, in %s\n",
				r.Dataset, r.Version, res.Shards, res.Count, dst, res.Uploaded, res.UploadedBytes, res.Resumed, res.Skipped, time.Since(start).Round(time.Millisecond))
			return nil
		}
		fmt.Fprintf(env.Stdout, "published %s version %s to %s: %d files, %d bytes (%d uploaded now, %d resumed) in %s\n",
			r.Dataset, r.Version, dst, len(r.Files), r.TotalSize(), res.Uploaded, res.Resumed, time.Since(start).Round(time.Millisecond))
		return nil
	}
	return c
}

// progressLogger returns a progress callback that logs at most every 2 s.
func progressLogger(log *zap.Logger, verb string) func(done, total int64) {
	var last time.Time
	start := time.Now()
	return func(done, total int64) {
		now := time.Now()
		if now.Sub(last) < 2*time.Second && done != total {
			return
		}
		last = now
		secs := now.Sub(start).Seconds()
		rate := 0.0
		if secs > 0 {
			rate = float64(done) / secs
		}
		fields := []zap.Field{zap.Int64("bytes", done), zap.Int64("total", total), zap.Float64("bytes_per_sec", rate)}
		if rate > 0 && done < total {
			fields = append(fields, zap.Duration("eta", time.Duration(float64(total-done)/rate*float64(time.Second)).Round(time.Second)))
		}
		log.Info(verb, fields...)
	}
}

func versionsCommand() *Command {
	c := &Command{
		Name:     "versions",
		Synopsis: "batchkv versions URL",
		Summary:  "list a dataset's published versions and which one is served",
	}
	c.Run = func(ctx context.Context, env *Env, args []string) error {
		fs := env.FlagSet(c)
		var ro remote.Options
		ro.AddFlags(fs)
		pos, err := env.Parse(fs, args)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return cli.UsageError("want a dataset URL")
		}
		src, err := remote.Open(ctx, pos[0], ro)
		if err != nil {
			return err
		}
		vs, err := publish.Versions(ctx, src)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tSTATE\tFILES\tBYTES\tKEYS\tCREATED\tSERVED")
		for _, v := range vs {
			state := "complete"
			switch {
			case v.Invalid != "":
				state = "invalid: " + v.Invalid
			case v.Shards > 0 && !v.Complete:
				state = fmt.Sprintf("partial %d/%d", v.ShardsPublished, v.Shards)
			case !v.Complete:
				state = "incomplete"
			case v.Shards > 0:
				state = fmt.Sprintf("complete (%d shards)", v.Shards)
			}
			served := ""
			if v.Target {
				served = "target"
				if v.Pinned {
					served = "target (pinned)"
				}
			} else if v.Pinned {
				served = "pinned"
			}
			created := ""
			if !v.CreatedAt.IsZero() {
				created = v.CreatedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", v.Version, state, v.Files, v.Size, v.Keys, created, served)
		}
		return tw.Flush()
	}
	return c
}

func pinCommand() *Command {
	c := &Command{
		Name:     "pin",
		Synopsis: "batchkv pin URL VERSION | batchkv pin URL --latest",
		Summary:  "serve a given version (roll back), or the latest again",
	}
	c.Run = func(ctx context.Context, env *Env, args []string) error {
		fs := env.FlagSet(c)
		var ro remote.Options
		ro.AddFlags(fs)
		latest := fs.Bool("latest", false, "remove the pin: syncers serve the greatest complete version")
		delay := fs.Duration("activate-delay", publish.DefaultPinActivateDelay, "sharded datasets: every shard moves at pin time + this (must exceed the syncers' --interval); 0: each shard moves when it polls")
		pos, err := env.Parse(fs, args)
		if err != nil {
			return err
		}
		switch {
		case *latest && len(pos) == 1:
		case !*latest && len(pos) == 2:
		default:
			return cli.UsageError("want URL VERSION, or URL --latest")
		}
		dst, err := remote.Open(ctx, pos[0], ro)
		if err != nil {
			return err
		}
		opts := publish.PinOptions{ActivateDelay: *delay}
		if *delay == 0 {
			opts.ActivateDelay = -1
		}
		if *latest {
			p, err := publish.UnpinWith(ctx, dst, opts)
			if err != nil {
				return err
			}
			v, _, err := publish.Target(ctx, dst)
			if err != nil && !errors.Is(err, publish.ErrNoVersion) {
				return err
			}
			fmt.Fprintf(env.Stdout, "unpinned %s: syncers serve the latest complete version (%s)%s\n", dst, v, activation(p))
			return nil
		}
		p, err := publish.PinWith(ctx, dst, pos[1], opts)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "pinned %s to version %s%s\n", dst, pos[1], activation(p))
		return nil
	}
	return c
}

// activation describes a pointer's coordinated activation time, if any.
func activation(p *publish.Pointer) string {
	if p == nil || p.ActivateAt == nil {
		return ""
	}
	return fmt.Sprintf("; every shard moves at %s", p.ActivateAt.UTC().Format(time.RFC3339Nano))
}
