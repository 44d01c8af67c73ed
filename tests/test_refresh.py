"""Issue 30: `make refresh PADDLEOCR=<clone>` takes edits made in a clone with the series
applied back into the kit, quilt refresh's way, on a copy of the kit: a hook file's edit
regenerates the hand-made patch that last touches it, a drop-in module's edit goes back to
dropin/ and its one generated patch; nothing else changes; the edited series applies again
and reverts byte for byte. Without edits a refresh changes nothing."""

import glob
import os
import subprocess

from conftest import NEWEST, TABLE
from kit_run import error_lines, git_status, kit_copy, make_command, recipe_exit

SERIES = TABLE[-1].series
HOOK = "ppocr/modeling/heads/rec_multi_head.py"  # touched by the hand-made 0003 alone
MODULE = "ppocr/utils/kit_export/center_math.py"


def kit_files(kit):
    """{path: bytes} of the copy's patches/ and dropin/."""
    return {p: open(p, "rb").read() for d in ("patches", "dropin") for p in glob.glob(os.path.join(kit, d, "**", "*"),
                                                                                        recursive=True)
            if os.path.isfile(p)}


def kit_make(kit, target, tree, **variables):
    cmd, env = make_command(target, env={"PADDLEOCR_VERSION": NEWEST}, PADDLEOCR=tree, **variables)
    cmd[cmd.index("-f") + 1] = os.path.join(kit, "Makefile")
    return subprocess.run(cmd, cwd=kit, env=env, capture_output=True, text=True)


def edit(path, after, added):
    """Insert the line `added` after the first line of path that is `after`."""
    text = open(path, encoding="utf-8").read()
    assert text.count(after + "\n") >= 1
    open(path, "w", encoding="utf-8").write(text.replace(after + "\n", after + "\n" + added + "\n", 1))


def test_edits_in_the_clone_go_back_to_their_one_patch_each(tree_of, tmp_path):
    kit, tree = kit_copy(str(tmp_path / "kit")), tree_of(NEWEST)
    before = kit_files(kit)
    assert kit_make(kit, "apply", tree).returncode == 0
    r = kit_make(kit, "refresh", tree)
    assert r.returncode == 0 and kit_files(kit) == before, r.stdout + r.stderr  # no edits: nothing changes

    edit(os.path.join(tree, HOOK), "class MultiHead(nn.Layer):", "    # edited in the clone")
    edit(os.path.join(tree, MODULE), "import numpy as np", "# edited too")
    r = kit_make(kit, "refresh", tree)
    assert r.returncode == 0, r.stdout + r.stderr
    changed = sorted(os.path.relpath(p, kit) for p, data in kit_files(kit).items() if before.get(p) != data)
    assert changed == sorted(["dropin/" + MODULE, "patches/common/0005-kit-export-package.patch",
                              "patches/%s/0003-kit-center-loss-hooks.patch" % SERIES]), changed
    path = os.path.join(kit, "patches", SERIES, "0003-kit-center-loss-hooks.patch")
    hooks, hooks_before = open(path).read(), before[path].decode()
    assert "\n+    # edited in the clone\n" in hooks
    assert hooks.split("\n---\n")[0] == hooks_before.split("\n---\n")[0]  # its header (what and why) kept
    assert "\n+# edited too\n" in open(os.path.join(kit, "patches", "common", "0005-kit-export-package.patch")).read()

    assert kit_make(kit, "revert", tree).returncode == 0
    assert git_status(tree) == ""  # the originals back, no .edited-while-patched copies: the edits are in the patches
    assert kit_make(kit, "apply", tree).returncode == 0
    assert "    # edited in the clone\n" in open(os.path.join(tree, HOOK)).read()
    assert "# edited too\n" in open(os.path.join(tree, MODULE)).read()
    assert kit_make(kit, "revert", tree).returncode == 0 and git_status(tree) == ""


def test_refresh_of_a_clone_without_an_applied_series_is_one_line(tree_of, tmp_path):
    kit, tree = kit_copy(str(tmp_path / "kit")), tree_of(NEWEST)
    before = kit_files(kit)
    r = kit_make(kit, "refresh", tree)
    assert recipe_exit(r) == 2 and len(error_lines(r)) == 1 and "make apply PADDLEOCR=" in error_lines(r)[0]
    assert kit_files(kit) == before and git_status(tree) == ""
