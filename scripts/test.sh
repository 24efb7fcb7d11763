#!/usr/bin/env bash
# The whole test suite: what CI runs (via .ci/run) and what a developer runs before pushing.
# Installs the system packages the build and tests need when they are missing (Debian).
set -euo pipefail
cd "$(dirname "$0")/.."

# plotters links fontconfig and freetype (pkg-config finds them); DejaVu renders chart text
# (and the viewer's text in the browser tests). The browser tests (servers/feed-server/tests/
# browser) drive headless Chromium through chromedriver.
# loadgen/tests/e2e_nchan.rs measures nchan (nginx + libnginx-mod-nchan, started by
# scripts/nchan.sh, which polls its health route with curl) as an external target.
# servers/feed-server/tests/nginx.rs runs deploy/nginx/pushbench.conf.template in nginx; the
# Redis backend's tests and the cluster smoke below (scripts/cluster.sh: redis-server, nginx,
# curl) start redis-server. loadgen/tests/k8s_manifests.rs decodes deploy/k8s/ with kubectl
# (offline, `kubectl set env --local`).
scripts/ensure-debian-packages.sh pkg-config libfontconfig1-dev libfreetype-dev fonts-dejavu-core \
  chromium chromium-driver nginx libnginx-mod-nchan curl redis-server kubectl

# cargo-machete finds dependencies that no code uses: a pinned version from crates.io, built
# with its own locked dependencies, installed once (when missing or another version).
MACHETE_VERSION=0.9.2
if [[ "$(cargo machete --version 2>/dev/null)" != "$MACHETE_VERSION" ]]; then
  echo "installing: cargo-machete $MACHETE_VERSION"
  cargo install cargo-machete --locked --version "$MACHETE_VERSION"
fi

echo "== unused dependencies (cargo machete)"
if ! cargo machete; then
  echo "error: unused dependencies (listed above): remove them from Cargo.toml, or, for a false" \
    "positive (a crate used only through a macro or a feature), list it in that crate's" \
    "[package.metadata.cargo-machete] ignored = [...] with a comment saying why" >&2
  exit 1
fi

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== cargo build (binaries the end-to-end tests spawn)"
cargo build --locked --workspace --bins
echo "== cargo test"
cargo test --locked --workspace
echo "== cluster smoke (scripts/cluster.sh: 2 instances on Redis behind nginx)"
scripts/cluster-smoke.sh target/debug/feed-server
