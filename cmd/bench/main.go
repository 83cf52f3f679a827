// Command batchkv-bench measures batchkv-server side by side with redis-server
// on the same generated data (`make bench`); see package bench.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/batchkv/batchkv/internal/bench"
	"github.com/batchkv/batchkv/internal/cli"
)

func main() {
	// On Ctrl-C the run stops and Run's deferred stops kill both servers.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := bench.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(cli.ExitCode("batchkv-bench", err, os.Stderr))
}
