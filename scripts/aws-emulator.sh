#!/usr/bin/env bash
# Starts moto's server (SQS, SES v2 and more, speaking the real AWS APIs) on a free loopback
# port, and prints `export` lines that point the AWS SDK at it:
#
#   eval "$(scripts/aws-emulator.sh)"     # sets AWS_EMULATOR_URL, AWS_ENDPOINT_URL, fake keys
#   ...                                    # run tests
#   scripts/aws-emulator.sh stop           # stops it
#
# moto is installed from PyPI into a virtualenv kept outside the clone
# (${AWS_EMULATOR_VENV:-$HOME/.cache/starter/venv-moto}), once per machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-start}" == "stop" ]]; then
    [[ -n "${AWS_EMULATOR_PID:-}" ]] && kill "$AWS_EMULATOR_PID" 2>/dev/null || true
    exit 0
fi

venv=${AWS_EMULATOR_VENV:-$HOME/.cache/starter/venv-moto}
if ! "$venv/bin/python" -c 'import moto.server' 2>/dev/null; then
    echo "installing moto into $venv" >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-aws-emulator.txt >&2
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp /tmp/moto.XXXXXX.log)
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/data.json')" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "error: moto_server exited:" >&2; cat "$log" >&2; exit 1
    fi
    sleep 0.1
done

echo "export AWS_EMULATOR_PID=$pid"
echo "export AWS_EMULATOR_URL=http://127.0.0.1:$port"
echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$port"
echo "export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1"
