#!/usr/bin/env bash
# Installs the named Debian packages that are not installed yet (apt, as root or via sudo).
# Used by test.sh, bench.sh, bench-wrk.sh and profile-server.sh, so a fresh machine needs
# nothing installed by hand.
#
#   scripts/ensure-debian-packages.sh wrk linux-perf
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0
echo "installing: ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then sudo=""; else sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
