"""Why a patch series does not apply to a tree, and what to do about it: the messages of
`make check`, `make status` and a refused apply, from git apply --check's reasons."""

import os
import re

from . import releases
from .patchfile import DROPIN, first_difference, hunks
from .tree import git_dir

# git apply --check's reasons, per file: a hunk's context differs, a file to create exists,
# a file to patch is missing (the rest are named as git says them).
_FAILED = re.compile(r"^error: patch failed: (.+):(\d+)$")
_EXISTS = re.compile(r"^error: (.+): already exists in working directory$")
_MISSING = re.compile(r"^error: (.+): No such file or directory$")
_DOES_NOT_APPLY = re.compile(r"^error: (.+): patch does not apply$")


def _shown(line, width=60):
    """A line of a file for a message: quoted, cut, or `the end of the file` for None."""
    if line is None:
        return "the end of the file"
    return repr(line if len(line) <= width else line[:width] + "...")


def _same_bytes(path, other):
    with open(path, "rb") as a, open(other, "rb") as b:
        return a.read() == b.read()


def reasons(tree, patch, message):
    """[(file, kind, what is wrong)] of git apply --check's message for one patch."""
    out, seen = [], set()
    for line in message.splitlines():
        for kind, pattern in (("failed", _FAILED), ("exists", _EXISTS), ("missing", _MISSING)):
            m = pattern.match(line)
            if m and m.group(1) not in seen:
                seen.add(m.group(1))
                out.append((m.group(1), kind, _what(tree, patch, kind, *m.groups())))
        m = _DOES_NOT_APPLY.match(line)
        if m and m.group(1) not in seen:
            seen.add(m.group(1))
            out.append((m.group(1), "failed", "does not apply"))
    return out or [("?", "other", (message.splitlines() or ["does not apply"])[0])]


def _what(tree, patch, kind, path, line=None):
    if kind == "exists":
        return "exists, but upstream has no such file: the series creates it"
    if kind == "missing":
        return "missing: the series patches it"
    for header, start, expected, at_end in hunks(patch, path):
        if start == int(line):
            diff = first_difference(os.path.join(tree, path), start, expected, at_end)
            if diff is None:
                return "hunk %s fails" % header
            n, have, want = diff
            return "hunk %s fails at line %d, which is %s where the patch expects %s" % (
                header, n, _shown(have), _shown(want))
    return "the hunk at line %s fails" % line


def advice(tree, conflicts, release=None):
    """The next step that clears conflicts: for edits not committed, git diff /
    git stash / git checkout; for committed ones (git stash cannot help), a checkout of
    the release; for a file the series creates, found already there, removing it."""
    tag = release if release and releases.parse_version(release) else "<the release tag>"
    edited = [p for _, p, kind in conflicts if kind in ("failed", "missing")]
    steps = []
    if edited and git_dir(tree) is None:
        steps.append("restore upstream's %s of %s: the kit patches upstream's files only" % (" ".join(edited), tag))
        edited = []
    uncommitted = [p for p in edited if _uncommitted(tree, p)]
    committed = [p for p in edited if p not in uncommitted]
    if uncommitted:
        names = " ".join(uncommitted)
        steps.append("see the local edits with `git diff %s`, set them aside with `git stash` (`git stash pop` "
                     "after the run) or drop them with `git checkout -- %s`" % (names, names))
    if committed:
        names = " ".join(committed)
        steps.append("the edits to %s are committed (`git diff %s -- %s` shows them), so `git stash` cannot set "
                     "them aside: run the kit in a checkout of %s (`git worktree add ../paddleocr-%s %s`), or restore "
                     "upstream's with `git checkout %s -- %s`" % (names, tag, names, tag, tag, tag, tag, names))
    for _, path, kind in conflicts:
        if kind == "exists":
            full = os.path.join(tree, path)
            if path in DROPIN and _same_bytes(full, DROPIN[path]):
                steps.append("%s is the kit's own copy, left when the other patched files were restored by "
                             "hand: delete it" % path)
            else:
                steps.append("move %s aside (or delete it)" % path)
    return "; ".join(steps) or "restore upstream's files of the release (see `make status`)"


def _uncommitted(tree, path):
    """Whether git sees path changed (or gone) in the tree's work tree or index."""
    import git

    try:
        return bool(git.Git(tree).execute(["git", "status", "--porcelain", "--", path]).strip())
    except git.GitCommandError:
        return False
