// Command batchkv-server serves a batchkv dataset over the Redis protocol.
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
	"github.com/batchkv/batchkv/internal/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := server.Run(ctx, os.Args[1:], os.Stderr, os.LookupEnv)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, cli.ErrUsage):
		fmt.Fprintln(os.Stderr, "batchkv-server:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "batchkv-server:", err)
		os.Exit(1)
	}
}
