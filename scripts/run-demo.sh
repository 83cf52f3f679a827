#!/usr/bin/env bash
# `make run`: generate a small demo dataset, build it, and serve it on
# 127.0.0.1:6379 (override with BATCHKV_ADDR) until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
addr="${BATCHKV_ADDR:-127.0.0.1:6379}"
keys="${DEMO_KEYS:-10000}"
work=.run
mkdir -p "$work"
rm -rf "$work/demo.jsonl" "$work/demo"
bin/batchkv gen --out "$work/demo.jsonl" --keys "$keys" --seed 1
bin/batchkv build --input "$work/demo.jsonl" --out "$work/demo" --name demo
bin/batchkv inspect "$work/demo"
port="${addr##*:}"
echo
echo "Serving the demo dataset on $addr. In another terminal, try:"
echo "  redis-cli -p $port DBSIZE"
echo "  redis-cli -p $port --scan --count 5 | head -n 5"
echo "  redis-cli -p $port GET <one of the sample keys above>   (or HGETALL for a hash)"
echo
exec bin/batchkv-server --addr "$addr" --dataset "$work/demo"
