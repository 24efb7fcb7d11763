#!/usr/bin/env bash
# The load generator's own benchmark (a command, not a timed test): 10,000 concurrent SSE
# clients, then a batched run, printing what pushbench itself costs per client and per event.
# Results go to results/loadgen-10k/ and results/loadgen-batched/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p pushbench -p feed-server
for s in loadgen-10k loadgen-batched; do
  ./target/release/pushbench run "scripts/bench/$s.toml" --out results --quiet >/dev/null
  dir=$(ls -d "results/$s"/*/ | sort | tail -1)
  python3 - "$dir/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
for r in s["runs"]:
    lg = r["loadgen"]
    print(f'{s["scenario"]:>16} {r["transport"]:>4}: {r["connections"]["clients"]} clients, '
          f'{r["deliveries_per_sec"]:.0f} events/s, lost {r["events"]["lost"]}; load generator '
          f'{lg["rss_per_client_bytes"]/1024:.1f} KiB per client, {lg["cpu_us_per_event"]:.2f} us CPU '
          f'per event, {lg["cpu_share"]*100:.0f}% of its core(s), timer lag p99 {lg["sched_lag_us"]["p99"]/1000:.1f} ms'
          + (' SATURATED' if lg["saturated"] else ''))
PY
done
