"""Running the kit as a user does: `make -f <kit>/Makefile <target> VAR=...`."""

import hashlib
import os
import re
import subprocess
import sys

KIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What a test's child process may inherit from the shell that runs the suite: how to find
# programs, home and temp, locale, and the BLAS settings this kind of machine needs. Nothing
# else: the user's PADDLEOCR, CONFIG, FORCE, OUTPUT, PYTHON, MAKEFLAGS (`make test FORCE=1`
# hands FORCE=1 to every sub-make through it), PYTHONPATH, PYTHONDONTWRITEBYTECODE ...
# would make the kit act on the user's real clone or hide what it leaves in one.
INHERITED = ("PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TZ", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE",
             "SSL_CERT_FILE", "PPOCR_CENTER_KIT_CACHE", "XDG_CACHE_HOME")
INHERITED_PREFIXES = ("OPENBLAS_", "PIP_")


def hermetic_env(extra=None):
    """A child's environment: the allow-listed variables of this one, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k in INHERITED or k.startswith(INHERITED_PREFIXES)}
    env.update(extra or {})
    return env


def helper_env(extra=None):
    """hermetic_env for the tests' own Python helpers (reference, stand-in, workers): the
    kit's modules on the path as the Makefile's KITPATH puts them, and no bytecode, which
    in a tree would hide what the kit leaves there."""
    return hermetic_env(dict({"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": os.path.join(KIT, "scripts")},
                             **(extra or {})))


def make_command(target, env=None, wrap=(), **variables):
    """(argv, environment) of `make target VAR=...`; wrap is a command prefix (setpriv ...)."""
    cmd = [*wrap, "make", "--no-print-directory", "-f", os.path.join(KIT, "Makefile"), target,
           "PYTHON=%s" % sys.executable]
    cmd += ["%s=%s" % (k, v) for k, v in variables.items()]
    return cmd, hermetic_env(env)


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
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = (hashlib.sha256(f.read()).hexdigest(), os.stat(path).st_mode)
    return out


def git_status(tree):
    """`git status --porcelain --ignored`: what git sees changed, added, and added but
    ignored (bytecode under an upstream .gitignore)."""
    return subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=tree, capture_output=True, text=True,
                          check=True).stdout
