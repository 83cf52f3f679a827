# batchkv — build, test, run the demo, benchmark.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/batchkv/batchkv/internal/buildinfo.Version=$(VERSION)
GO      ?= go
export CGO_ENABLED ?= 0

# Fuzz targets run briefly by `make test` (FUZZTIME each) and longer by `make fuzz`.
FUZZ_TARGETS := \
	./internal/release:FuzzParse \
	./internal/manifest:FuzzParse \
	./internal/remote:FuzzParse \
	./internal/publish:FuzzParsePointer \
	./internal/redistest:FuzzReadReply \
	./internal/input:FuzzParseJSONL \
	./internal/input:FuzzCSV \
	./internal/resp:FuzzReader \
	./internal/resp:FuzzReaderRoundTrip \
	./internal/resp:FuzzSplitArgs \
	./internal/server:FuzzDispatch \
	./internal/syncer:FuzzParseJournal \
	./internal/cluster:FuzzTopology
FUZZTIME ?= 5s

.PHONY: all build build-static test test-unit test-goroutine test-race fuzz fuzz-short lint tools run clean bench
all: build

# batchkv, the build tool, ships in no image: it links the C zstd when a C
# compiler is there (10 M keys: 1.2 M keys/s and 74 bytes/key, against 0.7-1.1 M
# and 77 with Pebble's pure-Go port; docs/BENCHMARKS.md, Building), and is
# static like the servers otherwise. Either reads what the other wrote.
BATCHKV_CGO ?= $(if $(shell command -v gcc 2>/dev/null),1,0)

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/batchkv-server ./cmd/server
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/batchkv-syncer ./cmd/syncer
	CGO_ENABLED=$(BATCHKV_CGO) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/batchkv ./cmd/batchkv

# The static build line the Dockerfiles run (CMD=server|syncer|batchkv).
CMD ?= server
OUT ?= bin/batchkv-$(CMD)
build-static:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(OUT) ./cmd/$(if $(filter batchkv,$(CMD)),batchkv,$(CMD))

# The whole suite: vet and formatting, unit and integration tests (real
# redis-server, real S3 gateway, real processes), the race detector on the
# concurrent core, and a short run of every fuzz target.
test: lint tools
	$(GO) test -count=1 -timeout 30m ./...
	$(MAKE) test-goroutine test-race fuzz-short

# The server's tests again on the other I/O engine (--io goroutine; the
# event loops are the default on Linux).
test-goroutine:
	BATCHKV_SERVER_TEST_IO=goroutine $(GO) test -count=1 -timeout 15m ./internal/server/...

test-race:
	CGO_ENABLED=1 $(GO) test -count=1 -race -timeout 15m ./internal/store/... ./internal/swap/... ./internal/server/...

fuzz-short:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) $$pkg >/dev/null || \
			{ $(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) $$pkg; exit 1; }; \
	done

fuzz:
	$(MAKE) fuzz-short FUZZTIME=$${FUZZTIME:-2m}

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }

# Test tools that are built from source once and cached in ./.tools.
tools:
	scripts/tools.sh

run: build
	scripts/run-demo.sh

# Side by side with redis-server 7 on the same generated data (docs/BENCHMARKS.md
# has the last result; BENCHFLAGS e.g. --quick, --keys N, --duration 1s, --repeats 1).
BENCHFLAGS ?=
bench: build
	$(GO) build -trimpath -o bin/batchkv-bench ./cmd/bench
	bin/batchkv-bench --server-bin bin/batchkv-server --docs docs/BENCHMARKS.md $(BENCHFLAGS)

clean:
	rm -rf bin .run

# Soak (issue 7): versions swapped every few seconds under steady load for
# SOAK_DURATION (default 30m), then fds, goroutines and RSS against their
# baseline and zero failed requests. A 30s form runs in make test.
SOAK_DURATION ?= 30m
.PHONY: soak
soak:
	SOAK_DURATION=$(SOAK_DURATION) $(GO) test -count=1 -v -timeout 0 -run '^TestSoak$$' ./test/soak/

# Benchmarks of issue 6 beyond make bench (docs/BENCHMARKS.md "Syncer download",
# "Swap under load", "Start-up"). Each builds its own binaries into .run/bench.
# s5cmd, the side-by-side of bench-syncer, is a Go module installed into .tools
# (from the module cache when the proxy refuses the version list).
S5CMD_VERSION ?= v2.3.0
SYNCERBENCH_BYTES ?= 2147483648
SYNCERBENCH_REPEATS ?= 5
SWAPBENCH_KEYS ?= 500000
STARTUPBENCH_KEYS ?= 2000000
.PHONY: bench-syncer bench-swap bench-startup
.tools/s5cmd:
	mkdir -p .tools
	GOBIN=$(CURDIR)/.tools CGO_ENABLED=0 $(GO) install github.com/peak/s5cmd/v2@$(S5CMD_VERSION) || \
		GOBIN=$(CURDIR)/.tools CGO_ENABLED=0 GOPROXY=file://$$($(GO) env GOMODCACHE)/cache/download GOSUMDB=off \
		$(GO) install github.com/peak/s5cmd/v2@$(S5CMD_VERSION)
bench-syncer: tools .tools/s5cmd
	BATCHKV_S5CMD=$(CURDIR)/.tools/s5cmd BATCHKV_SYNCER_BENCH_BYTES=$(SYNCERBENCH_BYTES) \
		BATCHKV_SYNCER_BENCH_REPEATS=$(SYNCERBENCH_REPEATS) \
		$(GO) test -count=1 -run '^$$' -bench '^BenchmarkSyncerVsS5cmd$$' -benchtime 1x -timeout 60m ./internal/syncer
.run/bench/batchkv-%: FORCE
	$(GO) build -trimpath -o $@ ./cmd/$*
FORCE:
bench-swap: .run/bench/batchkv-server
	BATCHKV_SERVER_BIN=$(CURDIR)/.run/bench/batchkv-server BATCHKV_SWAP_KEYS=$(SWAPBENCH_KEYS) \
		BATCHKV_SWAP_SERVER_FLAGS="$(SWAPBENCH_SERVER_FLAGS)" \
		BATCHKV_SWAP_CSV=$(CURDIR)/docs/swap-latency.csv BATCHKV_SWAP_PNG=$(CURDIR)/docs/swap-latency.png \
		$(GO) test -count=1 -run '^$$' -bench '^BenchmarkSwap$$' -benchtime 1x -timeout 30m ./internal/bench
bench-startup: tools .run/bench/batchkv-server .run/bench/batchkv-syncer
	BATCHKV_SERVER_BIN=$(CURDIR)/.run/bench/batchkv-server BATCHKV_SYNCER_BIN=$(CURDIR)/.run/bench/batchkv-syncer \
		BATCHKV_STARTUP_KEYS=$(STARTUPBENCH_KEYS) \
		$(GO) test -count=1 -run '^$$' -bench '^BenchmarkStartup$$' -benchtime 1x -timeout 30m ./internal/bench

# Issue 5: the mixed-version window of a coordinated sharded swap (3 batchkv-server
# --root + syncers, a GET poller per server), over MIXED_WINDOW_RUNS version changes.
MIXED_WINDOW_RUNS ?= 10
.PHONY: mixed-window
mixed-window: tools
	BATCHKV_MIXED_WINDOW_RUNS=$(MIXED_WINDOW_RUNS) $(GO) test -count=1 -v -run '^TestMixedVersionWindow$$' -timeout 30m ./internal/syncer

# Issue 5: cluster mode. GET throughput of a 3-shard batchkv cluster vs one server with the same
# data (median of 3), and the sharded swap under cluster-client load over CLUSTER_SWAP_RUNS swaps
# (its one-swap form runs in make test).
CLUSTER_BENCH_KEYS ?= 1000000
CLUSTER_SWAP_RUNS ?= 5
.PHONY: bench-cluster cluster-swap
bench-cluster:
	BATCHKV_CLUSTER_BENCH=1 BATCHKV_CLUSTER_BENCH_KEYS=$(CLUSTER_BENCH_KEYS) $(GO) test -count=1 -v -run "^TestClusterThroughput$$" -timeout 30m ./test/cluster
cluster-swap:
	BATCHKV_CLUSTER_SWAP_RUNS=$(CLUSTER_SWAP_RUNS) $(GO) test -count=1 -v -run "^TestClusterSwapUnderLoad$$" -timeout 30m ./test/cluster
