#!/bin/sh
# Installs the test tools into ./.tools (idempotent; fast when present):
#   versitygw  the Versity S3 Gateway, the real S3 server of the tests
#              (internal/s3test finds it here, or via $BATCHKV_VERSITYGW).
# Built from source with the Go toolchain (about 100 s the first time).
set -eu
cd "$(dirname "$0")/.."
VERSITYGW_VERSION=v1.8.0

bin=.tools/versitygw
# The module version is recorded in the binary by the Go toolchain.
if [ -x "$bin" ] && go version -m "$bin" 2>/dev/null |
	grep -Eq "^[[:space:]]+mod[[:space:]]+github.com/versity/versitygw[[:space:]]+$VERSITYGW_VERSION([[:space:]]|\$)"; then
	exit 0
fi
echo "tools: installing versitygw $VERSITYGW_VERSION into .tools (go install, about 100 s)" >&2
mkdir -p .tools
GOBIN="$(pwd)/.tools" CGO_ENABLED=0 go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
