#!/usr/bin/env bash
# Where does the server's time go? Runs one scenario for one transport and samples the
# feed-server process with `perf record` (software cpu-clock events: this machine's VM has no
# hardware counters) during the measurement window, then writes a text profile:
#   results/profile/NAME-TRANSPORT/profile.txt   (thread/library split, hottest call paths)
#
#   scripts/profile-server.sh scenarios/ci-logs.toml sse [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:?usage: scripts/profile-server.sh SCENARIO.toml TRANSPORT [SECONDS]}
transport=${2:?usage: scripts/profile-server.sh SCENARIO.toml TRANSPORT [SECONDS]}
seconds=${3:-10}

scripts/ensure-debian-packages.sh linux-perf
cargo build --release --locked --workspace --bins
pb=./target/release/pushbench
"$pb" validate "$scenario" >/dev/null

name=$(sed -n 's/^name = "\(.*\)"/\1/p' "$scenario")
name=${name:-$(basename "$scenario" .toml)}
out=results/profile/$name-$transport
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [[ -n ${run_pid:-} ]] && kill "$run_pid" 2>/dev/null || true' EXIT

# One transport: the profile is of one server under one steady load.
sed -e "s/^transports = .*/transports = [\"$transport\"]/" "$scenario" > "$tmp/scenario.toml"
"$pb" run "$tmp/scenario.toml" --out "$tmp/results" --quiet > "$tmp/run.log" 2>&1 &
run_pid=$!

# The measurement window opens after ramp-up and warmup; wait for them, then sample.
to_secs() { python3 -c "import re,sys; v=sys.argv[1]; m={'ms':.001,'s':1,'m':60}; print(sum(float(n)*m[u] for n,u in re.findall(r'([\d.]+)\s*(ms|s|m)\b', v)) if v else 0)" "$1"; }
field() { sed -n "s/^$1 = \"\(.*\)\"/\1/p" "$scenario" | head -1; }
settle=$(python3 -c "print($(to_secs "$(field ramp_up)") + $(to_secs "$(field warmup)") + 3)")
sleep "$settle"
server_pid=$(pgrep -n -f "target/release/feed-server" || true)
if [[ -z $server_pid ]]; then
  echo "no feed-server process found; run log:" >&2
  cat "$tmp/run.log" >&2
  exit 1
fi
perf record -e cpu-clock -F 999 -g -p "$server_pid" -o "$tmp/perf.data" -- sleep "$seconds" 2> "$tmp/perf.log"
wait "$run_pid" || true
run_pid=

# `head` closes the pipes early on purpose; that is not a failure.
set +o pipefail
{
  echo "# feed-server profile: $name, $transport, ${seconds}s of cpu-clock samples at 999 Hz"
  echo
  echo "## By thread and library"
  perf report -i "$tmp/perf.data" --no-children --sort comm,dso --stdio -g none 2>/dev/null | grep -E '^ +[0-9]'
  echo
  echo "## Inclusive time (children), top 45"
  perf report -i "$tmp/perf.data" --children --sort sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -45
  echo
  echo "## Self time, top 30"
  perf report -i "$tmp/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -30
  echo
  echo "## The run"
  grep -E 'results:' "$tmp/run.log" || true
} > "$out/profile.txt"
rm -rf "$out/run" && cp -r "$tmp/results" "$out/run"
echo "profile: $out/profile.txt"
