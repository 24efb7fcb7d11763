#!/usr/bin/env bash
# nchan and feed-server side by side, measured the same way: both as external targets fed by
# pushbench's own publisher (scenarios/external-nchan.toml, scenarios/external-feed-server.toml),
# each server on core 0 and pushbench on core 1, then `pushbench compare` of the two runs.
#
#   scripts/external-compare.sh [OUT]      # OUT: results folder (default results/)
#
# Prints the comparison and where the runs and compare.md are. Ports 9180 (nchan) and 9190
# (feed-server) must be free.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results}
scripts/ensure-debian-packages.sh pkg-config libfontconfig1-dev libfreetype-dev fonts-dejavu-core \
  nginx libnginx-mod-nchan curl
cargo build --release --locked --bins
work=$(mktemp -d)
feed_pid=""
cleanup() {
  scripts/nchan.sh stop "$work/nchan" >/dev/null || true
  [[ -n $feed_pid ]] && kill "$feed_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

pin() { if command -v taskset >/dev/null && (($(nproc) >= 2)); then taskset -c "$1" "${@:2}"; else "${@:2}"; fi; }

# The newest run folder of a scenario.
latest() { ls -d "$out/$1"/*/ | sort | tail -n 1; }

# The nchan scenario samples every process named nginx: another nginx would be counted too.
if pgrep -x nginx >/dev/null; then
  echo "another nginx is running (pgrep -x nginx): stop it first, its cost would be counted as nchan's" >&2
  exit 1
fi
if pgrep -x feed-server >/dev/null; then
  echo "another feed-server is running: stop it first, its cost would be counted" >&2
  exit 1
fi
pin 0 scripts/nchan.sh start "$work/nchan" 9180 >/dev/null
pin 1 target/release/pushbench run scenarios/external-nchan.toml --out "$out" --no-pin
scripts/nchan.sh stop "$work/nchan" >/dev/null

pin 0 target/release/feed-server --listen 127.0.0.1:9190 --gen-topics 0 > "$work/feed-server.log" 2>&1 &
feed_pid=$!
for _ in $(seq 100); do curl -fsS -o /dev/null http://127.0.0.1:9190/healthz 2>/dev/null && break; sleep 0.1; done
pin 1 target/release/pushbench run scenarios/external-feed-server.toml --out "$out" --no-pin
kill "$feed_pid"; wait "$feed_pid" 2>/dev/null || true; feed_pid=""

target/release/pushbench compare "$(latest external-feed-server)" "$(latest external-nchan)"
