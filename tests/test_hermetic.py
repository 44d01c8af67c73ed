"""The suite is hermetic: what the user's shell holds for the kit never reaches the kit
runs a test starts (conftest.HOSTILE is set for every run, so each clone-tier test is also
this proof), and the kit's children write no bytecode into a clone."""

import os
import subprocess

from conftest import HOSTILE
from kit_run import hermetic_env, make_command


def test_the_users_kit_variables_are_set_and_never_inherited():
    assert all(os.environ[k] == v for k, v in HOSTILE.items())
    cmd, env = make_command("status", env={"PADDLEOCR_VERSION": "v3.7.0"})
    assert not set(HOSTILE) - {"PADDLEOCR_VERSION"} & set(env)
    assert env["PADDLEOCR_VERSION"] == "v3.7.0" and env["PATH"] == os.environ["PATH"]
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
