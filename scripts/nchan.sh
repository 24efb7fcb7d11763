#!/usr/bin/env bash
# nchan (nginx's pub/sub module) on loopback, as an external target for pushbench: one nginx
# master and one worker, everything they write kept in a scratch directory DIR.
#
#   scripts/nchan.sh start DIR [PORT]   # PORT: a free loopback port when not given
#   scripts/nchan.sh stop DIR
#   scripts/nchan.sh restart DIR [PORT]  # stop, then start: a fresh server
#
# start installs nginx and libnginx-mod-nchan when missing, renders
# deploy/nchan/nginx.conf.template into DIR/nginx.conf, starts nginx, waits until /healthz
# answers and writes DIR/nchan.env (shell syntax) with BASE_URL, NCHAN_PORT,
# NCHAN_MASTER_PID and NCHAN_PIDS (master and workers). Starting a running DIR again only
# prints its BASE_URL; stopping a stopped DIR does nothing. Both print `BASE_URL=...` or
# `stopped` on stdout. The URLs (deploy/nchan/README.md has the protocol), {topic} being the
# topic path, e.g. acme/app/builds/1/steps/4:
#   publish      POST $BASE_URL/pub/{topic}
#   SSE          $BASE_URL/sub/{topic}       (Accept: text/event-stream)
#   WebSocket    ws://127.0.0.1:PORT/sub/{topic}
#   long-poll    $BASE_URL/lp/{topic}        (408 after 30s without a message)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
usage="usage: scripts/nchan.sh start DIR [PORT] | stop DIR | restart DIR [PORT]"
cmd=${1:?$usage}
dir_arg=${2:?$usage}

# The pid in DIR/nginx.pid when it is a live nginx process, else nothing.
master_pid() {
  local pid
  [[ -s $dir/nginx.pid ]] || return 0
  read -r pid < "$dir/nginx.pid" || return 0
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  [[ -r /proc/$pid/comm && $(< "/proc/$pid/comm") == nginx ]] && echo "$pid"
  return 0
}

# The pids of the nginx processes whose parent is $1 (its workers).
children() {
  local stat rest pid ppid
  for stat in /proc/[0-9]*/stat; do
    { read -r rest < "$stat"; } 2>/dev/null || continue
    pid=${rest%% *}
    rest=${rest##*) }
    read -r _ ppid _ <<< "$rest"
    [[ $ppid == "$1" && $(< "/proc/$pid/comm") == nginx ]] 2>/dev/null && echo "$pid"
  done
  return 0
}

alive() {
  local pid
  for pid in "$@"; do
    [[ -d /proc/$pid && $(< "/proc/$pid/comm") == nginx ]] 2>/dev/null && return 0
  done
  return 1
}

healthy() {
  curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$1/healthz" 2>/dev/null
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Writes $dir/nginx.conf from the template for port $1.
render() {
  local tpl user_line name
  local -A values
  # As root the worker would run as nobody and could not reach a 0700 scratch directory.
  if [[ $(id -u) -eq 0 ]]; then user_line="user root;"; else user_line=""; fi
  tpl=$(< "$root/deploy/nchan/nginx.conf.template")
  values=([USER_LINE]=$user_line [DIR]=$dir [PORT]=$1)
  for name in "${!values[@]}"; do
    tpl=${tpl//"\${$name}"/"${values[$name]}"}
  done
  printf '%s\n' "$tpl" > "$dir/nginx.conf"
}

start() {
  local want=${1:-} port master pids workers try i
  mkdir -p "$dir_arg"
  dir=$(cd "$dir_arg" && pwd)

  master=$(master_pid)
  if [[ -n $master && -s $dir/nchan.env ]]; then
    # shellcheck disable=SC1091
    port=$(source "$dir/nchan.env" && echo "$NCHAN_PORT")
    if healthy "$port"; then
      echo "nchan already running in $dir (master $master)" >&2
      echo "BASE_URL=http://127.0.0.1:$port"
      return 0
    fi
  fi
  [[ -z $master ]] || stop_dir

  "$root/scripts/ensure-debian-packages.sh" nginx libnginx-mod-nchan curl >&2
  mkdir -p "$dir/tmp"
  rm -f "$dir/nchan.env" "$dir/nginx.pid"
  # A port picked here may be taken before nginx binds it: then up to 3 tries.
  for ((try = 1; ; try++)); do
    if [[ -n $want ]]; then port=$want; else port=$(free_port); fi
    [[ $port =~ ^[0-9]+$ ]] || { echo "nchan.sh: bad port: $port" >&2; exit 2; }
    render "$port"
    : > "$dir/error.log"
    # -e: the error log before the config is read (the default would be stderr, and the
    # Debian build's /var/log/nginx is never touched); daemon on: nginx returns once the
    # master runs, with a non-zero status when it could not bind or parse.
    if nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" 2>/dev/null; then break; fi
    if [[ -z $want && $try -lt 3 ]] && grep -q 'Address already in use' "$dir/error.log"; then
      continue
    fi
    echo "nchan.sh: nginx did not start; $dir/error.log:" >&2
    tail -n 20 "$dir/error.log" >&2 || true
    exit 1
  done
  for ((i = 0; i < 100; i++)); do
    master=$(master_pid)
    if [[ -n $master ]] && healthy "$port"; then break; fi
    sleep 0.1
  done
  if [[ -z $master ]] || ! healthy "$port"; then
    echo "nchan.sh: nginx is not answering on 127.0.0.1:$port; $dir/error.log:" >&2
    tail -n 20 "$dir/error.log" >&2 || true
    [[ -z $master ]] || stop_dir
    exit 1
  fi
  workers=$(children "$master" | tr '\n' ' ')
  pids="$master ${workers% }"
  pids=${pids% }
  cat > "$dir/nchan.env" <<EOF
BASE_URL=http://127.0.0.1:$port
NCHAN_PORT=$port
NCHAN_DIR=$dir
NCHAN_MASTER_PID=$master
NCHAN_PIDS="$pids"
EOF
  echo "nchan running in $dir: master $master, workers ${workers% }" >&2
  echo "BASE_URL=http://127.0.0.1:$port"
}

# Stops the nginx of $dir: graceful quit (workers close streams after
# worker_shutdown_timeout), then TERM, then KILL; returns when every process is gone.
stop_dir() {
  local master pids sig i
  master=$(master_pid)
  if [[ -z $master ]]; then
    rm -f "$dir/nchan.env" "$dir/nginx.pid"
    return 0
  fi
  mapfile -t pids < <(echo "$master"; children "$master")
  for sig in QUIT TERM KILL; do
    if [[ $sig == KILL ]]; then
      kill -KILL "${pids[@]}" 2>/dev/null || true
    else
      kill -"$sig" "$master" 2>/dev/null || true
    fi
    for ((i = 0; i < 100; i++)); do
      alive "${pids[@]}" || break 2
      sleep 0.1
    done
  done
  if alive "${pids[@]}"; then
    echo "nchan.sh: nginx processes ${pids[*]} did not exit" >&2
    exit 1
  fi
  rm -f "$dir/nchan.env" "$dir/nginx.pid"
}

case $cmd in
  start)
    start "${3:-}"
    ;;
  restart)
    # A fresh nginx (e.g. `pushbench run --before-each`): every transport meets a server
    # that has not yet allocated memory for another's connections.
    if [[ -d $dir_arg ]]; then
      dir=$(cd "$dir_arg" && pwd)
      stop_dir
    fi
    start "${3:-}"
    ;;
  stop)
    if [[ ! -d $dir_arg ]]; then
      echo stopped
      exit 0
    fi
    dir=$(cd "$dir_arg" && pwd)
    stop_dir
    echo stopped
    ;;
  *)
    echo "$usage" >&2
    exit 2
    ;;
esac
