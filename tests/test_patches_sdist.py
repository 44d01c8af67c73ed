"""Every patch of the selected series, on the real files of every release that has a
PyPI sdist (tools/export_center.py; the sdists carry no ppocr/modeling)."""

import os
import py_compile
import subprocess

import pytest

import upstream
from kit_run import hermetic_env
from conftest import SDIST_RELEASES
from centerkit import KitError, patchfile, releases
from centerkit.files import sha256 as sha256_file
from centerkit.patch_queue import PatchQueue

CASES = [
    pytest.param(rel, patch, id="%s-%s" % (rel.name, os.path.basename(patch)))
    for rel in SDIST_RELEASES
    for patch in patchfile.series_patches(rel.series)
    if all(t.startswith(upstream.SDIST_PARTS) and not t.startswith("ppocr/modeling/")
           for t in patchfile.targets(patch))
]


def _sha_or_none(path):
    return sha256_file(path) if os.path.exists(path) else None


@pytest.mark.parametrize("rel,patch", CASES)
def test_patch_applies_and_reverts_byte_identical(rel, patch, tmp_path):
    tree = upstream.sdist_tree(rel, str(tmp_path))
    assert releases.series_for(releases.detect_version(tree, environ={})[0]) == rel.series
    subprocess.run(["git", "apply", "--check", patch], cwd=tree, check=True,
                   env=hermetic_env({"GIT_CEILING_DIRECTORIES": str(tmp_path)}))
    files = patchfile.targets(patch)
    before = {f: _sha_or_none(os.path.join(tree, f)) for f in files}  # None: a file the patch creates

    q = PatchQueue(tree, rel.series)
    q.patches = [patch]
    q.apply(rel.name)
    for f in files:
        assert sha256_file(os.path.join(tree, f)) != before[f]
        py_compile.compile(os.path.join(tree, f), doraise=True)
    assert q.detect()[0] == "applied"
    assert q.revert() == "restored"
    assert {f: _sha_or_none(os.path.join(tree, f)) for f in files} == before
    assert not os.path.exists(q.state)


@pytest.mark.parametrize("series", patchfile.all_series())
def test_every_drop_in_file_reaches_the_tree_through_one_refreshed_patch(series):
    """Each dropin/ file is carried by exactly one patch of the series, and that patch is
    what `make refresh` makes of the drop-in now."""
    carriers = {f: [p for p in patchfile.series_patches(series) if f in patchfile.targets(p)] for f in patchfile.DROPIN}
    package = {f for f in patchfile.DROPIN if f.startswith("ppocr/utils/kit_export/")}
    assert set(patchfile.DROPIN) - package == {"tools/export_center.py", "ppocr/losses/kit_center_loss.py",
                                               "ppocr/losses/kit_center_file.py"}
    assert {"ppocr/utils/kit_export/%s.py" % m for m in ("__init__", "cli", "config", "center_math")} <= package
    assert all(len(ps) == 1 for ps in carriers.values()), carriers
    for (patch,) in carriers.values():
        with open(patch, encoding="utf-8") as f:
            assert f.read() == patchfile.refreshed(patch), "run `make refresh`: %s drifted from dropin/" % patch


def test_common_layer_is_shared_and_refresh_touches_few_files(tmp_path, monkeypatch):
    """A change to any drop-in module (the export's package, the loss) regenerates one
    patch, of common/; a change to the thin tools/export_center.py one per distinct upstream
    text of it: fewer than the series, each holding the change."""
    common = [p for p in patchfile.all_patches() if os.path.basename(os.path.dirname(p)) == "common"]
    assert common and all(p in patchfile.series_patches(s) for s in patchfile.all_series() for p in common)
    for target in patchfile.DROPIN:
        copy = tmp_path / target.replace("/", "_")
        copy.write_text(open(patchfile.DROPIN[target], encoding="utf-8").read() + "# changed\n", encoding="utf-8")
        with monkeypatch.context() as m:
            m.setitem(patchfile.DROPIN, target, str(copy))
            touched = {p: text for p, text in patchfile.refreshed_patches() if open(p, encoding="utf-8").read() != text}
        assert touched and len(touched) < len(patchfile.all_series()), (target, sorted(touched))
        assert all("\n+# changed\n" in text for text in touched.values())
        if target != patchfile.EXPORT_TARGET:
            assert [os.path.basename(os.path.dirname(p)) for p in touched] == ["common"], (target, sorted(touched))


def test_every_series_in_table_exists_and_every_series_is_used():
    used = {r.series for r in releases.load_table()}
    assert used == set(patchfile.all_series())


def with_one_line_broken(patch, dest):
    """A copy of `patch` in which one line it expects to find upstream (a context line, else
    a removed line) is changed, as a drifted upstream file would make it."""
    with open(patch, encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)
    hunk_lines = [i for i, l in enumerate(lines) if i > next(j for j, h in enumerate(lines) if h.startswith("@@"))]
    expected = [i for i in hunk_lines if lines[i][:1] == " " and lines[i].strip()] or \
               [i for i in hunk_lines if lines[i][:1] == "-" and lines[i].strip("-\n ")]
    i = expected[len(expected) // 2]
    lines[i] = lines[i][0] + "# drifted " + lines[i][1:]
    path = os.path.join(dest, os.path.basename(patch))
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(lines)
    return path


@pytest.mark.parametrize("rel,patch", [c for c in CASES if "\nnew file mode" not in open(c.values[1]).read()][-1:])
def test_a_broken_context_line_fails_the_checks(rel, patch, tmp_path):
    tree = upstream.sdist_tree(rel, str(tmp_path / "tree"))
    bad = with_one_line_broken(patch, str(tmp_path))
    env = hermetic_env({"GIT_CEILING_DIRECTORIES": str(tmp_path)})
    assert subprocess.run(["git", "apply", "--check", bad], cwd=tree, env=env, capture_output=True).returncode != 0
    q = PatchQueue(tree, rel.series)
    q.patches = [bad]
    assert q.detect()[0] == "conflict"
    with pytest.raises(KitError, match="do not apply"):
        q.apply(rel.name)
    assert not os.path.exists(q.state)


def test_make_version_names_the_kit_and_each_series_digest(tmp_path):
    from centerkit import VERSION, releases
    from kit_run import make

    r = make("version", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "ppocr-center-kit %s" % VERSION and VERSION.count(".") == 2
    table = releases.load_table()
    assert [l.split()[0] for l in lines[1:]] == [t.name for t in table]
    for line, release in zip(lines[1:], table):
        assert line.split()[2:] == [release.series, patchfile.series_digest(release.series)]
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "CHANGELOG.md")) as f:
        assert "## [%s]" % VERSION in f.read()  # every version cut is in the changelog
