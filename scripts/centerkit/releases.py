"""Which PaddleOCR release a tree is, and which patch series fits it.

patches/releases.tsv is the one table of supported releases; everything (series
selection, `make check`, the tests) reads it through this module. A release it lists is
proven by the tests; one it does not list (a newer tag, an untagged commit) gets the first
candidate series that applies cleanly (PatchQueue.for_tree), and every command says it is
not yet proven.
"""

import os
import re
from collections import namedtuple

from . import PATCHES_DIR, KitError

# PPOCR_CENTER_KIT_RELEASE_TABLE: another copy of the table (the add-release test writes to one)
TABLE = os.environ.get("PPOCR_CENTER_KIT_RELEASE_TABLE") or os.path.join(PATCHES_DIR, "releases.tsv")
Release = namedtuple("Release", "name series sdist_sha256")
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


def load_table(path=TABLE):
    rows, header = [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            cells = line.rstrip("\n").split("\t")
            if header is None:
                header = cells
                continue
            row = dict(zip(header, cells))
            sha = row["sdist_sha256"]
            rows.append(Release(row["release"], row["series"], None if sha == "-" else sha))
    return rows


def parse_version(text):
    """(major, minor, patch) of 'v3.7.0', '2.7.0.3', '3.7.1.dev2+g1234'; None if not one."""
    m = _VERSION.match(str(text).strip())
    return tuple(int(g or 0) for g in m.groups()) if m else None


def require_version(version):
    """version parsed, or the KitError naming PADDLEOCR_VERSION when it is not a version."""
    parsed = parse_version(version)
    if parsed is None:
        raise KitError("%r is not a PaddleOCR version; set PADDLEOCR_VERSION=vX.Y.Z" % version)
    return parsed


def listed_series(version, table=None):
    """The series of a release the table lists (proven by the tests), else None."""
    table = load_table() if table is None else table
    parsed = parse_version(version) if version else None
    return next((rel.series for rel in table if parsed and parse_version(rel.name) == parsed), None)


def series_for(version, table=None):
    """The series of a listed release, or a KitError: for a tree, PatchQueue.for_tree also
    tries the series on releases the table does not list (candidate_series)."""
    table = load_table() if table is None else table
    require_version(version)
    series = listed_series(version, table)
    if series is None:
        raise KitError("PaddleOCR %s is not in the release table (%s ... %s)" % (version, table[0].name, table[-1].name))
    return series


def candidate_series(version, table=None, folders=()):
    """The series to dry-run on a release the table does not list, in order: a series
    folder made for its major.minor line and not yet in the table (make add-release's
    carry, being proven), those of the listed releases of its line (the likeliest fit),
    then every listed series from the newest to the oldest."""
    table = load_table() if table is None else table
    parsed = parse_version(version) if version else None
    newest_first = list(dict.fromkeys(rel.series for rel in reversed(table)))
    line = [rel.series for rel in reversed(table) if parsed and parse_version(rel.name)[:2] == parsed[:2]]
    made = [s for s in folders if s not in newest_first and parsed and (parse_version(s) or ())[:2] == parsed[:2]]
    return list(dict.fromkeys(made + line + newest_first))


def _tree_version(tree):
    """The version written in the tree itself: sdist PKG-INFO, VERSION_NUMBER, paddleocr.py."""
    probes = [
        ("PKG-INFO", r"^Version:\s*(\S+)"),
        ("VERSION_NUMBER", r"^\s*(\S+)"),
        ("paddleocr/_version.py", r"version\s*=\s*['\"]([^'\"]+)"),
        ("paddleocr.py", r"^VERSION\s*=\s*['\"]([^'\"]+)"),
    ]
    for name, pattern in probes:
        path = os.path.join(tree, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                m = re.search(pattern, f.read(), re.M)
            if m and parse_version(m.group(1)):
                return m.group(1), name
    return None


def _git_tag(tree):
    try:
        import git

        repo = git.Repo(tree)
        if os.path.realpath(repo.working_tree_dir) != os.path.realpath(tree):
            return None  # the tree is a folder inside some other repository
        tag = repo.git.describe("--tags", "--abbrev=0")
    except Exception:  # no git, not a repository, or no tag reachable
        return None
    return tag if parse_version(tag) else None


def detect_version(tree, environ=None):
    """(version, where it came from). PADDLEOCR_VERSION wins when set, so a tree whose tag
    or version file says something misleading (a release-branch cut) can be pinned; a
    KitError when the tree says nothing (PatchQueue.for_tree then dry-runs every series)."""
    environ = os.environ if environ is None else environ
    if environ.get("PADDLEOCR_VERSION"):
        return environ["PADDLEOCR_VERSION"], "PADDLEOCR_VERSION"
    tag = _git_tag(tree)
    if tag:
        return tag, "git tag"
    found = _tree_version(tree)
    if found:
        return found[0], found[1]
    raise KitError(
        "cannot tell which PaddleOCR release %s is (no tag, no version file); set "
        "PADDLEOCR_VERSION=vX.Y.Z" % tree
    )
