"""The suite is hermetic: what the user's shell holds for the kit never reaches the kit
runs a test starts (conftest.HOSTILE is set for every run, so each clone-tier test is also
this proof), and the kit's children write no bytecode into a clone."""

import os
import subprocess

from conftest import HOSTILE, NEWEST
from kit_run import hermetic_env, make_command


def test_the_users_kit_variables_never_reach_a_kit_recipe(tmp_path):
    """A recipe of the kit's Makefile, run as every test runs make, sees none of the hostile
    values this session holds (HOSTILE, set by conftest), in its make variables or in the
    environment of its children; PADDLEOCR_VERSION only as the test passes it."""
    names = sorted(set(HOSTILE) - {"MAKEFLAGS"})
    probe = tmp_path / "Makefile"
    probe.write_text("include %s\nprobe:\n%s\n" % (os.path.join(os.path.dirname(os.path.dirname(__file__)), "Makefile"),
                     "".join("\t@echo 'make %s=$(%s)'; echo \"env %s=$$%s\"\n" % (n, n, n, n) for n in names)))
    cmd, env = make_command("probe", env={"PADDLEOCR_VERSION": NEWEST})
    cmd[cmd.index("-f") + 1] = str(probe)
    out = subprocess.run(cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    seen = dict(line.split("=", 1) for line in out.stdout.splitlines())
    assert len(seen) == 2 * len(names)
    leaked = {k: v for k, v in seen.items() if any(h in v for h in HOSTILE.values() if len(h) > 1)}
    assert leaked == {}, leaked
    assert all(seen["%s %s" % (where, n)] == "" for where in ("make", "env") for n in ("FORCE", "NPROC", "OUTPUT"))
    assert seen["env PADDLEOCR_VERSION"] == NEWEST
    assert "PYTHONDONTWRITEBYTECODE" not in hermetic_env()  # bytecode on, as users have it


def test_make_sends_python_bytecode_outside_the_clone(tmp_path):
    """Every recipe's Python children get PYTHONPYCACHEPREFIX in the kit's cache (or the
    user's own), so importing ppocr from a clone adds no __pycache__ to it."""
    probe = tmp_path / "Makefile"
    probe.write_text("include %s\nprobe:\n\t@echo \"$$PYTHONPYCACHEPREFIX\"\n"
                     % os.path.join(os.path.dirname(os.path.dirname(__file__)), "Makefile"))
    home = hermetic_env({"HOME": str(tmp_path / "home")})
    home.pop("XDG_CACHE_HOME", None)  # a CI machine may set it: then it is the cache (below)
    out = subprocess.run(["make", "--no-print-directory", "-f", str(probe), "probe"], cwd=str(tmp_path),
                         env=home, capture_output=True, text=True)
    assert out.stdout.strip() == str(tmp_path / "home" / ".cache" / "ppocr-center-kit" / "pycache")
    out = subprocess.run(["make", "--no-print-directory", "-f", str(probe), "probe"], cwd=str(tmp_path),
                         env=dict(home, XDG_CACHE_HOME=str(tmp_path / "xdg")), capture_output=True, text=True)
    assert out.stdout.strip() == str(tmp_path / "xdg" / "ppocr-center-kit" / "pycache")
    mine = str(tmp_path / "mine")
    out = subprocess.run(["make", "--no-print-directory", "-f", str(probe), "probe"], cwd=str(tmp_path),
                         env=hermetic_env({"PYTHONPYCACHEPREFIX": mine}), capture_output=True, text=True)
    assert out.stdout.strip() == mine
