// Command batchkv-syncer keeps a shared volume's live batchkv dataset version
// in step with a remote source (S3 or a directory); see internal/syncer.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/batchkv/batchkv/internal/cli"
	"github.com/batchkv/batchkv/internal/syncer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := syncer.Command(ctx, os.Args[1:], os.Stderr, os.LookupEnv)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, cli.ErrUsage):
		fmt.Fprintln(os.Stderr, "batchkv-syncer:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "batchkv-syncer:", err)
		os.Exit(1)
	}
}
