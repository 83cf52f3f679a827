package tool

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/batchkv/batchkv/internal/cli"
	"github.com/batchkv/batchkv/internal/diff"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

func diffCommand() *Command {
	c := &Command{
		Name:     "diff",
		Synopsis: "batchkv diff ADDR_A ADDR_B [--keys FILE | --dataset DIR | --sample N] [flags]",
		Summary:  "compare the data two Redis-protocol servers hold (dark-launch parity; exit 1 on any difference)",
	}
	c.Run = func(ctx context.Context, env *Env, args []string) error {
		fs := env.FlagSet(c)
		keys := fs.String("keys", "", "compare the keys listed in FILE, one per line ('-': standard input)")
		keysB64 := fs.Bool("keys-b64", false, "each line of --keys is standard base64 (binary keys)")
		dataset := fs.String("dataset", "", "compare every key of this built version directory and check its key count against DBSIZE of both sides")
		sample := fs.Int("sample", 0, "compare N random keys of A (RANDOMKEY) and those of N random keys of B that A's sample lacks")
		both := fs.Bool("both", false, "without --keys, --dataset or --sample: also SCAN B, to find keys only B has")
		rate := fs.Float64("rate", 5000, "at most this many keys compared per second, each read once on each side (a token bucket; 0: unlimited)")
		batch := fs.Int("batch", 100, "keys per pipelined round trip (at most rate/20)")
		concurrency := fs.Int("concurrency", 4, "batches in flight")
		examples := fs.Int("examples", 10, "show the first N differences in detail")
		timeout := fs.Duration("timeout", 5*time.Second, "bound on connecting and on each round trip")
		asJSON := fs.Bool("json", false, "print the report as JSON")
		quiet := fs.Bool("quiet", false, "no progress messages (every 10 s on standard error)")
		userA := fs.String("username-a", "", "ACL user name for A")
		userB := fs.String("username-b", "", "ACL user name for B")
		pwA := fs.String("password-a", "", "password for A (prefer the environment variable)")
		pwB := fs.String("password-b", "", "password for B (prefer the environment variable)")
		tlsBoth := fs.Bool("tls", false, "connect to both sides with TLS")
		tlsA := fs.Bool("tls-a", false, "connect to A with TLS")
		tlsB := fs.Bool("tls-b", false, "connect to B with TLS")
		tlsCA := fs.String("tls-ca", "", "PEM file of the CAs that sign the servers' certificates (default: the system's)")
		tlsSkip := fs.Bool("tls-skip-verify", false, "do not verify the servers' certificates (testing only)")
		pos, err := env.Parse(fs, args)
		if err != nil {
			return err
		}
		if len(pos) != 2 {
			return cli.UsageError("want two addresses, ADDR_A and ADDR_B (host:port)")
		}
		if *rate < 0 || *batch < 1 || *concurrency < 1 || *examples < 0 || *timeout <= 0 || *sample < 0 {
			return cli.UsageError("--rate, --batch, --concurrency, --examples, --timeout and --sample must not be negative (--batch, --concurrency, --timeout: positive)")
		}
		sources := 0
		for _, given := range []bool{*keys != "", *dataset != "", *sample > 0} {
			if given {
				sources++
			}
		}
		if sources > 1 {
			return cli.UsageError("give at most one of --keys, --dataset and --sample")
		}
		if *both && sources > 0 {
			return cli.UsageError("--both applies only when SCAN chooses the keys (no --keys, --dataset or --sample)")
		}
		if *keysB64 && *keys == "" {
			return cli.UsageError("--keys-b64 needs --keys")
		}
		opts := diff.Options{
			A:       diff.Endpoint{Addr: pos[0], Username: *userA, Password: *pwA},
			B:       diff.Endpoint{Addr: pos[1], Username: *userB, Password: *pwB},
			Dataset: *dataset, Sample: *sample, Both: *both, KeysBase64: *keysB64,
			Rate: *rate, Batch: *batch, Concurrency: *concurrency, Examples: *examples, Timeout: *timeout,
		}
		if *rate == 0 {
			opts.Rate = -1
		}
		if *examples == 0 {
			opts.Examples = -1
		}
		if *tlsBoth || *tlsA || *tlsB {
			cfg, err := tlsConfig(*tlsCA, *tlsSkip)
			if err != nil {
				return err
			}
			if *tlsBoth || *tlsA {
				opts.A.TLS = cfg
			}
			if *tlsBoth || *tlsB {
				opts.B.TLS = cfg
			}
		} else if *tlsCA != "" || *tlsSkip {
			return cli.UsageError("--tls-ca and --tls-skip-verify need --tls, --tls-a or --tls-b")
		}
		switch *keys {
		case "":
		case "-":
			opts.Keys = os.Stdin
		default:
			f, err := os.Open(*keys)
			if err != nil {
				return fmt.Errorf("diff: keys: %w", err)
			}
			defer f.Close()
			opts.Keys = f
		}
		// go-redis logs failed dials itself; the error returned says it once.
		redis.SetLogger(quietRedisLogger{})
		if !*quiet {
			log := env.Logger(false)
			opts.Progress = func(compared, differences int64) {
				log.Info("comparing", zap.Int64("compared", compared), zap.Int64("differences", differences))
			}
		}

		rep, err := diff.Run(ctx, opts)
		if errors.Is(err, diff.ErrOptions) {
			return cli.UsageError("%v", err)
		}
		if rep == nil {
			return err
		}
		// A run cut short (an interrupt, a server gone) still reports what
		// it compared.
		if err != nil {
			fmt.Fprintf(env.Stderr, "diff: stopped after %d keys; the report below is partial\n", rep.Compared)
		}
		var werr error
		if *asJSON {
			werr = writeJSON(env.Stdout, rep)
		} else {
			werr = rep.WriteText(env.Stdout)
		}
		return errors.Join(err, werr, rep.Err())
	}
	return c
}

func writeJSON(w io.Writer, rep *diff.Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

func tlsConfig(caFile string, skipVerify bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: skipVerify}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("diff: --tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, cli.UsageError("--tls-ca %s: no PEM certificate in it", strconv.Quote(caFile))
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

type quietRedisLogger struct{}

func (quietRedisLogger) Printf(context.Context, string, ...any) {}
