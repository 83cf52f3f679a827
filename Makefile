# batchkv — build, test, run the demo, benchmark.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/batchkv/batchkv/internal/buildinfo.Version=$(VERSION)
GO      ?= go
export CGO_ENABLED ?= 0

.PHONY: build test lint run bench clean
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/batchkv-server ./cmd/server
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/batchkv-syncer ./cmd/syncer
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/batchkv ./cmd/batchkv

test:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

clean:
	rm -rf bin .run
