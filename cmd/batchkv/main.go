// Command batchkv builds, inspects and manages batchkv datasets; see
// internal/tool for the subcommands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/batchkv/batchkv/internal/cli"
	"github.com/batchkv/batchkv/internal/tool"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := tool.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(cli.ExitCode("batchkv", err, os.Stderr))
}
