"""Running the kit as a user does: `make -f <kit>/Makefile <target> VAR=...`."""

import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys

from centerkit import PREFIX
from centerkit.make_commands import opts_text

KIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What a test's child process may inherit from the shell that runs the suite: how to find
# programs, home and temp, locale, and the BLAS settings this kind of machine needs. Nothing
# else: the user's PADDLEOCR, CONFIG, FORCE, OUTPUT, PYTHON, MAKEFLAGS (`make test FORCE=1`
# hands FORCE=1 to every sub-make through it), PYTHONPATH, PYTHONDONTWRITEBYTECODE ...
# would make the kit act on the user's real clone or hide what it leaves in one.
INHERITED = ("PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TZ", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE",
             "SSL_CERT_FILE", "PPOCR_CENTER_KIT_CACHE", "XDG_CACHE_HOME")
INHERITED_PREFIXES = ("OPENBLAS_", "PIP_")


# Fault injection, in one place: centerkit.faults' points act only when CENTERKIT_TEST_FAULTS
# names a file holding faults.TOKEN_TEXT (a user's shell never has one), and the faults inside
# the export child come from tests/child_faults/sitecustomize.py on the child's PYTHONPATH.
CHILD_HOOK = os.path.join(KIT, "tests", "child_faults")


def fault_token(folder):
    """The path of a new token file in folder that arms fault injection for this test run."""
    from centerkit import faults

    path = os.path.join(str(folder), "token")
    with open(path, "w") as f:
        f.write(faults.TOKEN_TEXT)
    return path


def fault_env(token, **variables):
    """A child's fault variables: armed with token, the child hook on its PYTHONPATH, and
    the fault variables given (CENTERKIT_CHILD_FAULT=..., CENTERKIT_KILL_AT=...)."""
    return dict({"CENTERKIT_TEST_FAULTS": str(token), "PYTHONPATH": CHILD_HOOK}, **variables)


def hermetic_env(extra=None):
    """A child's environment: the allow-listed variables of this one, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k in INHERITED or k.startswith(INHERITED_PREFIXES)}
    env.update(extra or {})
    return env


def helper_env(extra=None):
    """hermetic_env for the tests' own Python helpers (reference, stand-in, workers): the
    kit's modules on the path as the Makefile's KITPATH puts them, and no bytecode in a
    tree, where it would hide what the kit leaves there. Under `make test` the bytecode goes
    where the kit's own children put it (the Makefile's PYTHONPYCACHEPREFIX, which also holds
    what pip compiled when it installed the environments): a helper that compiled Paddle
    and ppocr anew spent ~4.5 s of CPU on it at every start. Run outside make, no bytecode."""
    prefix = os.environ.get("PYTHONPYCACHEPREFIX")
    cache = {"PYTHONPYCACHEPREFIX": prefix} if prefix else {"PYTHONDONTWRITEBYTECODE": "1"}
    return hermetic_env(dict(cache, PYTHONPATH=os.path.join(KIT, "scripts")) | (extra or {}))


def make_command(target, env=None, wrap=(), **variables):
    """(argv, environment) of `make target VAR=...`; wrap is a command prefix (setpriv ...)."""
    cmd = [*wrap, "make", "--no-print-directory", "-f", os.path.join(KIT, "Makefile"), target,
           "PYTHON=%s" % sys.executable]
    cmd += ["%s=%s" % (k, v) for k, v in variables.items()]
    return cmd, hermetic_env(env)


def make(target, cwd, env=None, wrap=(), **variables):
    cmd, full_env = make_command(target, env, wrap, **variables)
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True)


# The variables of an export in a test of what is read before either engine runs (the data,
# the weights): dygraph, since the inference engine is proven on every release by
# test_clone_tier and test_engines, and its conversion would cost each such export ~2 s
# and prove nothing about what the test checks.
ENGINE_NOT_UNDER_TEST = {"ENGINE": "dygraph"}


def export(tree, release, out, opts=(), env=None, **variables):
    """`make export` run in the tree as a user runs it, to OUTPUT=out with `-o` overrides
    opts: (make's result, centers, report), both None when make failed. Each test asserts
    its own property on them."""
    r = make("export", cwd=tree, env=dict({"PADDLEOCR_VERSION": release}, **(env or {})), OUTPUT=str(out),
             OPTS=opts_text(opts), **variables)
    return (r, None, None) if r.returncode else (r,) + load_export(out)


def load_export(out):
    """(centers, report) of an export's pkl and the report.json beside it."""
    with open(out, "rb") as f:
        centers = pickle.load(f)
    with open(os.path.splitext(str(out))[0] + ".report.json") as f:
        return centers, json.load(f)


def output_of(result):
    """The end of make's output, for an assertion's message."""
    return result.stdout[-3000:] + result.stderr[-3000:]


def error_lines(result):
    """The kit's own error lines (make adds its own `make: *** ...` line after them)."""
    return [l for l in result.stderr.splitlines() if l.startswith(PREFIX)]


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


def kit_copy(dest):
    """A copy of the kit (what make add-release writes to: patches/ and the table), so the
    test never edits the kit's own patches."""
    os.makedirs(dest)
    keep = ("Makefile", "VERSION", "requirements.txt", "scripts", "patches", "dropin", "tools", "configs")
    for name in keep:
        src = os.path.join(KIT, name)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(dest, name), ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, os.path.join(dest, name))
    return dest
