#!/usr/bin/env bash
# The load generator against wrk (a command, not a timed test): the poll endpoint driven by
# wrk and by pushbench's poll clients at the same concurrency, on the same server, so
# pushbench's requests/s reads as a fraction of wrk's (the target: at least 80%).
#
#   scripts/bench-wrk.sh              # concurrency 100 and 1000, two rounds each
#   ROUNDS=3 scripts/bench-wrk.sh 100 # only 100 connections, three rounds
#
# Each round and concurrency C, back to back:
# 1. pushbench runs scripts/bench/wrk-poll-cC.toml: it starts feed-server pinned to core 0,
#    pins itself to the other core(s), and C clients poll one static step in a closed loop
#    (poll.interval = "0s"); in the steady state each poll is a 304 to If-None-Match;
# 2. a fresh feed-server is started with exactly the arguments pushbench gave its own (read
#    back from summary.json), pinned the same way, and wrk (on the load generator's cores,
#    as many threads as pushbench had workers, C connections) sends that same steady-state
#    request for the same duration after the same warm-up, and gets the same 304.
# The server's CPU is read from /proc over the measured phase on both sides; wrk's own CPU is
# its rusage. Results: results/wrk-compare/RUN_ID/{report.md,compare.json}, pushbench's runs
# under pushbench/, wrk's output under wrk/.
set -euo pipefail
cd "$(dirname "$0")/.."

# wrk is a Debian package.
scripts/ensure-debian-packages.sh wrk
cargo build --release --locked -p pushbench -p feed-server
# 1,000 connections need as many descriptors on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

concurrency=("$@")
if ((${#concurrency[@]} == 0)); then concurrency=(100 1000); fi
export ROUNDS="${ROUNDS:-2}"
python3 - "${concurrency[@]}" <<'PY'
import json, os, re, signal, statistics, subprocess, sys, time, tomllib, urllib.request

ROOT = os.getcwd()
PB = f"{ROOT}/target/release/pushbench"
SERVER = f"{ROOT}/target/release/feed-server"
TARGET = 0.80
rounds = int(os.environ["ROUNDS"])
QUIET_WAIT = float(os.environ.get("QUIET_WAIT", "120"))
concurrency = [int(c) for c in sys.argv[1:]]
run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
out = f"results/wrk-compare/{run_id}"
os.makedirs(f"{out}/wrk", exist_ok=True)
clk = os.sysconf("SC_CLK_TCK")
ncpu = os.cpu_count() or 1
server_cpus, loadgen_cpus = "0", ",".join(str(c) for c in range(1, ncpu))
if ncpu < 2:
    sys.exit("bench-wrk.sh needs two cores: one for the server, one for the load generator")

def cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / clk  # utime + stime

def machine_busy_s():
    """CPU seconds all cores spent busy since boot (/proc/stat: everything but idle and iowait)."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    return (sum(f) - f[3] - f[4]) / clk

def wait_quiet():
    """Waits (up to QUIET_WAIT seconds) until other processes use under a third of a core, so
    the two sides of a pair meet the same, small, interference. Returns the last reading."""
    deadline = time.monotonic() + QUIET_WAIT
    while True:
        b0, t0 = machine_busy_s(), time.monotonic()
        time.sleep(1)
        busy = (machine_busy_s() - b0) / (time.monotonic() - t0)
        if busy < 0.33 or time.monotonic() > deadline:
            return busy
        time.sleep(4)

def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.headers.get("ETag")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("ETag")

def pushbench(c):
    path = f"scripts/bench/wrk-poll-c{c}.toml"
    sc = tomllib.load(open(path, "rb"))
    busy0, t0 = machine_busy_s(), time.monotonic()
    proc = subprocess.Popen([PB, "run", path, "--out", f"{out}/pushbench", "--quiet"],
                            stdout=subprocess.DEVNULL)
    _, code, ru = os.wait4(proc.pid, 0)  # pushbench and the server it reaped
    wall, busy = time.monotonic() - t0, machine_busy_s() - busy0
    if code != 0:
        sys.exit(f"pushbench run {path} failed ({code})")
    rundir = sorted(os.scandir(f"{out}/pushbench/{sc['name']}"), key=lambda e: e.name)[-1].path
    s = json.load(open(f"{rundir}/summary.json"))
    r = s["runs"][0]
    if r["status"] != "ok":
        sys.exit(f"pushbench run failed: {r['status']}")
    p, lg, srv = r["poll"], r["loadgen"], r["server"]
    secs = r["measured_seconds"]
    return sc, s, {
        "run": os.path.relpath(rundir, out),
        "requests": p["requests"],
        "requests_per_sec": p["requests_per_sec"],
        "empty_share": p["empty_share"],
        "bytes_down_per_request": r["wire"]["bytes_down"] / max(p["requests_total"], 1),
        "server_cpu_cores": srv["cpu_cores"],
        "server_cpu_us_per_request": srv["cpu_us"] / max(p["requests"], 1),
        "loadgen_cpu_cores": lg["cpu_us"] / 1e6 / secs,
        "loadgen_cpu_us_per_request": lg["cpu_us"] / max(p["requests"], 1),
        "loadgen_saturated": lg["saturated"],
        # Over the whole pushbench run: the machine's busy cores less pushbench's and the
        # server's (kernel work not charged to any process, e.g. softirq, lands here too).
        "other_cpu_cores": max(0.0, busy - (ru.ru_utime + ru.ru_stime)) / wall,
        "warnings": r["warnings"],
    }

def wrk(c, sc, summary, rnd):
    args = summary["runs"][0]["server"]["args"]
    threads = summary["environment"]["loadgen_workers"]
    duration = sc["duration"]
    warmup = sc.get("warmup", "0s")
    limit = sc.get("poll", {}).get("limit", 1000)
    server = subprocess.Popen(["taskset", "-c", server_cpus, SERVER, *args, "--listen", "127.0.0.1:0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        addr = None
        for line in server.stdout:
            if line.startswith("listening on http://"):
                addr = line.strip().removeprefix("listening on http://")
                break
        if addr is None:
            sys.exit("feed-server did not start")
        base = f"http://{addr}/acme/app/builds/1/steps/1/logs"
        # The steady state a pushbench client reaches: caught up to seq 1, sending the ETag of
        # the (empty) answer it last got, and answered 304.
        status, _ = get(f"{base}?after=0&limit={limit}")
        status, etag = get(f"{base}?after=1&limit={limit}")
        url = f"{base}?after=1&limit={limit}"
        status, _ = get(url, {"If-None-Match": etag})
        if status != 304:
            sys.exit(f"expected 304 for the steady-state request, got {status}")
        cmd = ["taskset", "-c", loadgen_cpus, "wrk", f"-t{threads}", f"-c{c}",
               "-H", f"If-None-Match: {etag}"]
        if warmup not in ("0s", "0ms"):
            subprocess.run([*cmd, f"-d{warmup}", url], check=True, stdout=subprocess.DEVNULL)
        before, busy0, t0 = cpu_s(server.pid), machine_busy_s(), time.monotonic()
        w = subprocess.Popen([*cmd, f"-d{duration}", url], stdout=subprocess.PIPE, text=True)
        text = w.stdout.read()
        _, code, ru = os.wait4(w.pid, 0)
        wall, after = time.monotonic() - t0, cpu_s(server.pid)
        busy = machine_busy_s() - busy0
        if code != 0:
            sys.exit(f"wrk failed:\n{text}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=15)
    open(f"{out}/wrk/c{c}-round{rnd}.txt", "w").write(" ".join(cmd + [f"-d{duration}", url]) + "\n\n" + text)
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+), ([\d.]+)(\w+) read", text)
    requests = int(m.group(1))
    secs = float(m.group(2)) * {"s": 1, "ms": 1e-3, "m": 60}[m.group(3)]
    read = float(m.group(4)) * {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30}[m.group(5)]
    errors = re.search(r"Socket errors: (.*)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    loadgen = ru.ru_utime + ru.ru_stime
    return {
        "requests": requests,
        "requests_per_sec": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "bytes_down_per_request": read / max(requests, 1),
        "server_cpu_cores": (after - before) / wall,
        "server_cpu_us_per_request": (after - before) * 1e6 / max(requests, 1),
        "loadgen_cpu_cores": loadgen / secs,
        "loadgen_cpu_us_per_request": loadgen * 1e6 / max(requests, 1),
        "other_cpu_cores": max(0.0, busy - loadgen - (after - before)) / wall,
        "socket_errors": errors.group(1) if errors else None,
        "non_2xx_3xx": int(non2xx.group(1)) if non2xx else 0,
        "command": " ".join(cmd + [f"-d{duration}", url]),
    }

rows = []
for rnd in range(1, rounds + 1):
    for c in concurrency:
        quiet = wait_quiet()
        sc, summary, pb = pushbench(c)
        wk = wrk(c, sc, summary, rnd)
        ratio = pb["requests_per_sec"] / wk["requests_per_sec"]
        rows.append({"round": rnd, "connections": c, "other_cpu_cores_before": quiet,
                     "wrk": wk, "pushbench": pb, "ratio": ratio})
        print(f"round {rnd}, {c:>5} connections: wrk {wk['requests_per_sec']:>8.0f} req/s "
              f"(server {wk['server_cpu_cores']:.2f} cores, wrk {wk['loadgen_cpu_cores']:.2f}), "
              f"pushbench {pb['requests_per_sec']:>8.0f} req/s (server {pb['server_cpu_cores']:.2f}, "
              f"pushbench {pb['loadgen_cpu_cores']:.2f}): {ratio:.0%}; others used "
              f"{pb['other_cpu_cores']:.2f} / {wk['other_cpu_cores']:.2f} cores", flush=True)

verdicts = {}
for c in concurrency:
    ratios = [r["ratio"] for r in rows if r["connections"] == c]
    verdicts[c] = {"ratios": ratios, "median": statistics.median(ratios), "min": min(ratios),
                   "max": max(ratios), "held": statistics.median(ratios) >= TARGET}
held = all(v["held"] for v in verdicts.values())
json.dump({"schema": "pushbench.wrk-compare", "schema_version": 1, "run_id": run_id,
           "target_ratio": TARGET, "held": held, "environment": summary["environment"],
           "verdicts": {str(c): v for c, v in verdicts.items()}, "runs": rows},
          open(f"{out}/compare.json", "w"), indent=1)

def f(x, d=0):
    return f"{x:,.{d}f}"
md = [f"# pushbench poll clients vs wrk ({run_id})", "",
      "The same feed-server (release, one tokio worker, pinned to core 0; a fresh process for each "
      "side, started with the same arguments), the same request "
      "(`GET …/logs?after=1&limit=1000` with the steady state's `If-None-Match`, answered 304), "
      "the same connections, threads, warm-up and duration; the load generator on the other core. "
      "pushbench's figure counts answers read inside its measured phase. Runs are back to back, "
      "pushbench first.", "",
      "| round | connections | wrk req/s | pushbench req/s | ratio | server cores (wrk / pb) | "
      "server µs/req (wrk / pb) | load generator cores (wrk / pb) | load generator µs/req (wrk / pb) | "
      "bytes down/req (wrk / pb) | other CPU, cores (wrk / pb) |",
      "|---|---|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    w, p = r["wrk"], r["pushbench"]
    md.append(f"| {r['round']} | {r['connections']} | {f(w['requests_per_sec'])} | "
              f"{f(p['requests_per_sec'])} | {r['ratio']:.0%} | "
              f"{w['server_cpu_cores']:.2f} / {p['server_cpu_cores']:.2f} | "
              f"{w['server_cpu_us_per_request']:.1f} / {p['server_cpu_us_per_request']:.1f} | "
              f"{w['loadgen_cpu_cores']:.2f} / {p['loadgen_cpu_cores']:.2f} | "
              f"{w['loadgen_cpu_us_per_request']:.1f} / {p['loadgen_cpu_us_per_request']:.1f} | "
              f"{w['bytes_down_per_request']:.0f} / {p['bytes_down_per_request']:.0f} | "
              f"{w['other_cpu_cores']:.2f} / {p['other_cpu_cores']:.2f} |")
md += ["", "Server and load generator CPU are over the measured phase (load generator µs/req: its "
       "CPU time per answered request, kernel included; wrk's from its rusage). Other CPU is the "
       "machine's busy time less the server's and the load generator's: other processes, plus "
       "kernel work charged to no process; pushbench's is over its whole run. Before each pair "
       "the script waits (up to QUIET_WAIT s) for other processes to use under a third of a core."]
md += ["", "| connections | ratio median | spread | target ≥ 80% |", "|---|---|---|---|"]
for c, v in verdicts.items():
    md.append(f"| {c} | {v['median']:.0%} | {v['min']:.0%} – {v['max']:.0%} | "
              f"{'held' if v['held'] else 'NOT held'} |")
notes = sorted({w for r in rows for w in r["pushbench"]["warnings"]
                if "latency samples" not in w})
errs = [f"round {r['round']} c{r['connections']}: wrk socket errors {r['wrk']['socket_errors']}"
        for r in rows if r["wrk"]["socket_errors"]]
errs += [f"round {r['round']} c{r['connections']}: {r['wrk']['non_2xx_3xx']} wrk answers not 2xx/3xx"
         for r in rows if r["wrk"]["non_2xx_3xx"]]
if notes or errs:
    md += ["", "Warnings:", ""] + [f"- {n}" for n in notes + errs]
md += ["", f"Verdict: pushbench's poll clients reach {'at least' if held else 'less than'} 80% of "
       f"wrk's requests/s at every concurrency measured (median of {rounds} round(s)).",
       "", "No delivery latency is measured here: no line is scheduled during the run "
       "(a throughput probe)."]
open(f"{out}/report.md", "w").write("\n".join(md) + "\n")
print(f"target (pushbench >= 80% of wrk) {'held' if held else 'NOT held'}")
print(f"report: {out}/report.md")
PY
