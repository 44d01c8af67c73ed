"""The suite is hermetic: what the user's shell holds for the kit never reaches the kit
runs a test starts (conftest.HOSTILE is set for every run, so each clone-tier test is also
this proof), and the kit's children write no bytecode into a clone."""

import os
import subprocess

from conftest import HOSTILE
from kit_run import hermetic_env, make_command


def test_the_users_kit_variables_never_reach_a_kit_run(tmp_path):
    """What the kit's recipes see, run as the tests run them (make_command), while this
    process holds conftest's hostile values: none of them, only what the test passes."""
    probe = tmp_path / "Makefile"
    names = sorted(k for k in HOSTILE if k != "MAKEFLAGS")
    probe.write_text("include %s\nprobe:\n\t@echo %s\n" % (
        os.path.join(os.path.dirname(os.path.dirname(__file__)), "Makefile"),
        " ".join("%s=[$$%s]" % (n, n) for n in names)))
    cmd, env = make_command("probe", env={"PADDLEOCR_VERSION": "v3.7.0"})
    cmd[cmd.index("-f") + 1] = str(probe)
    out = subprocess.run(cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    seen = dict(item.split("=", 1) for item in out.stdout.split())
    assert seen.pop("PADDLEOCR_VERSION") == "[v3.7.0]" and seen.pop("PYTHON") == "[%s]" % cmd[-1].split("=", 1)[1]
    leaked = {k: v for k, v in seen.items() if v != "[]" and HOSTILE[k] in v}
    assert not leaked, leaked
    assert "PYTHONDONTWRITEBYTECODE" not in hermetic_env()  # bytecode on, as users have it


def test_make_sends_python_bytecode_outside_the_clone(tmp_path):
    """Every recipe's Python children get PYTHONPYCACHEPREFIX in the kit's cache (or the
    user's own), so importing ppocr from a clone adds no __pycache__ to it."""
    probe = tmp_path / "Makefile"
    probe.write_text("include %s\nprobe:\n\t@echo \"$$PYTHONPYCACHEPREFIX\"\n"
                     % os.path.join(os.path.dirname(os.path.dirname(__file__)), "Makefile"))
    out = subprocess.run(["make", "--no-print-directory", "-f", str(probe), "probe"], cwd=str(tmp_path),
                         env=hermetic_env({"HOME": str(tmp_path / "home")}), capture_output=True, text=True)
    assert out.stdout.strip() == str(tmp_path / "home" / ".cache" / "ppocr-center-kit" / "pycache")
    mine = str(tmp_path / "mine")
    out = subprocess.run(["make", "--no-print-directory", "-f", str(probe), "probe"], cwd=str(tmp_path),
                         env=hermetic_env({"PYTHONPYCACHEPREFIX": mine}), capture_output=True, text=True)
    assert out.stdout.strip() == mine
