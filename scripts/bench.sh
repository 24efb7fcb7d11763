#!/usr/bin/env bash
# The benchmark suite (commands and reports, not timed tests): the shipped scenarios, each
# written under results/NAME/RUN_ID with its report, plus the raw fan-out baseline run beside
# the SSE server on the same fan-out workload, and the load generator against wrk on the poll
# endpoint (scripts/bench-wrk.sh). Takes about 100 minutes on a 2-core machine.
# Installs the Debian packages it needs (wrk) when they are missing.
#
#   scripts/bench.sh                 # everything
#   scripts/bench.sh ci-logs bursty  # only these scenarios (names of scenarios/*.toml)
set -euo pipefail
cd "$(dirname "$0")/.."

# redis-server and nginx: the cluster and deployment-cost scenarios start them.
scripts/ensure-debian-packages.sh wrk redis-server nginx

cargo build --release --locked --workspace --bins
pb=./target/release/pushbench

scenarios=("$@")
if ((${#scenarios[@]} == 0)); then
  scenarios=(reference ci-logs ci-logs-1s ci-logs-load popular-build bursty idle-10k churn large-lines
             sweep-clients sweep-poll-interval deployment-cost cluster)
fi
for s in "${scenarios[@]}"; do
  echo "== $s"
  "$pb" run "scenarios/$s.toml" --out results
done

# The machine's limit: the same popular-build fan-out served by raw-fanout (no HTTP framework)
# and by feed-server's SSE router, so SSE deliveries per core read as a fraction of it.
echo "== raw fan-out baseline"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Runs scenario $1, SSE only, renamed $2, against the server binary $3 (raw-fanout speaks SSE
# only, so the comparison with feed-server is on that transport).
run_sse_on() {
  sed -e "s/^name = .*/name = \"$2\"/" -e 's/^transports = .*/transports = ["sse"]/' \
    "scenarios/$1.toml" > "$tmp/$2.toml"
  printf '\n[server]\nbinary = "%s"\n' "$PWD/target/release/$3" >> "$tmp/$2.toml"
  "$pb" run "$tmp/$2.toml" --out results --quiet
}
for server in raw-fanout feed-server; do
  run_sse_on popular-build "baseline-$server" "$server"
done
python3 - <<'PY'
import glob, json
def last(name):
    path = sorted(glob.glob(f"results/{name}/*/summary.json"))[-1]
    return json.load(open(path))["runs"][0]
raw, sse = last("baseline-raw-fanout"), last("baseline-feed-server")
for label, r in (("raw-fanout", raw), ("feed-server SSE", sse)):
    print(f"{label:>16}: {r['deliveries_per_sec']:.0f} deliveries/s, {r['server']['cpu_us_per_event']:.2f} us CPU each, "
          f"p99 {r['latency_us']['p99']/1000:.1f} ms, load generator saturated: {r['loadgen']['saturated']}")
ratio = raw["server"]["cpu_us_per_event"] / sse["server"]["cpu_us_per_event"]
print(f"SSE deliveries per core as a fraction of the raw baseline: {ratio:.0%}")
PY

# Can any server on one core deliver ci-logs' 10,000 viewers within 10 ms at p99? raw-fanout
# on ci-logs-load (SSE only) answers it for this machine: the zipf head's fan-out and the
# per-write kernel cost bound p99 before any framework adds to it.
echo "== raw fan-out on ci-logs-load"
run_sse_on ci-logs-load baseline-raw-fanout-ci-logs-load raw-fanout
python3 - <<'PY'
import glob, json
path = sorted(glob.glob("results/baseline-raw-fanout-ci-logs-load/*/summary.json"))[-1]
for r in json.load(open(path))["runs"]:
    l = r["latency_us"]
    print(f"raw-fanout {r['sweep']}: {r['deliveries_per_sec']:.0f} deliveries/s, p50 {l['p50']/1000:.1f} ms, "
          f"p99 {l['p99']/1000:.1f} ms, {r['server']['cpu_us_per_event']:.2f} us CPU each, "
          f"load generator saturated: {r['loadgen']['saturated']}")
PY

# Is the load generator the limit? pushbench's poll clients against wrk, same server, same
# request, same connections (results/wrk-compare/RUN_ID/).
echo "== load generator vs wrk"
scripts/bench-wrk.sh
