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
scripts/ensure-debian-packages.sh pkg-config libfontconfig1-dev libfreetype-dev fonts-dejavu-core \
  chromium chromium-driver nginx libnginx-mod-nchan curl

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== cargo build (binaries the end-to-end tests spawn)"
cargo build --locked --workspace --bins
echo "== cargo test"
cargo test --locked --workspace
