"""Issue 22: `make add-release` on a tree of a release after the table (the newest tree,
taken for the next minor release by PADDLEOCR_VERSION): the series that applies is proven
(applied, reverted, smoke export) and the row lands in version order in a copy of the
table (PPOCR_CENTER_KIT_RELEASE_TABLE); the kit's own table, the tree and every other row
stay as they were; a listed TAG and a TAG the tree is not are one-line refusals."""

import glob
import os
import re
import shutil
import subprocess

import pytest

import tiny_data
from centerkit import patchfile, releases
from conftest import NEWEST, TABLE
from kit_run import KIT, error_lines, git_status, kit_copy, make, make_command, recipe_exit


def test_add_release_proves_the_series_and_adds_the_row(tree_of, tmp_path):
    tree = tree_of(NEWEST)
    python = tiny_data.release_python(tree, NEWEST)
    kit_table = releases.TABLE
    before = open(kit_table, "rb").read()
    table = tmp_path / "releases.tsv"
    shutil.copy(kit_table, table)
    major, minor, _ = releases.parse_version(NEWEST)
    newer = "v%d.%d.0" % (major, minor + 1)
    env = {"PADDLEOCR_VERSION": newer, "PPOCR_CENTER_KIT_RELEASE_TABLE": str(table)}
    r = make("add-release", cwd=tree, env=env, PYTHON=python, TAG=newer, SDIST_SHA256="-")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "series %s applies cleanly to %s" % (TABLE[-1].series, newer) in r.stdout
    assert "applied and reverted byte-for-byte" in r.stdout and "ok: smoke export" in r.stdout
    channels = re.search(r"^head channels: (\d+) of (\d+) configs/rec configs derive as %s's tools/train.py does "
                         r"\((\d+) it cannot read itself" % re.escape(newer), r.stdout, re.M)
    assert channels, r.stdout[-3000:]
    compared, total, unreadable = map(int, channels.groups())
    # every config of this tree (not the kit's, not another tree's), each compared or named
    assert total == len(glob.glob(os.path.join(tree, "configs", "rec", "**", "*.yml"), recursive=True))
    assert compared == total - unreadable and compared > unreadable
    rows = releases.load_table(str(table))
    assert rows[:-1] == TABLE and rows[-1] == releases.Release(newer, TABLE[-1].series, None)
    assert open(table).read().endswith("%s\t%s\t-\n" % (newer, TABLE[-1].series))
    assert open(kit_table, "rb").read() == before and git_status(tree) == ""

    again = make("add-release", cwd=tree, env=env, PYTHON=python, TAG=newer, SDIST_SHA256="-")
    assert again.returncode == 2 and "%s is already in" % newer in error_lines(again)[0]

    older = "v%d.%d.1" % releases.parse_version(TABLE[0].name)[:2]  # between the first two rows, by version
    other = make("add-release", cwd=tree, env=env, PYTHON=python, TAG=older, SDIST_SHA256="-")
    assert other.returncode == 2 and len(error_lines(other)) == 1
    assert "is %s (PADDLEOCR_VERSION), not %s" % (newer, older) in error_lines(other)[0]
    assert releases.load_table(str(table)) == rows and git_status(tree) == ""


def test_a_release_whose_train_py_sizes_heads_otherwise_is_refused(tmp_path):
    """The head-channel proof fails when the tree's own tools/train.py derives a config's
    heads unlike the export (here: a train.py that sizes the CTC head off by one), naming
    the config; a config train.py itself cannot read is listed, not counted."""
    from centerkit import KitError
    from centerkit.add_release import head_channels_line

    (tmp_path / "tools").mkdir()
    (tmp_path / "configs" / "rec" / "v9").mkdir(parents=True)
    (tmp_path / "configs" / "rec" / "v9" / "crnn.yml").write_text(
        "Architecture: {algorithm: CRNN, Head: {name: CTCHead}}\nPostProcess: {name: CTCLabelDecode}\nLoss: {name: CTCLoss}\n")
    (tmp_path / "configs" / "rec" / "v9" / "broken.yml").write_text("a: *undefined\n")
    body = ('def main(config, post_process_class):\n'
            '    if hasattr(post_process_class, "character"):\n'
            '        config["Architecture"]["Head"]["out_channels"] = len(post_process_class.character) + %d\n')
    (tmp_path / "tools" / "train.py").write_text(body % 0)
    line = head_channels_line(str(tmp_path), "v9.0.0")
    assert line.startswith("head channels: 1 of 2 configs/rec configs derive as v9.0.0's tools/train.py does")
    assert "(1 it cannot read itself: configs/rec/v9/broken.yml)" in line
    (tmp_path / "tools" / "train.py").write_text(body % 1)
    with pytest.raises(KitError, match=r"sizes the heads of 1 configs/rec configs unlike its tools/train.py "
                                       r"\(configs/rec/v9/crnn.yml\)"):
        head_channels_line(str(tmp_path), "v9.0.0")


def test_table_rows_go_in_version_order():
    from centerkit.add_release import table_with

    text = "# comment\nrelease\tseries\tsdist_sha256\nv2.6.0\tv2.6\t-\nv3.7.0\tv3.7\t-\n"
    assert table_with(text, "v2.7.0\tv2.7\t-\n", (2, 7, 0)).splitlines()[3] == "v2.7.0\tv2.7\t-"
    assert table_with(text, "v3.8.0\tv3.7\t-\n", (3, 8, 0)).splitlines()[-1] == "v3.8.0\tv3.7\t-"
    assert table_with(text, "v2.5.0\tv2.6\t-\n", (2, 5, 0)).splitlines()[2] == "v2.5.0\tv2.6\t-"


def test_the_sdist_hash_is_read_from_pypis_simple_index(monkeypatch):
    import io
    import urllib.request

    from centerkit import add_release

    page = (b'<a href="https://files/paddleocr-3.7.0.tar.gz#sha256=' + b"ab" * 32 + b'">paddleocr-3.7.0.tar.gz</a>'
            b'<a href="https://files/paddleocr-3.7.0-py3-none-any.whl#sha256=' + b"cd" * 32 + b'">wheel</a>')
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(page))
    assert add_release.pypi_sdist_sha256("3.7.0") == ("ab" * 32, "PyPI's paddleocr-3.7.0.tar.gz")
    assert add_release.pypi_sdist_sha256("3.8.0") == (None, "PyPI has no paddleocr-3.8.0.tar.gz")

    def offline(url, timeout):
        raise OSError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    sha, why = add_release.pypi_sdist_sha256("3.7.0")
    assert sha is None and why.startswith("PyPI not reached")


def newer_tree(tree_of, dest, old, new):
    """A clone of the newest tree, taken for the next release, whose rec_multi_head.py has
    `old` replaced by `new` (committed, as upstream's next release would have it)."""
    subprocess.run(["git", "clone", "-q", tree_of(NEWEST), dest], check=True, capture_output=True)
    path = os.path.join(dest, "ppocr", "modeling", "heads", "rec_multi_head.py")
    text = open(path, encoding="utf-8").read()
    assert text.count(old) == 1
    open(path, "w", encoding="utf-8").write(text.replace(old, new))
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "next release"], cwd=dest,
                   check=True, capture_output=True)
    return dest


def next_release(tree_of, tmp_path, old, new, twice=False):
    """(kit copy, tree, tag, series name, result, result of a rerun or None) of make
    add-release, with a copy of the kit, on the newest tree with `old` replaced by `new`
    taken for the next minor release."""
    kit = kit_copy(str(tmp_path / "kit"))
    tree = newer_tree(tree_of, str(tmp_path / "tree"), old, new)
    major, minor, _ = releases.parse_version(NEWEST)
    tag = "v%d.%d.0" % (major, minor + 1)
    cmd, env = make_command("add-release", env={"PADDLEOCR_VERSION": tag}, TAG=tag, SDIST_SHA256="-",
                            PYTHON=tiny_data.release_python(tree_of(NEWEST), NEWEST))
    cmd[cmd.index("-f") + 1] = os.path.join(kit, "Makefile")
    runs = [subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True) for _ in range(2 if twice else 1)]
    return kit, tree, tag, "v%d.%d" % (major, minor + 1), runs[0], runs[1] if twice else None


def test_a_release_no_series_fits_gets_a_carried_series(tree_of, tmp_path):
    """Upstream moved a context line of a hunk (0003 in rec_multi_head.py): no series
    applies, so make add-release carries the newest one onto the tree as patches/vX.Y/
    (the patches that still apply shared, 0003 regenerated from its one-line-context
    placement), proves it (apply, revert, head channels, smoke) and adds the row."""
    kit, tree, newer, name, r, _ = next_release(tree_of, tmp_path, "        ctc_out = self.ctc_head(ctc_encoder, targets)\n",
                                                "        # the CTC branch\n        ctc_out = self.ctc_head(ctc_encoder, targets)\n")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "no series applies to %s" % newer in r.stdout and "made patches/%s/ from series %s" % (name, TABLE[-1].series) in r.stdout
    assert "carried 0003-kit-center-loss-hooks.patch: its hunks placed with one line of context" in r.stdout
    assert "applied and reverted byte-for-byte" in r.stdout and "ok: smoke export" in r.stdout
    folder = os.path.join(kit, "patches", name)
    series = [l for l in open(os.path.join(folder, "series")).read().splitlines() if l and not l.startswith("#")]
    newest = [os.path.relpath(p, os.path.join(KIT, "patches", TABLE[-1].series))
              for p in patchfile.series_patches(TABLE[-1].series)]
    assert series == [n if "0003-" not in n else "0003-kit-center-loss-hooks.patch" for n in newest]
    carried = open(os.path.join(folder, "0003-kit-center-loss-hooks.patch")).read()
    assert "+        # the CTC branch" not in carried and "\n         # the CTC branch\n" in carried  # context now
    assert "Tags: %s (series %s, carried from series %s" % (newer, name, TABLE[-1].series) in carried
    rows = releases.load_table(os.path.join(kit, "patches", "releases.tsv"))
    assert rows[-1] == releases.Release(newer, name, None)
    assert git_status(tree) == "" and releases.load_table() == TABLE  # the kit's own table as it was


def test_a_hunk_that_cannot_be_placed_is_listed_for_a_human(tree_of, tmp_path):
    """A line inside a hunk changed upstream: the carry cannot place it, so the new folder
    keeps the hunk as it was, the command names it and where it fails (exit 2), and no row
    is added until a human has fixed it; a rerun names the folder's conflict."""
    table_before = open(releases.TABLE, "rb").read()
    kit, tree, newer, name, r, again = next_release(tree_of, tmp_path, '        head_out["ctc"] = ctc_out\n',
                                                    '        head_out["ctc"] = ctc_out  # renamed upstream\n', twice=True)
    assert recipe_exit(r) == 2 and len(error_lines(r)) == 1, r.stdout[-3000:] + r.stderr[-3000:]
    line = error_lines(r)[0]
    assert "1 patch(es) of patches/%s/ need a human: 0003-kit-center-loss-hooks.patch: " % name in line
    hooks = [p for p in patchfile.series_patches(TABLE[-1].series) if "0003-" in p][0]
    target = "ppocr/modeling/heads/rec_multi_head.py"
    (header,) = [h[0] for h in patchfile.hunks(hooks, target) if '        head_out["ctc"] = ctc_out' in h[2]]
    assert "%s (0003-kit-center-loss-hooks.patch): hunk %s fails" % (target, header) in line
    assert open(os.path.join(kit, "patches", "releases.tsv"), "rb").read() == table_before  # the copy's, as the kit's
    assert os.path.isfile(os.path.join(kit, "patches", name, "0003-kit-center-loss-hooks.patch"))
    assert recipe_exit(again) == 2 and "patches/%s/ (made for %s, not yet in the table) does not apply" % (name, newer) \
        in error_lines(again)[0]
    assert git_status(tree) == ""
