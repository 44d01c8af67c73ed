"""Patch files: the quilt `series` order, their targets, and regenerating the diffs of the
kit's drop-in files (`make refresh`).

patches/<series>/ holds what fits one range of releases, patches/common/ what is the same
on all (Buildroot's <pkg>/ beside <pkg>/<version>/); a series file lists both. dropin/
holds the files the patches put into the tree, at their paths there. A drop-in that
replaces an upstream file (tools/export_center.py) is one whole-file hunk: every upstream
line out, every line of the drop-in in, so the upstream text is read back from the patch
itself and refresh needs no PaddleOCR tree. One that upstream lacks (the training loss) is
a `new file` diff, the same for every release, so it lives in common/.
"""

import os
import re

from . import DROPIN_DIR, PATCHES_DIR, KitError

EXPORT_TARGET = "tools/export_center.py"


def _dropin_files():
    found = {}
    for folder, dirs, names in os.walk(DROPIN_DIR):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            if name.startswith(".") or name.endswith((".pyc", "~")):  # an editor's or Python's, not the kit's
                continue
            path = os.path.join(folder, name)
            found[os.path.relpath(path, DROPIN_DIR).replace(os.sep, "/")] = path
    return found


# the files the patches put into the tree, at the same paths under dropin/: {path in the tree: the kit's copy}
DROPIN = _dropin_files()
_DIFF = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.M)


def series_dir(series):
    path = os.path.join(PATCHES_DIR, series)
    if not os.path.isfile(os.path.join(path, "series")):
        raise KitError("patch series %s has no %s/series file" % (series, path))
    return path


def series_patches(series):
    """Patch paths in the order the series file gives (quilt's `series`); its entries are
    relative to the series folder, so `../common/NNNN-*.patch` takes one from the common layer."""
    folder = series_dir(series)
    with open(os.path.join(folder, "series"), encoding="utf-8") as f:
        names = [l.split("#")[0].strip() for l in f]
    return [os.path.normpath(os.path.join(folder, n)) for n in names if n]


def targets(patch_path):
    with open(patch_path, encoding="utf-8") as f:
        return sorted({m.group(2) for m in _DIFF.finditer(f.read())})


def hunks(patch_path, target):
    """[(header, old start line, pre-image lines, at the end)] of target's hunks in a patch;
    `at the end`: the hunk has no trailing context, so git applies it only where the
    pre-image ends the file (a whole-file replacement is such a hunk)."""
    with open(patch_path, encoding="utf-8") as f:
        text = f.read()
    out, section, last = [], False, None
    for line in text.split("\n") + ["diff --git a/- b/-"]:  # a sentinel closes the last hunk
        m = _DIFF.match(line)
        if (m or line.startswith("@@ ")) and section and out:
            out[-1][3] = last != " "
        if m:
            section = m.group(2) == target
        elif section and line.startswith("@@ "):
            out.append([line.split(" @@")[0] + " @@", int(line.split()[1][1:].split(",")[0]), [], False])
        elif section and out and line[:1] in (" ", "-", "+"):  # after the ---/+++ lines: out is empty there
            last = line[:1]
            if line[:1] != "+":
                out[-1][2].append(line[1:])
    return [tuple(h) for h in out]


def first_difference(path, start, expected, at_end=False):
    """(line number, the file's line or None at its end, the expected line or None for the
    end of the file) of the first line of path, from line `start` on, that differs from
    `expected` (and, at_end, from the end of the file after it); None if all match."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    first = max(start, 1) - 1
    for i, want in enumerate(expected + ([None] if at_end else [])):
        have = lines[first + i] if first + i < len(lines) else None
        if have != want:
            return first + i + 1, have, want
    return None


def split_patch(text):
    """(header, diff) of a patch: the header is everything before the first `diff --git`."""
    m = _DIFF.search(text)
    if not m:
        raise KitError("not a git patch: no `diff --git` line")
    return text[: m.start()], text[m.start():]


def old_text(diff):
    """The pre-image of a single-file, single-hunk diff (context and removed lines)."""
    lines = diff.split("\n@@ ", 1)[1].split("\n")[1:]
    return "".join(l[1:] + "\n" for l in lines if l[:1] in (" ", "-"))


def replacement_diff(path, old, new):
    """A git diff that replaces the whole of `old` with `new` (both end with a newline)."""
    old_lines, new_lines = old.splitlines(True), new.splitlines(True)
    return (
        "diff --git a/{p} b/{p}\n--- a/{p}\n+++ b/{p}\n@@ -1,{o} +1,{n} @@\n".format(
            p=path, o=len(old_lines), n=len(new_lines)
        )
        + "".join("-" + l for l in old_lines)
        + "".join("+" + l for l in new_lines)
    )


def file_diffs(before, after, paths):
    """A git diff (three lines of context, as the hand-made patches have) of each path from
    the folder `before` to the folder `after`; a path `before` lacks is a new file."""
    import difflib

    out = []
    for path in paths:
        old_path, new_path = os.path.join(before, path), os.path.join(after, path)
        with open(new_path, encoding="utf-8") as f:
            new = f.read()
        if not os.path.exists(old_path):
            out.append(new_file_diff(path, new))
            continue
        with open(old_path, encoding="utf-8") as f:
            old = f.read()
        body = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "a/" + path, "b/" + path))
        out.append("diff --git a/{p} b/{p}\n".format(p=path) + body)
    return "".join(out)


def series_digest(series):
    """sha256 of the series' patch files, their bytes one after the other in series order:
    what a report records, so that a centers file says which patches produced it."""
    import hashlib

    digest = hashlib.sha256()
    for path in series_patches(series):
        with open(path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def all_series():
    return sorted(
        d for d in os.listdir(PATCHES_DIR) if os.path.isfile(os.path.join(PATCHES_DIR, d, "series"))
    )


def all_patches():
    """Every patch file some series uses, once (a common or shared one is listed by several)."""
    return list(dict.fromkeys(p for s in all_series() for p in series_patches(s)))


def new_file_diff(path, new):
    """A git diff that creates `path` holding `new` (ends with a newline)."""
    lines = new.splitlines(True)
    return (
        "diff --git a/{p} b/{p}\nnew file mode 100644\n--- /dev/null\n+++ b/{p}\n@@ -0,0 +1,{n} @@\n".format(p=path, n=len(lines))
        + "".join("+" + l for l in lines)
    )


def sections(text):
    """[(target, section text)] of a patch's diff, one per `diff --git` (its header is not one)."""
    starts = [m.start() for m in _DIFF.finditer(text)]
    return [(_DIFF.match(text, a).group(2), text[a:b]) for a, b in zip(starts, starts[1:] + [len(text)])]


def refreshed(patch_path):
    """The text the patch must have for the kit's drop-in files (`make refresh`): each diff of
    a DROPIN file regenerated from it (a `new file` diff, or a whole-file replacement of the
    upstream text the diff already holds); the header and hand-made diffs as they are."""
    with open(patch_path, encoding="utf-8") as f:
        header, diff = split_patch(f.read())
    out = header
    for target, section in sections(diff):
        if target in DROPIN:
            with open(DROPIN[target], encoding="utf-8") as f:
                new = f.read()
            is_new = "\nnew file mode " in section.split("\n@@ ", 1)[0]
            section = new_file_diff(target, new) if is_new else replacement_diff(target, old_text(section), new)
        out += section
    return out


def refreshed_patches():
    """[(path, text)] of every patch, of any series or the common layer, that carries a
    drop-in file."""
    return [(p, refreshed(p)) for p in all_patches() if set(targets(p)) & set(DROPIN)]
