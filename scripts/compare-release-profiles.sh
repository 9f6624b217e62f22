#!/usr/bin/env bash
# Measures the release-profile choices recorded in docs/release-profile.md: for each variant,
# the stripped size of the web Lambda binary and the server CPU time per request for the home
# page and /healthz, served by the same router through the local runner.
#
#   scripts/compare-release-profiles.sh [variant ...]     (default: all four)
#
# Each variant is a full release build (~7 minutes on 2 cores) in its own target directory
# under ${PROFILE_TARGET_ROOT:-$HOME/.cache/starter}, so they can be re-run incrementally.
# MEASURE_ONLY=1 measures the binaries already built there (no build), e.g. on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A FLAGS=(
    [o3-unwind]='--config profile.release.opt-level=3 --config profile.release.panic="unwind"'
    [o3-abort]='--config profile.release.opt-level=3 --config profile.release.panic="abort"'
    [os-unwind]='--config profile.release.opt-level="s" --config profile.release.panic="unwind"'
    [oz-unwind]='--config profile.release.opt-level="z" --config profile.release.panic="unwind"'
)
variants=("$@")
[[ ${#variants[@]} -eq 0 ]] && variants=(o3-unwind o3-abort os-unwind oz-unwind)
root=${PROFILE_TARGET_ROOT:-$HOME/.cache/starter}
requests=${REQUESTS:-3000}

printf '%-10s %12s %14s %16s\n' variant "web bytes" "us CPU / page" "us CPU / healthz"
for v in "${variants[@]}"; do
    target="$root/target-$v"
    if [[ -z "${MEASURE_ONLY:-}" ]]; then
        # shellcheck disable=SC2086
        CARGO_TARGET_DIR="$target" cargo build --release --quiet -p web -p local ${FLAGS[$v]}
    fi
    size=$(stat -c %s "$target/release/web")
    data=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    DATA_DIR="$data" PORT="$port" LOG_LEVEL=warn "$target/release/local" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null && break
        sleep 0.1
    done
    per_request() {
        python3 - "$pid" "$port" "$1" "$requests" <<'PY'
import http.client, os, sys
pid, port, path, n = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
tick = os.sysconf("SC_CLK_TCK")
def cpu():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick
conn = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(200):  # warm up
    conn.request("GET", path); conn.getresponse().read()
start = cpu()
for _ in range(n):
    conn.request("GET", path); conn.getresponse().read()
print(f"{(cpu() - start) / n * 1e6:.0f}")
PY
    }
    page=$(per_request /)
    health=$(per_request /healthz)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$data"
    printf '%-10s %12s %14s %16s\n' "$v" "$size" "$page" "$health"
done
