"""Running the kit as a user does: `make -f <kit>/Makefile <target> VAR=...`."""

import hashlib
import os
import re
import subprocess
import sys

KIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_command(target, env=None, wrap=(), **variables):
    """(argv, environment) of `make target VAR=...`; wrap is a command prefix (setpriv ...)."""
    cmd = [*wrap, "make", "--no-print-directory", "-f", os.path.join(KIT, "Makefile"), target,
           "PYTHON=%s" % sys.executable]
    cmd += ["%s=%s" % (k, v) for k, v in variables.items()]
    return cmd, dict(os.environ, **(env or {}))


def make(target, cwd, env=None, wrap=(), **variables):
    cmd, full_env = make_command(target, env, wrap, **variables)
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True)


def error_lines(result):
    """The kit's own error lines (make adds its own `make: *** ...` line after them)."""
    return [l for l in result.stderr.splitlines() if l.startswith(("ppocr-center-kit:", "export_center:"))]


def recipe_exit(result):
    """The exit code of the kit under make (make itself exits 2 for any failing recipe,
    and names the recipe's code in `make: *** [...] Error N`); 0 when the recipe passed."""
    if result.returncode == 0:
        return 0
    codes = re.findall(r"\] Error (\d+)$", result.stderr, re.M)
    return int(codes[-1]) if codes else None


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


def git_status(tree):
    return subprocess.run(["git", "status", "--porcelain"], cwd=tree, capture_output=True, text=True, check=True).stdout
