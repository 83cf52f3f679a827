// Command batchkv-syncer keeps a shared volume's live batchkv dataset version
// in step with a remote source (S3 or a directory); see internal/syncer.
package main

import (
	"context"
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
	os.Exit(cli.ExitCode("batchkv-syncer", err, os.Stderr))
}
