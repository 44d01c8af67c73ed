"""`make add-release TAG=vX.Y.Z PADDLEOCR=<a tree at that tag>` (maintainers): prove the
series that fits a new PaddleOCR release on its tree and add the release to the table.

1. the tree must be TAG (its git tag, version file or PADDLEOCR_VERSION) and TAG not listed;
2. the candidate series (releases.candidate_series: the release's major.minor line first,
   then newest to oldest) are dry-run; the first that applies cleanly is the one;
3. proof on the tree: the series applied and reverted byte-for-byte, then `make smoke` (a
   real export of the tiny distillation config with a stand-in checkpoint);
4. the row `TAG <series> <sdist sha256>` goes into patches/releases.tsv in version order
   (the sha256 of PyPI's paddleocr==X.Y.Z sdist, or SDIST_SHA256=; `-` when PyPI has none
   or cannot be reached, said in a line). The tests take their releases from the table, so
   `make test` then proves the release on every tier.

When no series applies, nothing is written: the command names each series' first conflict
and the way on (CONTRIBUTING.md, "Adding a PaddleOCR release")."""

import os
import subprocess
import sys

from . import KitError, files, releases
from .make_commands import make_command
from .patch_queue import PatchQueue
from .tree import TreeLock, find_tree

PYPI = "https://pypi.org/simple/paddleocr/"


def add_arguments(parser):
    for name in ("tree", "tag", "sdist_sha256", "python"):
        parser.add_argument("--" + name.replace("_", "-"), default="")


def pypi_sdist_sha256(version, timeout=10):
    """(sha256 of PyPI's sdist of paddleocr==version, or None, why not), from PyPI's simple
    index (PEP 503: each file's link ends in #sha256=), which pip itself reads."""
    import re
    import urllib.request

    try:
        with urllib.request.urlopen(PYPI, timeout=timeout) as r:
            page = r.read().decode("utf-8", "replace")
    except Exception as e:  # offline, a proxy
        return None, "PyPI not reached (%s)" % (getattr(e, "reason", None) or e)
    name = "paddleocr-%s.tar.gz" % version
    m = re.search(re.escape(name) + r"#sha256=([0-9a-f]{64})", page)
    return (m.group(1), "PyPI's %s" % name) if m else (None, "PyPI has no %s" % name)


def table_with(text, row, version):
    """The table's text with row inserted after the last listed release older than version."""
    lines = text.splitlines(keepends=True)
    at, header_seen = len(lines), False
    for i, line in enumerate(lines):
        if not line.strip() or line.startswith("#"):
            continue
        if not header_seen:
            header_seen, at = True, i + 1
            continue
        if releases.parse_version(line.split("\t")[0]) < version:
            at = i + 1
    if at == len(lines) and lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return "".join(lines[:at] + [row] + lines[at:])


def smoke(tree, python, tag):
    r = subprocess.run(make_command("smoke", tree, python), env=dict(os.environ, PADDLEOCR_VERSION=tag),
                       capture_output=True, text=True)
    if r.returncode:
        lines = r.stderr.strip().splitlines()
        last = ([l for l in lines if l.startswith("ppocr-center-kit:")] or lines or ["?"])[-1]  # not make's own line
        raise KitError("make smoke failed on %s (%s); nothing was added to the table" % (tree, last))
    return r.stdout.strip().splitlines()[-1]


def cmd_add_release(a):
    tag = a.tag
    parsed = releases.parse_version(tag) if tag else None
    if parsed is None or not tag.startswith("v"):
        raise KitError("TAG=%s is not a release tag; pass TAG=vX.Y.Z (the PaddleOCR tag)" % (tag or "(empty)"))
    table = releases.load_table()
    if releases.listed_series(tag, table):
        raise KitError("%s is already in %s (series %s); nothing to add" % (tag, releases.TABLE, releases.listed_series(tag, table)))
    tree = find_tree(a.tree, a.invoked_from)
    try:
        version, source = releases.detect_version(tree)
    except KitError:
        version, source = None, "no tag, no version file"
    if version is None or releases.parse_version(version) != parsed:
        raise KitError("%s is %s (%s), not %s; check out %s there, or set PADDLEOCR_VERSION=%s if the tree is that release"
                       % (tree, version or "no release", source, tag, tag, tag))
    with TreeLock(tree):
        try:
            q, _ = PatchQueue.for_tree(tree, quiet=True)
        except KitError as e:
            raise KitError("%s; no series fits %s: carry the newest series onto it by hand (CONTRIBUTING.md, "
                           "Adding a PaddleOCR release), then rerun make add-release" % (e, tag))
        status, detail = q.detect()
        if status != "unapplied":
            raise KitError("series %s is %s on %s (%s); make revert, then rerun" % (q.series, status, tree, "; ".join(detail)))
        print("series %s applies cleanly to %s %s" % (q.series, tag, tree), flush=True)
        with q.applied(tag):
            pass
        after, _ = q.detect()
        if after != "unapplied" or not q.reverted:
            raise KitError("series %s did not revert cleanly on %s (%s); please report it" % (q.series, tree, after))
    print("applied and reverted byte-for-byte: %s" % ", ".join(q.targets()), flush=True)
    print(smoke(tree, a.python or sys.executable, tag), flush=True)
    sha = a.sdist_sha256
    if not sha:
        sha, why = pypi_sdist_sha256(tag[1:])
        print("sdist: %s" % (sha and "sha256 %s (%s)" % (sha, why) or "- (%s; SDIST_SHA256= sets it)" % why), flush=True)
    elif sha != "-" and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
        raise KitError("SDIST_SHA256=%s is not a sha256 (64 hex digits) or -" % sha)
    with open(releases.TABLE, encoding="utf-8") as f:
        text = f.read()
    files.write_atomic(releases.TABLE, table_with(text, "%s\t%s\t%s\n" % (tag, q.series, sha or "-"), parsed).encode("utf-8"))
    print("added %s (series %s) to %s; run `make test`: every tier takes its releases from the table"
          % (tag, q.series, releases.TABLE))
    return 0
