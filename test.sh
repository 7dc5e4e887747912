#!/usr/bin/env bash
# The test command (README "Run the tests"; `.ci/run` runs exactly this).
# It installs what the tests start and is missing, then runs the whole
# workspace's tests: adloc's and the emulator crate's own (the emulator's
# strictness is what the protocol tests lean on), with cargo-nextest when it
# is installed, otherwise `cargo test`.
#
# Installed only when missing, so a machine that has them pays nothing:
# - moto's S3-compatible server (PyPI `moto[server]`, with boto3 as the
#   tests' independent S3 client) for the object-storage tests;
# - contentauth's C2PA Python bindings (PyPI `c2pa-python`) as the
#   independent verifier of the signed files (provenance tests);
# - Debian's `chromium` for the review page tests, and its `chromium-driver`
#   (WebDriver) for the review server's browser tests;
# - Debian's `postgresql` server binaries for the PostgreSQL state tests
#   (each test process initdbs a private server; no cluster is started).
set -euo pipefail
cd "$(dirname "$0")"

apt_updated=""
apt_install() {
    if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
        echo "test.sh: $* missing and not root: install it with apt-get" >&2
        exit 1
    fi
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    [ -n "$apt_updated" ] || { $sudo apt-get update; apt_updated=1; }
    $sudo apt-get install -y --no-install-recommends "$@"
}

if ! python3 -c 'import moto.server, boto3, flask_cors' 2>/dev/null; then
    python3 -m pip install --quiet 'moto[server]>=5,<6'
fi
if ! python3 -c 'from c2pa import Reader, Settings, Context' 2>/dev/null; then
    python3 -m pip install --quiet 'c2pa-python>=0.38,<0.39'
fi
command -v chromium >/dev/null || apt_install chromium
command -v chromedriver >/dev/null || apt_install chromium-driver
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql

# cargo-nextest (on the CI machines) runs every test in a process of its
# own, two at a time across all four test binaries: the same tests as
# `cargo test --workspace`. On 2026-12-07 (2 cores) it ran all 621 in
# 821 s; libtest had taken 1231 s for the `it` binary alone earlier that day, its
# tests (1573 s in all by nextest's clock) overlapping only 1.3 at a time.
# Without nextest, libtest runs them all the same.
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --workspace --no-fail-fast "$@"
    # nextest does not run doctests (there are none today; this keeps any
    # later one from going untested).
    cargo test --locked --workspace --doc
else
    cargo test --locked --workspace "$@"
fi
