#!/usr/bin/env bash
# `make run`: the whole thing, locally, on the embedded default (file://).
# Generates a demo dataset, builds it, publishes it to a local file:// store,
# runs the syncer (which installs it into a local shared volume) and the
# server (which follows that volume) on 127.0.0.1:6379 (BATCHKV_ADDR
# overrides) until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
addr="${BATCHKV_ADDR:-127.0.0.1:6379}"
keys="${DEMO_KEYS:-10000}"
work="$PWD/.run"
remote="file://$work/remote/demo"
root="$work/volume"
rm -rf "$work"
mkdir -p "$work"

bin/batchkv gen --out "$work/demo-input" --keys "$keys" --seed 1
bin/batchkv build --quiet --input "$work/demo-input" --out "$work/demo-v1" --name demo
bin/batchkv publish --quiet "$work/demo-v1" "$remote"

bin/batchkv-syncer --source "$remote" --root "$root" --interval 2s --log-format console \
	2> "$work/syncer.log" &
syncer=$!
trap 'kill $syncer 2>/dev/null || true' EXIT

port="${addr##*:}"
sample=$(bin/batchkv inspect --samples 3 "$work/demo-v1" | sed -n 's/^  "\([^"]*\)" string.*/\1/p' | head -n 1)
cat <<MSG

Serving dataset "demo" on $addr (syncer log: $work/syncer.log). In another terminal:
  redis-cli -p $port GET $sample
  redis-cli -p $port DBSIZE
  redis-cli -p $port INFO dataset
Publish a second version and watch the server swap to it, with no restart:
  bin/batchkv gen --out $work/input2 --keys 20000 --seed 2
  bin/batchkv build --input $work/input2 --out $work/demo-v2 --name demo
  bin/batchkv publish $work/demo-v2 $remote
  redis-cli -p $port INFO dataset        # version and swaps change within seconds
Roll back:  bin/batchkv pin $remote <version>   (bin/batchkv versions $remote lists them)

MSG
bin/batchkv-server --addr "$addr" --root "$root" --log-format console --shutdown-drain 0
