// Command batchkv-server serves a batchkv dataset over the Redis protocol.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/batchkv/batchkv/internal/cli"
	"github.com/batchkv/batchkv/internal/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := server.Run(ctx, os.Args[1:], os.Stderr, os.LookupEnv)
	stop()
	os.Exit(cli.ExitCode("batchkv-server", err, os.Stderr))
}
