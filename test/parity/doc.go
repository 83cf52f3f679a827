// Package parity is the differential test of batchkv-server against a real
// redis-server 7.0: both serve the same generated dataset, receive the same
// generated commands, and must reply with the same bytes — except for the
// replies listed in Deviations, which are compared by meaning instead.
//
// Run it with `go test ./test/parity`. Environment:
//
//	PARITY_SEED=N        reproduce a run (the seed is printed by every run)
//	PARITY_COMMANDS=N    commands to compare (default 24000)
//	PARITY_BUDGET=D      time budget for the commands (default 60s)
//	PARITY_KEYS=N        approximate dataset size (default 20000)
//	PARITY_TARGET=redis  compare redis-server with a second redis-server
//	                     (self-check of the suite) instead of batchkv-server
//	PARITY_MAX_DIFFS=N   differences printed in full (default 20)
package parity
