#!/usr/bin/env bash
# schemathesis against the JSON API, as its OpenAPI document describes it:
#
#   scripts/schemathesis.sh            # short: 25 examples per operation (~1 min; CI runs it)
#   scripts/schemathesis.sh --long     # 1,000 examples per operation (tens of minutes)
#   EXAMPLES=200 scripts/schemathesis.sh
#
# It builds and starts the local app on a throwaway SQLite database and a free port, makes a
# superuser (staff, so the class operations run past their permission check) and an API token,
# and runs every check that states a contract of ours:
#   - not_a_server_error: no 5xx, whatever the input;
#   - status_code_conformance, content_type_conformance, response_headers_conformance,
#     response_schema_conformance: every answer is one the document declares, in its shape;
#   - negative_data_rejection: input the schema forbids is refused;
#   - ignored_auth: an operation that declares a security scheme refuses requests without
#     valid credentials (schemathesis repeats them with the header removed and with a bad one);
#   - missing_required_header, unsupported_method, use_after_free,
#     ensure_resource_availability.
# Left out: positive_data_acceptance (schema-valid input must succeed), which cannot hold for
# business rules the schema cannot express: a wrong current password, an unknown token, a
# password too common, a class starting in the past.
#
# `DELETE /api/auth/token` revokes the token it is called with, so it runs in a second pass
# with a token of its own. schemathesis is installed from PyPI into a virtualenv outside the
# clone (${SCHEMATHESIS_VENV:-$HOME/.cache/starter/venv-schemathesis}). Exits non-zero on any
# failure; each failure is printed with a curl line that reproduces it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/starter/target}"

examples=${EXAMPLES:-25}
[[ "${1:-}" == "--long" ]] && examples=1000

venv=${SCHEMATHESIS_VENV:-$HOME/.cache/starter/venv-schemathesis}
if ! "$venv/bin/st" --version >/dev/null 2>&1; then
    echo "installing schemathesis into $venv" >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-schemathesis.txt >&2
fi

cargo build --quiet --locked -p local
app="$CARGO_TARGET_DIR/debug/local"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
site="http://127.0.0.1:$port"
password="correct horse battery staple"
server=""
cleanup() {
    [[ -n "$server" ]] && kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The local profile (DEBUG on), its own database, no queue: the in-process worker sends mail
# to the console, which goes to the log file.
app_env=(env -u WORKER_QUEUE_URL -u EMAIL_BACKEND -u ALLOWED_HOSTS -u AWS_ENDPOINT_URL
    DATABASE_URL="sqlite://$work/app.db" PORT="$port" SITE_URL="$site" LOG_LEVEL=warn
    SUPERUSER_PASSWORD="$password" "$app")
(cd "$work" && "${app_env[@]}" migrate >/dev/null && "${app_env[@]}" createsuperuser --email admin@example.com --no-input >/dev/null)
# `exec`, so that $! is the app itself and the cleanup's kill reaches it (a subshell in
# between would be killed and leave the app running).
(cd "$work" && exec "${app_env[@]}" > "$work/app.log" 2>&1) &
server=$!
for _ in $(seq 100); do
    curl -sf "$site/healthz" >/dev/null && break
    kill -0 "$server" 2>/dev/null || { echo "error: the app exited:" >&2; cat "$work/app.log" >&2; exit 1; }
    sleep 0.1
done

token() {
    curl -sf -X POST "$site/api/auth/token" -H 'content-type: application/json' \
        -d "{\"email\":\"admin@example.com\",\"password\":\"$password\"}" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,ignored_auth,missing_required_header,unsupported_method,use_after_free,ensure_resource_availability
st() {
    "$venv/bin/st" run "$site/api/openapi.json" --checks "$checks" --max-examples "$examples" \
        --no-color --request-timeout 10 "$@"
}

# Both tokens before the first pass: its sign-in attempts can trip the sign-in throttle for
# this address, and a second pass run with an empty token would test nothing.
first_token=$(token)
revoke_token=$(token)
[[ -n "$first_token" && -n "$revoke_token" ]] || { echo "error: could not get an API token" >&2; exit 1; }

echo "schemathesis: $examples examples per operation against $site"
status=0
st -H "Authorization: Bearer $first_token" --exclude-operation-id revokeToken || status=1
# Alone, it has no links to follow: no stateful phase.
st -H "Authorization: Bearer $revoke_token" --include-operation-id revokeToken \
    --phases examples,coverage,fuzzing || status=1
if grep -q '"level":"ERROR"\| ERROR ' "$work/app.log"; then
    echo "error: the app logged errors during the run:" >&2
    grep '"level":"ERROR"\| ERROR ' "$work/app.log" | head -20 >&2
    status=1
fi
exit $status
