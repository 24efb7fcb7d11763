#!/usr/bin/env bash
# A sharded run on this one machine, beside the unsharded run it must equal: one feed-server
# (scripts/feed-server-bg.sh, pushbench publishes), N shards of the scenario started together
# (`--shard I/N --start-at T`), `pushbench merge`, then the same scenario unsharded against
# the same server, and `pushbench compare` of the two. On one machine the shards share its
# cores, so this shows that merging is exact (equal totals, the clocks' offset 0), not what N
# machines could carry: docs/distributed.md runs it on several.
#
#   scripts/shards-local.sh [OUT] [N]     # OUT default results/benchmarks/distributed, N 2
#
# SCENARIO=FILE picks another scenario (default scenarios/distributed.toml); port 9191 must
# be free.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/benchmarks/distributed}
n=${2:-2}
scenario=${SCENARIO:-scenarios/distributed.toml}
port=9191
cargo build --release --locked --bins
work=$(mktemp -d)
cleanup() {
  scripts/feed-server-bg.sh stop "$work/feed-server" || true
  rm -rf "$work"
}
trap cleanup EXIT
FEED_SERVER_WORKERS=${FEED_SERVER_WORKERS:-2} scripts/feed-server-bg.sh start "$work/feed-server" "$port"
target=http://127.0.0.1:$port
# Time for N processes to start and ask the server's clock.
t=$(($(date +%s) + 5))
runs=$out/$t
mkdir -p "$runs"
pids=()
for i in $(seq 1 "$n"); do
  target/release/pushbench run "$scenario" --target "$target" --shard "$i/$n" --start-at "$t" \
    --out "$runs/shard-$i" --quiet --no-pin > "$work/shard-$i.log" 2>&1 &
  pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { echo "shard $((i + 1)) failed: $(tail -n 3 "$work/shard-$((i + 1)).log")" >&2; failed=1; }
done
((failed == 0)) || exit 1
target/release/pushbench merge "$runs/merged" "$runs"/shard-*
target/release/pushbench run "$scenario" --target "$target" --out "$runs/whole" --quiet --no-pin
whole=$(find "$runs/whole" -mindepth 2 -maxdepth 2 -type d | head -n 1)
target/release/pushbench compare "$whole" "$runs/merged"
echo "shards: $runs/shard-*; merged: $runs/merged; unsharded: $whole"
