#!/usr/bin/env bash
# Installs the deploy tools from PyPI (AWS SAM CLI with cfn-lint, cargo-lambda and zig, at the
# versions in scripts/requirements-sam.txt) into a virtualenv kept outside the clone, adds the
# Rust target the functions are built for, and prints `export` lines that put them on PATH:
#
#   eval "$(scripts/sam-tools.sh)"
#   sam validate --lint && sam build
#
# The virtualenv (${SAM_TOOLS_VENV:-$HOME/.cache/starter/venv-sam}) is created once per machine
# and reinstalled when the requirements file changes. SAM_ARCH=x86_64 skips the arm64 target.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${SAM_TOOLS_VENV:-$HOME/.cache/starter/venv-sam}
requirements=scripts/requirements-sam.txt
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [[ ! -x "$venv/bin/sam" || ! -x "$venv/bin/cargo-lambda" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "installing the SAM tools into $venv" >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
    echo "$want" >"$stamp"
fi

# template.yaml builds for arm64 (Graviton); cargo-lambda needs the standard library for it.
if [[ "${SAM_ARCH:-arm64}" == "arm64" ]] && command -v rustup >/dev/null; then
    if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
        echo "adding the Rust target aarch64-unknown-linux-gnu" >&2
        rustup target add aarch64-unknown-linux-gnu >&2
    fi
fi

# The venv's bin first: cargo-lambda finds zig through its python (ziglang).
echo "export PATH=\"$venv/bin:\$PATH\""
echo "export SAM_CLI_TELEMETRY=0"
