#!/usr/bin/env bash
# The connection-storm rehearsal (tools/bench/src/storm.rs; figures and sizing rule in
# docs/scaling.md): 60 web processes, each under its own Runtime API emulator, against a
# throwaway PostgreSQL with max_connections=20, and a burst of 600 requests. Fails unless every
# answer is a 200 or a 503 with Retry-After within the function timeout, and every instance
# serves a 200 again after the burst.
#
#   scripts/connection-storm.sh                  # debug build (CI)
#   scripts/connection-storm.sh --release        # release build
#   scripts/connection-storm.sh -- --functions 30 --idle-session-timeout 0   # bench storm's options
#
# About 1 to 2 minutes after the build. Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/starter/target}"

profile=debug
if [[ "${1:-}" == "--release" ]]; then
    profile=release
    shift
fi
[[ "${1:-}" == "--" ]] && shift

if [[ $profile == release ]]; then
    cargo build --locked --release -p web -p bench
else
    # All targets: the feature set `cargo test --workspace` built, so in CI nothing compiles
    # twice (the same build as scripts/bench.sh --smoke).
    cargo build --locked --workspace --all-targets
fi

# A server of its own: the suite's has max_connections=300 and other databases on it.
eval "$(PG_MAX_CONNECTIONS=20 scripts/throwaway-postgres.sh)"
cleanup() { scripts/throwaway-postgres.sh stop; }
trap cleanup EXIT

# The rehearsal bounds itself (240 s); `timeout` is the last resort if it does not.
timeout --kill-after=10 300 "$CARGO_TARGET_DIR/$profile/bench" storm \
    --bin-dir "$CARGO_TARGET_DIR/$profile" --postgres "$TEST_DATABASE_URL" "$@"
