#!/usr/bin/env bash
# The cargo-fuzz targets in fuzz/ (README "Fuzzing"), each for a while:
#
#   scripts/fuzz.sh                          # every target, 10 s each, unoptimised (CI runs this)
#   scripts/fuzz.sh --release --seconds 600  # longer, on demand, optimised (~10x the runs per second)
#   scripts/fuzz.sh --seconds 60 session_token
#
# The short run builds unoptimised (`cargo fuzz --dev`, with overflow checks): an optimised,
# instrumented build of everything the targets link (the web crate, so the AWS SDKs and sqlx)
# takes far longer on a cold machine than ten seconds of fuzzing are worth.
#
# Stable Rust is enough: with `--sanitizer none` cargo-fuzz passes rustc no unstable flags
# (AddressSanitizer would need nightly, and the code under test has no unsafe of its own).
# cargo-fuzz is installed, pinned, outside the clone (${CARGO_FUZZ_ROOT:-$HOME/.cache/starter/
# cargo-fuzz}). Each target starts from its seeds and kept regressions (fuzz/seeds/<target>/,
# fuzz/regressions/<target>/) plus what earlier runs found (fuzz/corpus/<target>/, not
# committed). Exits non-zero if any target fails, and says where the input that failed is.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/starter/target}"

CARGO_FUZZ_VERSION=0.13.2
seconds=10
profile=--dev
targets=()
while (( $# )); do
    case "$1" in
        --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
        --release) profile=--release; shift ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done

root=${CARGO_FUZZ_ROOT:-$HOME/.cache/starter/cargo-fuzz}
if [[ "$("$root/bin/cargo-fuzz" --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    echo "installing cargo-fuzz $CARGO_FUZZ_VERSION into $root"
    cargo install cargo-fuzz --locked --quiet --version "$CARGO_FUZZ_VERSION" --root "$root"
fi
export PATH="$root/bin:$PATH"

# cargo-fuzz has no --locked: check the committed lock file first.
if ! cargo metadata --locked --manifest-path fuzz/Cargo.toml --format-version 1 >/dev/null; then
    echo "error: fuzz/Cargo.lock is out of date: run 'cargo update --manifest-path fuzz/Cargo.toml --workspace' and commit it" >&2
    exit 1
fi

(( ${#targets[@]} )) || mapfile -t targets < <(cargo fuzz list)
echo "building ${targets[*]}"
cargo fuzz build $profile --sanitizer none 2>&1 | { grep -v '^ *\(Compiling\|Downloaded\|Downloading\) ' || true; }

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=()
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    touch "$logs/$target.start"
    # The first corpus directory receives what the run finds; seeds and regressions are read.
    if cargo fuzz run $profile --sanitizer none "$target" \
        "fuzz/corpus/$target" "fuzz/seeds/$target" "fuzz/regressions/$target" -- \
        -max_total_time="$seconds" -timeout=5 -print_final_stats=1 \
        >"$logs/$target.log" 2>&1; then
        runs=$(grep -o 'number_of_executed_units: *[0-9]*' "$logs/$target.log" | grep -o '[0-9]*$' || echo '?')
        speed=$(grep -o 'average_exec_per_sec: *[0-9]*' "$logs/$target.log" | grep -o '[0-9]*$' || echo '?')
        corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
        echo "$target: ok, $runs runs in ${seconds}s ($speed/s), corpus of $corpus inputs"
    else
        failed+=("$target")
        echo "$target: FAILED; the end of its output:"
        tail -n 40 "$logs/$target.log"
        for input in $(find "fuzz/artifacts/$target" -type f -newer "$logs/$target.start"); do
            echo
            echo "failing input: $input"
            echo "  replay it:  cargo fuzz run $profile --sanitizer none $target $input"
            echo "  keep it:    cp $input fuzz/regressions/$target/<what-it-shows>"
            echo "              (cargo test -p fuzz-checks then replays it on every run; fix, then commit both)"
        done
    fi
done

if (( ${#failed[@]} )); then
    echo "fuzzing failed: ${failed[*]}" >&2
    exit 1
fi
