#!/usr/bin/env bash
# nchan and feed-server side by side, measured the same way: both as external targets fed by
# pushbench's own publisher (scenarios/external-nchan.toml, scenarios/external-feed-server.toml),
# each server restarted before every transport (`--before-each`, so none inherits memory an
# earlier transport made it allocate) and pinned to core 0, pushbench on core 1; then
# `pushbench compare` of the two runs.
#
#   scripts/external-compare.sh [OUT]      # OUT: results folder (default results/)
#
# Prints the comparison and where the runs and compare.md are. Ports 9180 (nchan) and 9190
# (feed-server) must be free, and no other nginx or feed-server may run (the scenarios sample
# every process of that name).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results}
scripts/ensure-debian-packages.sh pkg-config libfontconfig1-dev libfreetype-dev fonts-dejavu-core \
  nginx libnginx-mod-nchan curl
cargo build --release --locked --bins
for name in nginx feed-server; do
  if pgrep -r R,S,D -x "$name" >/dev/null; then
    echo "another $name is running (pgrep -x $name): stop it first, its cost would be counted" >&2
    exit 1
  fi
done
work=$(mktemp -d)
cleanup() {
  scripts/nchan.sh stop "$work/nchan" >/dev/null || true
  scripts/feed-server-bg.sh stop "$work/feed-server" || true
  rm -rf "$work"
}
trap cleanup EXIT

# The server on core 0, pushbench on core 1 (on a machine with two cores or more).
server_pin="" pushbench_pin=()
if command -v taskset >/dev/null && (($(nproc) >= 2)); then
  server_pin="taskset -c 0"
  pushbench_pin=(taskset -c 1)
fi
# The newest run folder of a scenario.
latest() { ls -d "$out/$1"/*/ | sort | tail -n 1; }

"${pushbench_pin[@]}" target/release/pushbench run scenarios/external-nchan.toml --out "$out" \
  --no-pin --before-each "$server_pin scripts/nchan.sh restart $work/nchan 9180"
scripts/nchan.sh stop "$work/nchan" >/dev/null
"${pushbench_pin[@]}" target/release/pushbench run scenarios/external-feed-server.toml --out "$out" \
  --no-pin --before-each "$server_pin scripts/feed-server-bg.sh restart $work/feed-server 9190"
scripts/feed-server-bg.sh stop "$work/feed-server"

target/release/pushbench compare "$(latest external-feed-server)" "$(latest external-nchan)"
