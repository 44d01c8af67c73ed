"""Issue 22: `make add-release` on a tree of a release after the table (the newest tree,
taken for the next minor release by PADDLEOCR_VERSION): the series that applies is proven
(applied, reverted, smoke export) and the row lands in version order in a copy of the
table (PPOCR_CENTER_KIT_RELEASE_TABLE); the kit's own table, the tree and every other row
stay as they were; a listed TAG and a TAG the tree is not are one-line refusals."""

import shutil

import tiny_data
from centerkit import releases
from conftest import NEWEST, TABLE
from kit_run import error_lines, git_status, make


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
