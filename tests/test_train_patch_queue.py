"""The patch queue with a patch that creates a file (common/0004 adds ppocr/losses/kit_center_loss.py):
state detection, revert removes it, edits made to it while applied are kept aside."""

import subprocess

from centerkit import patchfile
from centerkit.patch_queue import PatchQueue
from conftest import NEWEST, TABLE


def _tree(tmp_path):
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "a.py").write_text("x = 1\n")
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    subprocess.run(["git", "-C", str(tree), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"], check=True)
    patch = tmp_path / "0001-new.patch"
    patch.write_text("Subject: test\n---\n" + "diff --git a/pkg/a.py b/pkg/a.py\n--- a/pkg/a.py\n+++ b/pkg/a.py\n"
                     "@@ -1 +1,2 @@\n x = 1\n+y = 2\n" + patchfile.new_file_diff("pkg/new.py", "z = 3\n"))
    q = PatchQueue(str(tree), TABLE[-1].series)
    q.patches = [str(patch)]
    return tree, q


def test_created_file_is_removed_on_revert(tmp_path):
    tree, q = _tree(tmp_path)
    assert q.targets() == ["pkg/a.py", "pkg/new.py"]
    assert q.detect()[0] == "unapplied"
    q.apply(NEWEST)
    assert (tree / "pkg" / "new.py").read_text() == "z = 3\n"
    assert q.detect()[0] == "applied"
    assert q.revert() == "restored"
    assert not (tree / "pkg" / "new.py").exists() and (tree / "pkg" / "a.py").read_text() == "x = 1\n"
    assert q.detect()[0] == "unapplied" and q.kept_edits == []
    assert subprocess.run(["git", "-C", str(tree), "status", "--porcelain"], capture_output=True, text=True).stdout == ""


def test_edits_to_a_created_file_are_kept(tmp_path):
    tree, q = _tree(tmp_path)
    q.apply(NEWEST)
    (tree / "pkg" / "new.py").write_text("z = 3\nmine = True\n")
    q.revert()
    assert not (tree / "pkg" / "new.py").exists()
    kept = tree / "pkg" / "new.py.edited-while-patched"
    assert kept.read_text() == "z = 3\nmine = True\n"
    assert q.kept_edits == [(str(tree / "pkg" / "new.py"), str(kept))]


def test_revert_without_state_reverses_a_created_file(tmp_path):
    tree, q = _tree(tmp_path)
    subprocess.run(["git", "apply", *q.patches], cwd=tree, check=True)  # applied by hand
    assert q.detect()[0] == "applied"
    assert q.revert() == "reversed"
    assert not (tree / "pkg" / "new.py").exists() and q.detect()[0] == "unapplied"
