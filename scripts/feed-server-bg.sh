#!/usr/bin/env bash
# feed-server in the background as an external target (no generator: pushbench publishes),
# for scripts/external-compare.sh and `pushbench run --before-each`.
#
#   scripts/feed-server-bg.sh start DIR PORT     # DIR: its pid file and log
#   scripts/feed-server-bg.sh stop DIR
#   scripts/feed-server-bg.sh restart DIR PORT   # stop, then start: a fresh server
#
# start returns once /healthz answers; the server runs on after this script exits (setsid),
# with the CPU affinity this script has (run it under taskset to pin it) and one tokio worker
# (FEED_SERVER_WORKERS=N for more): what pushbench gives the feed-server it starts itself
# ([server] workers = 1), and what nginx gets in deploy/nchan (one worker process).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
usage="usage: scripts/feed-server-bg.sh start DIR PORT | stop DIR | restart DIR PORT"
cmd=${1:?$usage}
dir=${2:?$usage}
binary=${FEED_SERVER:-$root/target/release/feed-server}

stop() {
  local pid i
  [[ -s $dir/feed-server.pid ]] || return 0
  read -r pid < "$dir/feed-server.pid"
  if [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/comm && $(< "/proc/$pid/comm") == feed-server ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      [[ -d /proc/$pid && $(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) != Z ]] || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/feed-server.pid"
}

start() {
  local port=${1:?$usage} i
  [[ -x $binary ]] || { echo "feed-server-bg.sh: $binary is not built (cargo build --release)" >&2; exit 1; }
  mkdir -p "$dir"
  setsid "$binary" --listen "127.0.0.1:$port" --gen-topics 0 \
    --workers "${FEED_SERVER_WORKERS:-1}" > "$dir/feed-server.log" 2>&1 < /dev/null &
  echo $! > "$dir/feed-server.pid"
  for ((i = 0; i < 100; i++)); do
    curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "feed-server-bg.sh: not answering on 127.0.0.1:$port; $dir/feed-server.log:" >&2
  tail -n 20 "$dir/feed-server.log" >&2 || true
  stop
  exit 1
}

case $cmd in
  start) start "${3:-}" ;;
  stop) stop ;;
  restart) stop; start "${3:-}" ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
