#!/usr/bin/env bash
# Several feed-server instances on one Redis Streams log behind nginx, on loopback, everything
# they write kept in DIR: redis-server, N instances and nginx from Debian packages (installed
# when missing), optionally one more feed-server running the generator (the "build runner").
#
#   scripts/cluster.sh start DIR [--instances N] [--feed-server PATH] [--publisher]
#                                [--publisher-topics N] [-- EXTRA FEED-SERVER ARGS]
#   scripts/cluster.sh stop DIR
#
# start returns once every process answers and writes DIR/cluster.env (shell syntax):
#   BASE_URL        http://127.0.0.1:PORT, nginx: what clients use
#   REDIS_URL       redis://127.0.0.1:PORT, the shared log
#   INSTANCE_URLS   "http://… http://…", each instance directly (not behind nginx)
#   INSTANCE_PIDS   "PID PID", in the same order
#   NGINX_PID       nginx's master; REDIS_PID redis-server's
#   PUBLISHER_URL, PUBLISHER_PID   with --publisher only (not behind nginx)
#   CLUSTER_DIR     DIR as an absolute path
# Logs: DIR/redis.log, DIR/instance-K.log, DIR/publisher.log, DIR/nginx.log and
# DIR/nginx/error.log. Redis keeps its data in DIR/redis (AOF, fsync every second), so a
# Redis restarted on that directory has what it acknowledged up to a second before it died.
#
# Instances run `--listen 127.0.0.1:0 --gen-topics 0 --backend REDIS_URL` and print the port
# they bound (no port race); redis-server and nginx get a port found free a moment before and
# are retried on another when it was taken meanwhile. EXTRA arguments go to every feed-server
# (instances and publisher); --listen, --backend and --gen-topics are cluster.sh's to set.
# The feed-server binary: --feed-server PATH, else $FEED_SERVER, else target/release, else
# target/debug, the first of these two built with --backend (start names the one it uses); it
# is not built here (a release build takes minutes: cargo build --release -p feed-server).
#
# stop stops what DIR/cluster.env names: nginx first (no new requests), then the publisher,
# the instances and Redis last; TERM, then KILL after $CLUSTER_STOP_TIMEOUT seconds (default
# 10). It says what it stopped, and stopping a stopped DIR does nothing. deploy/README.md
# explains the nginx configuration and a rolling restart.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
usage="usage: scripts/cluster.sh start DIR [--instances N] [--feed-server PATH] [--publisher] [--publisher-topics N] [-- EXTRA FEED-SERVER ARGS]
       scripts/cluster.sh stop DIR"
stop_timeout=${CLUSTER_STOP_TIMEOUT:-10}
# Longest wait for one process to get ready, in tenths of a second.
ready_tenths=100

die() {
  echo "cluster.sh: $*" >&2
  exit 1
}

bad_usage() {
  echo "cluster.sh: $*" >&2
  echo "$usage" >&2
  exit 2
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Whether pid $1 is a live (not zombie) process named $2 (any name when $2 is empty: just
# after `setsid PROGRAM &` the child may still be bash or setsid, before its exec).
alive_as() {
  local pid=$1 name=${2:-} comm state
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  [[ -z $name || $comm == "$name" ]] || return 1
  state=$(sed -E 's/^.*\) ([A-Z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z ]]
}

# The pids of the processes whose parent is $1 (nginx's workers).
children_of() {
  local stat rest pid ppid
  for stat in /proc/[0-9]*/stat; do
    { read -r rest < "$stat"; } 2>/dev/null || continue
    pid=${rest%% *}
    rest=${rest##*) }
    read -r _ ppid _ <<< "$rest"
    [[ $ppid == "$1" ]] && echo "$pid"
  done
  return 0
}

# Stops pid $1 named $2 (described as $3): TERM, then KILL after the stop timeout. For nginx
# its workers too, should the master die before them. With $4 = any the name is not checked
# (a process start just launched may not have reached its exec yet).
stop_process() {
  local pid=$1 name=$2 what=$3 i extra=() p
  [[ ${4:-} != any ]] || name=""
  if ! alive_as "$pid" "$name"; then
    echo "not running: $what (pid $pid)"
    return 0
  fi
  if [[ $2 == nginx ]]; then
    mapfile -t extra < <(children_of "$pid")
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < stop_timeout * 10; i++)); do
    alive_as "$pid" "$name" || break
    sleep 0.1
  done
  if alive_as "$pid" "$name"; then
    kill -KILL "$pid" 2>/dev/null || true
    echo "stopped $what (pid $pid, KILL after ${stop_timeout}s)"
  else
    echo "stopped $what (pid $pid)"
  fi
  for p in "${extra[@]}"; do
    if alive_as "$p" "$name"; then
      kill -KILL "$p" 2>/dev/null || true
      echo "stopped $what worker (pid $p, KILL: its master was gone)"
    fi
  done
  for ((i = 0; i < 50; i++)); do
    alive_as "$pid" "$name" || return 0
    sleep 0.1
  done
  echo "cluster.sh: $what (pid $pid) did not exit" >&2
  return 1
}

# Whether feed-server binary $1 has the Redis backend. Not `| grep -q`: grep quitting early
# could fail the pipeline (pipefail, SIGPIPE).
has_backend() {
  [[ $("$1" --help 2>&1 || true) == *--backend* ]]
}

# --- start ---------------------------------------------------------------------------------

# What start has launched so far, stopped again if start fails: "pid name what" entries.
launched=()
start_done=0

undo_start() {
  local pid name what i
  ((start_done)) && return 0
  ((${#launched[@]})) || return 0
  echo "cluster.sh: start failed; stopping what it started" >&2
  for ((i = ${#launched[@]} - 1; i >= 0; i--)); do
    read -r pid name what <<< "${launched[i]}"
    stop_process "$pid" "$name" "$what" any >&2 || true
  done
}

# Prints the last lines of log $1 to stderr, then fails with message $2.
fail_with_log() {
  echo "cluster.sh: $2; $1:" >&2
  tail -n 20 "$1" >&2 2>/dev/null || true
  exit 1
}

# Starts redis-server in $dir/redis; sets redis_pid and redis_port.
start_redis() {
  local try i log=$dir/redis.log
  mkdir -p "$dir/redis"
  for ((try = 1; ; try++)); do
    redis_port=$(free_port)
    : > "$log"
    # AOF on, fsync every second: a restarted Redis on this directory keeps what it wrote.
    # No RDB snapshots (the AOF is the record); daemonize no: $! is redis-server itself.
    setsid redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir/redis" \
      --appendonly yes --appendfsync everysec --save '' --daemonize no \
      --logfile "$log" < /dev/null > /dev/null 2>&1 &
    redis_pid=$!
    launched+=("$redis_pid redis-server redis-server")
    for ((i = 0; i < ready_tenths; i++)); do
      # PONG, and from this redis-server (not another that held the port first).
      if [[ $(redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null) == PONG ]]; then
        redis-cli -h 127.0.0.1 -p "$redis_port" info server 2>/dev/null |
          tr -d '\r' | grep -qx "process_id:$redis_pid" && return 0
      fi
      alive_as "$redis_pid" || break
      sleep 0.1
    done
    if ! alive_as "$redis_pid" && ((try < 3)) &&
      grep -q 'Address already in use' "$log"; then
      unset 'launched[-1]'
      continue
    fi
    fail_with_log "$log" "redis-server did not answer PING on 127.0.0.1:$redis_port"
  done
}

# Starts one feed-server with arguments "$@" logging to $log; sets fs_pid and fs_url from
# the `listening on http://ADDR` line it prints once bound.
start_feed_server() {
  local what=$1 log=$2 i line
  shift 2
  : > "$log"
  setsid "$feed_server" --listen 127.0.0.1:0 --backend "$redis_url" "$@" "${extra_args[@]}" \
    < /dev/null >> "$log" 2>&1 &
  fs_pid=$!
  launched+=("$fs_pid feed-server $what")
  for ((i = 0; i < ready_tenths; i++)); do
    line=$(grep -m1 -o 'listening on http://[0-9.:]*' "$log" 2>/dev/null || true)
    if [[ -n $line ]]; then
      fs_url=${line#listening on }
      curl -fsS -o /dev/null --max-time 1 "$fs_url/healthz" 2>/dev/null && return 0
    fi
    alive_as "$fs_pid" || fail_with_log "$log" "$what exited before it was ready"
    sleep 0.1
  done
  fail_with_log "$log" "$what not ready after $((ready_tenths / 10))s"
}

# Renders the nginx template into $dir/nginx/nginx.conf for port $1.
render_nginx() {
  local upstreams=$dir/nginx/upstreams.conf url
  : > "$upstreams"
  for url in "${instance_urls[@]}"; do
    echo "        server ${url#http://} max_fails=1 fail_timeout=2s;" >> "$upstreams"
  done
  # UPSTREAMS is several lines: sed reads them from a file (r) in place of the placeholder.
  sed -e "s|{{PREFIX}}|$dir/nginx|g" -e "s|{{WORKERS}}|1|g" \
    -e "s|{{LISTEN}}|127.0.0.1:$1|g" \
    -e "/{{UPSTREAMS}}/{r $upstreams" -e "d}" \
    "$root/deploy/nginx/pushbench.conf.template" > "$dir/nginx/nginx.conf"
  if grep -n '{{' "$dir/nginx/nginx.conf" >&2; then
    die "deploy/nginx/pushbench.conf.template has a placeholder cluster.sh does not fill (above)"
  fi
}

# Starts nginx in front of the instances; sets nginx_pid and nginx_port.
start_nginx() {
  local try i conf=$dir/nginx/nginx.conf errlog=$dir/nginx/error.log globals=()
  mkdir -p "$dir/nginx"
  # As root, workers would run as nobody, who may not enter DIR (mktemp -d makes it 0700).
  [[ $(id -u) -ne 0 ]] || globals=(-g "user root;")
  for ((try = 1; ; try++)); do
    nginx_port=$(free_port)
    render_nginx "$nginx_port"
    : > "$errlog"
    # -e: the error log before the config is read (else /var/log/nginx).
    if ! nginx -t -q -p "$dir/nginx/" -c "$conf" -e "$errlog" "${globals[@]}" > "$dir/nginx.log" 2>&1; then
      cat "$errlog" >> "$dir/nginx.log"
      fail_with_log "$dir/nginx.log" "nginx -t rejects $conf"
    fi
    # The template says `daemon off`: $! is the master.
    setsid nginx -p "$dir/nginx/" -c "$conf" -e "$errlog" "${globals[@]}" \
      < /dev/null >> "$dir/nginx.log" 2>&1 &
    nginx_pid=$!
    launched+=("$nginx_pid nginx nginx")
    for ((i = 0; i < ready_tenths; i++)); do
      # Our master wrote its pid file (so it holds the port), and requests pass through it.
      if [[ $(cat "$dir/nginx/nginx.pid" 2>/dev/null) == "$nginx_pid" ]] &&
        curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$nginx_port/healthz" 2>/dev/null; then
        return 0
      fi
      alive_as "$nginx_pid" || break
      sleep 0.1
    done
    if ! alive_as "$nginx_pid" && ((try < 3)) && grep -q 'Address already in use' "$errlog"; then
      unset 'launched[-1]'
      continue
    fi
    fail_with_log "$errlog" "nginx did not answer /healthz on 127.0.0.1:$nginx_port"
  done
}

start() {
  local instances=2 publisher=0 publisher_topics=4 arg i
  feed_server=${FEED_SERVER:-}
  extra_args=()
  while (($#)); do
    arg=$1
    shift
    case $arg in
      --instances)
        (($#)) || bad_usage "--instances needs a number"
        [[ $1 =~ ^[1-9][0-9]*$ && $1 -le 64 ]] || bad_usage "--instances $1: give a number from 1 to 64"
        instances=$1
        shift
        ;;
      --feed-server)
        (($#)) || bad_usage "--feed-server needs a path"
        feed_server=$1
        shift
        ;;
      --publisher) publisher=1 ;;
      --publisher-topics)
        (($#)) || bad_usage "--publisher-topics needs a number"
        [[ $1 =~ ^[1-9][0-9]*$ ]] || bad_usage "--publisher-topics $1: give a positive number"
        publisher_topics=$1
        publisher=1
        shift
        ;;
      --)
        extra_args=("$@")
        break
        ;;
      *) bad_usage "unknown argument ${arg@Q}" ;;
    esac
  done
  for arg in "${extra_args[@]}"; do
    case $arg in
      --listen | --listen=* | --backend | --backend=* | --gen-topics | --gen-topics=*)
        bad_usage "${arg%%=*} is set by cluster.sh; leave it out of the EXTRA arguments"
        ;;
    esac
  done

  mkdir -p "$dir_arg" || die "cannot create $dir_arg"
  dir=$(cd "$dir_arg" && pwd)
  # DIR goes into nginx.conf (and a sed expression): no spaces, quotes, ; | & or braces.
  [[ $dir =~ ^[A-Za-z0-9._/+-]+$ ]] ||
    die "DIR $dir has characters nginx.conf cannot take; use letters, digits and . _ / + -"
  if [[ -s $dir/cluster.env ]]; then
    local running
    # shellcheck disable=SC1091
    running=$(source "$dir/cluster.env" && for p in $NGINX_PID $INSTANCE_PIDS $REDIS_PID; do
      [[ -d /proc/$p ]] && echo "$p"
    done)
    [[ -z $running ]] ||
      die "a cluster runs in $dir (pids $(echo $running)): scripts/cluster.sh stop $dir first"
    rm -f "$dir/cluster.env"
  fi
  rm -f "$dir/nginx/nginx.pid"

  if [[ -n $feed_server ]]; then
    [[ -x $feed_server ]] || die "--feed-server $feed_server is not an executable file"
    has_backend "$feed_server" ||
      die "$feed_server has no --backend option (the Redis backend): rebuild it from a tree that has it"
  else
    # target/release, else target/debug; a stale build without --backend is skipped, saying so.
    local candidate
    for candidate in "$root/target/release/feed-server" "$root/target/debug/feed-server"; do
      [[ -x $candidate ]] || continue
      if has_backend "$candidate"; then
        feed_server=$candidate
        break
      fi
      echo "cluster.sh: skipping $candidate: built without --backend (stale build)" >&2
    done
    [[ -n $feed_server ]] ||
      die "no feed-server with --backend in target/release or target/debug: build it (cargo build --release -p feed-server) or give --feed-server PATH"
  fi
  echo "feed-server: $feed_server" >&2

  "$root/scripts/ensure-debian-packages.sh" redis-server nginx curl >&2
  trap undo_start EXIT

  start_redis
  redis_url=redis://127.0.0.1:$redis_port
  echo "redis-server: $redis_url (pid $redis_pid)" >&2

  instance_urls=()
  instance_pids=()
  for ((i = 1; i <= instances; i++)); do
    start_feed_server "instance $i" "$dir/instance-$i.log" --gen-topics 0
    instance_urls+=("$fs_url")
    instance_pids+=("$fs_pid")
    echo "instance $i: $fs_url (pid $fs_pid)" >&2
  done

  local publisher_url="" publisher_pid=""
  if ((publisher)); then
    start_feed_server publisher "$dir/publisher.log" --gen-topics "$publisher_topics"
    publisher_url=$fs_url
    publisher_pid=$fs_pid
    echo "publisher: $publisher_url (pid $publisher_pid, $publisher_topics generated topics)" >&2
  fi

  start_nginx
  echo "nginx: http://127.0.0.1:$nginx_port (pid $nginx_pid)" >&2

  {
    echo "BASE_URL=http://127.0.0.1:$nginx_port"
    echo "REDIS_URL=$redis_url"
    echo "INSTANCE_URLS=\"${instance_urls[*]}\""
    echo "INSTANCE_PIDS=\"${instance_pids[*]}\""
    echo "NGINX_PID=$nginx_pid"
    echo "REDIS_PID=$redis_pid"
    if ((publisher)); then
      echo "PUBLISHER_URL=$publisher_url"
      echo "PUBLISHER_PID=$publisher_pid"
    fi
    echo "CLUSTER_DIR=$dir"
  } > "$dir/cluster.env.tmp"
  mv "$dir/cluster.env.tmp" "$dir/cluster.env"
  start_done=1
  echo "BASE_URL=http://127.0.0.1:$nginx_port"
}

# --- stop ----------------------------------------------------------------------------------

stop() {
  local env=$dir/cluster.env i failed=0 pids fields nginx_pid instance_pids redis_pid
  local publisher_pid
  if [[ ! -s $env ]]; then
    echo "nothing running in $dir (no cluster.env)"
    return 0
  fi
  # cluster.env is cluster.sh's own file, read in a subshell so that nothing else leaks in.
  # shellcheck disable=SC1090
  fields=$(source "$env" && printf '%s\n' "${NGINX_PID:-}" "${INSTANCE_PIDS:-}" \
    "${REDIS_PID:-}" "${PUBLISHER_PID:-}") || die "$env cannot be read as shell"
  mapfile -t fields <<< "$fields"
  nginx_pid=${fields[0]:-} instance_pids=${fields[1]:-} redis_pid=${fields[2]:-}
  publisher_pid=${fields[3]:-}
  [[ -n $nginx_pid && -n $instance_pids && -n $redis_pid ]] ||
    die "$env lacks NGINX_PID, INSTANCE_PIDS or REDIS_PID: not written by cluster.sh start"
  stop_process "$nginx_pid" nginx nginx || failed=1
  if [[ -n $publisher_pid ]]; then
    stop_process "$publisher_pid" feed-server publisher || failed=1
  fi
  read -r -a pids <<< "$instance_pids"
  for i in "${!pids[@]}"; do
    stop_process "${pids[i]}" feed-server "instance $((i + 1))" || failed=1
  done
  stop_process "$redis_pid" redis-server redis-server || failed=1
  ((failed)) && die "some processes did not exit (above); $env kept"
  rm -f "$env"
}
case ${1:-} in
  start | stop) cmd=$1 ;;
  -h | --help)
    echo "$usage"
    exit 0
    ;;
  "") bad_usage "no command" ;;
  *) bad_usage "unknown command ${1@Q}" ;;
esac
(($# >= 2)) || bad_usage "$cmd needs a directory"
[[ -n $2 ]] || bad_usage "$cmd needs a directory, not an empty string"
dir_arg=$2
shift 2
if [[ $cmd == start ]]; then
  start "$@"
else
  if [[ ! -d $dir_arg ]]; then
    echo "nothing running in $dir_arg (no such directory)"
    exit 0
  fi
  dir=$(cd "$dir_arg" && pwd)
  (($# == 0)) || bad_usage "stop takes only DIR"
  stop
fi
