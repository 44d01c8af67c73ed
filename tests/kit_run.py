"""Running the kit as a user does: `make -f <kit>/Makefile <target> VAR=...`."""

import hashlib
import os
import subprocess
import sys

KIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make(target, cwd, env=None, **variables):
    cmd = ["make", "--no-print-directory", "-f", os.path.join(KIT, "Makefile"), target,
           "PYTHON=%s" % sys.executable]
    cmd += ["%s=%s" % (k, v) for k, v in variables.items()]
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True)


def error_lines(result):
    """The kit's own error lines (make adds its own `make: *** ...` line after them)."""
    return [l for l in result.stderr.splitlines() if l.startswith(("ppocr-center-kit:", "export_center:"))]


def snapshot(root):
    """{relative path: (sha256, mode)} of every file under root."""
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = (hashlib.sha256(f.read()).hexdigest(), os.stat(path).st_mode)
    return out
