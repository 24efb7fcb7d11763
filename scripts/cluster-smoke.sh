#!/usr/bin/env bash
# The smoke test of scripts/cluster.sh (run by scripts/test.sh, or by hand after
# `cargo build -p feed-server`): a cluster of 2 instances on one Redis behind nginx, one line
# POSTed through nginx, read back by a poll through nginx and from each instance directly (so
# every instance serves the shared log, whichever one took the POST); then stop, and no
# process of the cluster may be left.
#
#   scripts/cluster-smoke.sh [FEED-SERVER]   # default target/debug/feed-server
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
feed_server=${1:-$root/target/debug/feed-server}
dir=$(mktemp -d /tmp/pushbench-cluster-smoke.XXXXXX)
cleanup() {
  "$root/scripts/cluster.sh" stop "$dir" > /dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
fail() {
  echo "cluster smoke: $*" >&2
  exit 1
}

"$root/scripts/cluster.sh" start "$dir" --instances 2 --feed-server "$feed_server" > /dev/null
# shellcheck disable=SC1091
source "$dir/cluster.env"
logs=/smoke/cluster/builds/1/steps/1/logs
line="cluster smoke line $$"

curl -fsS --max-time 5 -X POST -H 'content-type: text/plain' --data-binary "$line" \
  "$BASE_URL$logs" > /dev/null || fail "POST $BASE_URL$logs failed"

# The line texts of a poll answer from $1, one per output line.
poll_lines() {
  local body
  body=$(curl -sS --max-time 5 -w '\n%{http_code}' "$1$logs?after=0") || return 1
  [[ ${body##*$'\n'} == 200 ]] || { echo "HTTP ${body##*$'\n'}: ${body%$'\n'*}"; return 1; }
  python3 -c 'import json, sys; [print(l["line"]) for l in json.load(sys.stdin)["lines"]]' \
    <<< "${body%$'\n'*}"
}
for url in "$BASE_URL" $INSTANCE_URLS; do
  got=$(poll_lines "$url") || fail "poll of $url$logs: $got"
  [[ $got == "$line" ]] || fail "poll of $url$logs: expected ${line@Q}, got ${got@Q}"
  echo "cluster smoke: $url has the line"
done

# Every process, nginx's workers included, looked up before stop.
pids=($NGINX_PID $INSTANCE_PIDS $REDIS_PID)
for stat in /proc/[0-9]*/stat; do
  { read -r s < "$stat"; } 2>/dev/null || continue
  rest=${s##*) }
  read -r _ ppid _ <<< "$rest"
  [[ $ppid == "$NGINX_PID" ]] && pids+=("${s%% *}")
done
"$root/scripts/cluster.sh" stop "$dir"
for pid in "${pids[@]}"; do
  state=$(sed -E 's/^.*\) ([A-Z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null || echo gone)
  [[ $state == gone || $state == Z ]] || fail "pid $pid ($(cat "/proc/$pid/comm")) still runs after stop"
done
[[ ! -e $dir/cluster.env ]] || fail "stop left $dir/cluster.env"
"$root/scripts/cluster.sh" stop "$dir" | grep -q 'nothing running' || fail "a second stop is not a no-op"
echo "cluster smoke: ok (${#pids[@]} processes stopped)"
