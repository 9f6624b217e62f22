#!/usr/bin/env bash
# The end-to-end browser test (local/tests/it/browser.rs): a visitor signs up, verifies through
# the development mailbox, logs in, books a class and logs out, in headless Chromium.
#
#   scripts/browser-test.sh              # on SQLite, or on PostgreSQL when TEST_DATABASE_URL is set
#
# Installs Debian's chromium and chromium-driver first when /usr/bin/chromium or
# /usr/bin/chromedriver is missing (as root, or with sudo). Arguments go to the test binary.
# A failing step leaves a screenshot, the URL and the HTML of the page in
# $BROWSER_FAILURES_DIR (default: browser-failures/ in Cargo's target tmp directory); the
# failure message names the files.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
    echo "installing Debian's chromium and chromium-driver" >&2
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# `--workspace` rather than `-p local`: the same features as `cargo test --workspace` (tokio's
# `process`, which tools/runtime-api-emulator turns on), so after it nothing is built again.
exec cargo test -p local --test it --locked -- --ignored browser:: "$@"
