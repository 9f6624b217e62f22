#!/usr/bin/env bash
# The benchmark suite behind BENCHMARKS.md (tools/bench):
#
#   scripts/bench.sh           # the full run on release builds: rewrites BENCHMARKS.md's tables,
#                              # keeping its findings (~5 min warm)
#   scripts/bench.sh --smoke   # seconds on the debug build: proves the suite still runs (CI)
#
# Cold starts and warm cost run the function binaries under the Runtime API emulator, on
# SQLite and on a throwaway PostgreSQL; the local server is loaded with wrk (installed from
# Debian's packages when missing); package sizes come from `sam build` (arm64, cargo-lambda);
# the worker and scheduler figures from their `cargo bench` targets. Never timed assertions:
# the report shows each figure beside its target.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/starter/target}"

smoke=false
[[ "${1:-}" == "--smoke" ]] && smoke=true

if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian package)" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2
fi

pg_started=false
if [[ -z "${TEST_DATABASE_URL:-}" ]]; then
    eval "$(scripts/throwaway-postgres.sh)"
    pg_started=true
fi
# The AWS emulator stands in for Secrets Manager in the web function's as-deployed cold start.
moto_started=false
if [[ -z "${AWS_EMULATOR_URL:-}" ]]; then
    eval "$(scripts/aws-emulator.sh)"
    moto_started=true
fi
work=$(mktemp -d)
cleanup() {
    $pg_started && scripts/throwaway-postgres.sh stop
    $moto_started && scripts/aws-emulator.sh stop
    rm -rf "$work"
}
trap cleanup EXIT

context="Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), \
$(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r). \
Date: $(date -u +%Y-%m-%d). Commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."

if $smoke; then
    # All targets: the feature set `cargo test --workspace` built, so nothing compiles twice.
    cargo build --locked --workspace --all-targets
    "$CARGO_TARGET_DIR/debug/bench" --bin-dir "$CARGO_TARGET_DIR/debug" \
        --postgres "$TEST_DATABASE_URL" --runs 2 --warm 20 --load-seconds 1 \
        --context "Smoke run (debug build): the figures mean nothing." --out "$work/report.md" >/dev/null
    echo "benchmark suite smoke run: ok ($(grep -c '^| ' "$work/report.md") table rows)"
    exit 0
fi

cargo build --locked --release -p bench -p web -p worker -p scheduler -p local

# The worker and scheduler benchmarks, on both databases.
for url in "" "$TEST_DATABASE_URL"; do
    TEST_DATABASE_URL=$url cargo bench --locked -p worker --bench throughput 2>&1 \
        | grep '^worker throughput' >>"$work/include.txt"
    TEST_DATABASE_URL=$url CLASSES=10000 cargo bench --locked -p scheduler --bench process_occurrences 2>&1 \
        | grep '^process-occurrences' >>"$work/include.txt"
done

# Package sizes: the bootstraps `sam build` made (built here when missing).
if [[ ! -f .aws-sam/build/WebFunction/bootstrap ]]; then
    eval "$(scripts/sam-tools.sh)"
    CARGO_TARGET_DIR="$HOME/.cache/starter/target-lambda" sam build >&2
fi
read -r -a zips <<<"$(scripts/package-sizes.py --bench-args)"

"$CARGO_TARGET_DIR/release/bench" --bin-dir "$CARGO_TARGET_DIR/release" \
    --postgres "$TEST_DATABASE_URL" "${zips[@]}" --include "$work/include.txt" \
    --context "$context" --out "$work/report.md"
# The measured tables are replaced; the hand-written findings (from the first "## Findings"
# heading on) are kept.
{ cat "$work/report.md"; echo; sed -n '/^## Findings/,$p' BENCHMARKS.md; } >"$work/benchmarks.md"
mv "$work/benchmarks.md" BENCHMARKS.md
