#!/usr/bin/env python3
"""The size of each function's package as `sam build` left it in .aws-sam/build: the
`bootstrap` binary and its zip (deflate, level 9, as Lambda receives it).

    scripts/package-sizes.py              # a table (CI)
    scripts/package-sizes.py --bench-args # `--zip Web=<bytes> ...` for tools/bench
"""
import glob
import io
import os
import sys
import zipfile

binaries = sorted(glob.glob(".aws-sam/build/*Function/bootstrap"))
if len(binaries) < 4:
    sys.exit(f"error: expected 4 built functions in .aws-sam/build, found {binaries}")
args = []
for path in binaries:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(path, "bootstrap")
    name = path.split("/")[-2]
    size, zipped = os.path.getsize(path), len(buf.getvalue())
    if "--bench-args" in sys.argv:
        args += ["--zip", f"{name.removesuffix('Function')}={zipped}"]
    else:
        print(f"{name:20} bootstrap {size:>11,} B   zip -9 {zipped:>11,} B ({zipped / 1e6:.1f} MB)")
if args:
    print(" ".join(args))
