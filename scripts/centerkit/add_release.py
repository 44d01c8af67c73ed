"""`make add-release TAG=vX.Y.Z PADDLEOCR=<a tree at that tag>` (maintainers): prove the
series that fits a new PaddleOCR release on its tree and add the release to the table.

1. the tree must be TAG (its git tag, version file or PADDLEOCR_VERSION) and TAG not listed;
2. the candidate series (releases.candidate_series: the release's major.minor line first,
   then newest to oldest) are dry-run; the first that applies cleanly is the one;
3. proof on the tree: the series applied and reverted byte-for-byte; the head channels of
   every configs/rec config derived as the tree's own tools/train.py does (head_channels);
   then `make smoke` (a real export of the tiny distillation config with a stand-in checkpoint);
4. the row `TAG <series> <sdist sha256>` goes into patches/releases.tsv in version order
   (the sha256 of PyPI's paddleocr==X.Y.Z sdist, or SDIST_SHA256=; `-` when PyPI has none
   or cannot be reached, said in a line). The tests take their releases from the table, so
   `make test` then proves the release on every tier.

When no series applies, the newest series is carried onto the tree as patches/vX.Y/
(carry.py): the patches that still apply are shared, the drop-in replacement is made anew
from the new upstream text, moved hunks are placed and regenerated; then the new series is
proven as above. Hunks that cannot be placed are listed, and nothing goes into the table
until a human has fixed them and reruns the command (CONTRIBUTING.md, "Adding a PaddleOCR
release")."""

import os
import subprocess
import sys

from . import KitError, files, head_channels, patchfile, releases
from .carry import Carry
from .make_commands import kit_line, make_command
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


def head_channels_line(tree, tag):
    """The line saying the export sizes the heads of every configs/rec config as this
    release's own tools/train.py does, or a KitError naming the configs where it does not."""
    total, compared, unreadable, differing = head_channels.compare_tree(tree)
    if differing:
        raise KitError("on %s the export sizes the heads of %d configs/rec configs unlike its tools/train.py (%s); make "
                       "set_head_channels in dropin/ppocr/utils/kit_export/config.py follow it, then rerun; nothing was added"
                       % (tag, len(differing), ", ".join(differing[:3]) + (" ..." if len(differing) > 3 else "")))
    return ("head channels: %d of %d configs/rec configs derive as %s's tools/train.py does (%d it cannot read itself%s)"
            % (compared, total, tag, len(unreadable), ": " + ", ".join(sorted(unreadable)[:3]) if unreadable else ""))


def smoke(tree, python, tag):
    r = subprocess.run(make_command("smoke", tree, python), env=dict(os.environ, PADDLEOCR_VERSION=tag),
                       capture_output=True, text=True)
    if r.returncode:
        raise KitError("make smoke failed on %s (%s); nothing was added to the table" % (tree, kit_line(r.stderr)))
    return r.stdout.strip().splitlines()[-1]


def candidate_queue(tree, tag, table):
    """The queue to prove: a series made for TAG earlier (patches/vX.Y/ not yet in the
    table: a carry a maintainer has finished), else the first candidate series that applies,
    else a new series carried from the newest one (carry.py), when it needs no human."""
    name = "v%d.%d" % releases.parse_version(tag)[:2]
    if name in patchfile.all_series() and name not in {r.series for r in table}:
        q = PatchQueue(tree, name)
        status, detail = q.detect()
        if status == "conflict":
            raise KitError("patches/%s/ (made for %s, not yet in the table) does not apply: %s; fix those hunks "
                           "there (or remove the folder), then rerun make add-release" % (name, tag, "; ".join(detail)))
        print("series %s (not yet in the table) applies to %s" % (name, tag), flush=True)
        return q
    try:
        return PatchQueue.for_tree(tree, quiet=True)[0]
    except KitError as e:
        first_conflict = str(e)
    made = Carry(tree, tag).run()
    print("no series applies to %s (%s); made patches/%s/ from series %s:" % (tag, first_conflict, made.series, made.source),
          flush=True)
    for name, note in made.notes:
        print("  carried %s: %s" % (name, note), flush=True)
    if made.human:
        raise KitError("%d patch(es) of patches/%s/ need a human: %s; edit them there (CONTRIBUTING.md, Adding a "
                       "PaddleOCR release), then rerun make add-release; nothing was added to the table"
                       % (len(made.human), made.series, "; ".join("%s: %s" % h for h in made.human)))
    return PatchQueue(tree, made.series)


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
        q = candidate_queue(tree, tag, table)
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
    print(head_channels_line(tree, tag), flush=True)
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
