"""Patch files of a series: reading the quilt `series` order, their targets, and
regenerating the kit-owned parts of patches from the kit's files (`make refresh`).

The export patch is a whole-file replacement: one hunk removing every upstream line and
adding every line of tools/export_center.py. So the upstream text can be read back from
the patch itself, and refresh needs no PaddleOCR tree. A file the series adds to the tree
(NEW_FILES: the training loss) is a `new file` diff at the end of its patch, after the
patch's hand-made hunks, and is regenerated from the kit's copy the same way.
"""

import os
import re

from . import EXPORT_SCRIPT, LOSS_SOURCE, PATCHES_DIR, KitError

EXPORT_TARGET = "tools/export_center.py"
# files the series creates in the tree: {path in the tree: the kit's source of it}
NEW_FILES = {"ppocr/losses/kit_center_loss.py": LOSS_SOURCE}
_DIFF = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.M)


def series_dir(series):
    path = os.path.join(PATCHES_DIR, series)
    if not os.path.isfile(os.path.join(path, "series")):
        raise KitError("patch series %s has no %s/series file" % (series, path))
    return path


def series_patches(series):
    """Patch paths in the order the series file gives (quilt's `series`)."""
    folder = series_dir(series)
    with open(os.path.join(folder, "series"), encoding="utf-8") as f:
        names = [l.split("#")[0].strip() for l in f]
    return [os.path.join(folder, n) for n in names if n]


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


def export_patch_of(series):
    for patch in series_patches(series):
        if targets(patch) == [EXPORT_TARGET]:
            return patch
    raise KitError("series %s has no patch for %s" % (series, EXPORT_TARGET))


def refreshed_export_patch(series, export_script=EXPORT_SCRIPT):
    """(path, text) the series' export patch must have for the current export script."""
    path = export_patch_of(series)
    with open(path, encoding="utf-8") as f:
        header, diff = split_patch(f.read())
    with open(export_script, encoding="utf-8") as f:
        new = f.read()
    return path, header + replacement_diff(EXPORT_TARGET, old_text(diff), new)


def all_series():
    return sorted(
        d for d in os.listdir(PATCHES_DIR) if os.path.isfile(os.path.join(PATCHES_DIR, d, "series"))
    )


def new_file_diff(path, new):
    """A git diff that creates `path` holding `new` (ends with a newline)."""
    lines = new.splitlines(True)
    return (
        "diff --git a/{p} b/{p}\nnew file mode 100644\n--- /dev/null\n+++ b/{p}\n@@ -0,0 +1,{n} @@\n".format(p=path, n=len(lines))
        + "".join("+" + l for l in lines)
    )


def refreshed_new_file_patches(series):
    """[(path, text)] every patch of the series that creates a NEW_FILES file must have:
    its text up to that file's diff (header and hand-made hunks), then the kit's file."""
    out = []
    for patch in series_patches(series):
        created = [t for t in targets(patch) if t in NEW_FILES]
        if not created:
            continue
        with open(patch, encoding="utf-8") as f:
            text = f.read()
        for target in created:
            head = text.split("diff --git a/%s b/%s\n" % (target, target), 1)[0]
            with open(NEW_FILES[target], encoding="utf-8") as f:
                text = head + new_file_diff(target, f.read())
        out.append((patch, text))
    return out


def refreshed_patches(series):
    """[(path, text)] of every kit-generated patch of the series (`make refresh`)."""
    return [refreshed_export_patch(series)] + refreshed_new_file_patches(series)
