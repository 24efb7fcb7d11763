#!/usr/bin/env bash
# A sharded pushbench run on Kubernetes, start to finish (docs/distributed.md):
#   1. applies the deployment (configmaps.sh's ConfigMaps, Redis, feed-server, nginx, the
#      results volume) and waits for every Deployment to be rolled out;
#   2. picks the start instant START_AT = now + LEAD and creates the shards Job
#      (shards-job.yaml) with it in the pod annotation pushbench/start-at;
#   3. waits for every shard to succeed, then runs the merge Job (merge-job.yaml);
#   4. copies /results/START_AT (the shards' runs and the merged one) out through a reader pod
#      (results-reader.yaml) into OUT/START_AT.
# The deployment is left running (the next run reuses it); `kubectl delete -f deploy/k8s/`
# removes everything, the results volume included.
#
# Usage: deploy/k8s/run.sh [-n NAMESPACE] [--image IMAGE] [--lead SECONDS]
#                          [--timeout SECONDS] [--out DIR]
#   -n NAMESPACE   where everything goes (default: kubectl's current namespace)
#   --image IMAGE  the pushbench image (default pushbench:latest, built by the Dockerfile:
#                  `docker build -t pushbench:latest .`; push it to a registry the cluster
#                  pulls from and name it here, or load it into kind/minikube)
#   --lead S       seconds from submitting the shards to their common start (default 120):
#                  long enough for every shard pod to be scheduled and its image pulled; a
#                  shard that starts late refuses to run and the Job fails
#   --timeout S    longest wait for each step (rollout, shards, merge; default 1800)
#   --out DIR      where the results are copied (default results/k8s)
# KUBECTL names the kubectl binary (default: kubectl on PATH).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kubectl_bin=${KUBECTL:-kubectl}
namespace=""
image="pushbench:latest"
lead=120
timeout=1800
out="results/k8s"

usage() { sed -n '/^# Usage:/,/^# KUBECTL/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; }
die() { echo "run.sh: $*" >&2; exit 1; }
need_value() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"; }
positive() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a whole number of seconds > 0, got '$2'"; }

while [[ $# -gt 0 ]]; do
  case $1 in
    -n | --namespace) need_value "$@"; namespace=$2; shift 2 ;;
    --image) need_value "$@"; image=$2; shift 2 ;;
    --lead) need_value "$@"; positive "$1" "$2"; lead=$2; shift 2 ;;
    --timeout) need_value "$@"; positive "$1" "$2"; timeout=$2; shift 2 ;;
    --out) need_value "$@"; out=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage; die "unknown argument '$1'" ;;
  esac
done
# The image goes into a sed expression and a YAML value.
[[ $image =~ ^[A-Za-z0-9][A-Za-z0-9._/:@-]*$ ]] || die "--image '$image' is not an image reference"
command -v "$kubectl_bin" >/dev/null || die "kubectl not found ($kubectl_bin): install it or set KUBECTL"

kc() {
  if [[ -n $namespace ]]; then
    "$kubectl_bin" --namespace "$namespace" "$@"
  else
    "$kubectl_bin" "$@"
  fi
}

# A manifest with the image replaced and, for the Jobs, START_AT filled in; fails if the
# placeholder it fills is not in the file (a manifest edited out of step with this script).
render() {
  local file=$here/$1 start_at=${2:-}
  grep -q 'image: pushbench:latest' "$file" || die "$file names no image pushbench:latest"
  if [[ -n $start_at ]]; then
    grep -q 'pushbench/start-at: ""' "$file" || die "$file has no empty pushbench/start-at annotation"
  fi
  sed -e "s|image: pushbench:latest|image: $image|" \
    -e "s|pushbench/start-at: \"\"|pushbench/start-at: \"$start_at\"|" "$file"
}

# Waits until Job $1 has the condition Complete (0) or Failed (1: its pods' last log lines
# are shown), at most $timeout seconds.
wait_job() {
  local job=$1 deadline=$((SECONDS + timeout)) conditions
  while ((SECONDS < deadline)); do
    conditions=$(kc get job "$job" \
      -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{"\n"}{end}')
    if grep -qx Complete <<<"$conditions"; then
      return 0
    fi
    if grep -qx Failed <<<"$conditions"; then
      echo "run.sh: job $job failed; the end of its pods' logs:" >&2
      kc logs -l "job-name=$job" --prefix --tail=20 --all-containers >&2 || true
      return 1
    fi
    sleep 5
  done
  echo "run.sh: job $job did not finish within ${timeout}s" >&2
  kc get pods -l "job-name=$job" -o wide >&2 || true
  return 1
}

echo "applying the deployment (Redis, feed-server, nginx, ConfigMaps, results volume)"
"$here/configmaps.sh" | kc apply -f -
kc apply -f "$here/redis.yaml" -f "$here/results-pvc.yaml" -f "$here/nginx.yaml"
render feed-server.yaml | kc apply -f -
for deployment in redis feed-server nginx; do
  kc rollout status "deployment/$deployment" --timeout="${timeout}s"
done

# A Job's pod template cannot be changed: the previous run's Jobs go first.
kc delete job pushbench-shards pushbench-merge --ignore-not-found --wait=true
kc delete pod pushbench-results-reader --ignore-not-found --wait=true

start_at=$(($(date +%s) + lead))
# (GNU date shows it as a time; elsewhere the Unix seconds alone.)
echo "shards start at $start_at ($(date -u -d "@$start_at" +%FT%TZ 2>/dev/null || echo Unix time)), in ${lead}s"
render shards-job.yaml "$start_at" | kc create -f -
wait_job pushbench-shards
echo "every shard succeeded; merging"
render merge-job.yaml "$start_at" | kc create -f -
wait_job pushbench-merge

render results-reader.yaml | kc create -f -
kc wait --for=condition=Ready pod/pushbench-results-reader --timeout="${timeout}s"
mkdir -p "$out"
kc cp "pushbench-results-reader:/results/$start_at" "$out/$start_at"
kc delete pod pushbench-results-reader --wait=false
echo "merged run: $out/$start_at/merged (shards: $out/$start_at/shards)"
echo "its report: pushbench report $out/$start_at/merged"
