"""Carrying the newest series onto a release none of the series fits (`make add-release`
when nothing applies): patches/<vX.Y>/ made from the newest series, patch by patch.

- a patch that applies to the new tree as it is stays shared: the new `series` lists it
  where it is (../common/..., ../v2.8/...);
- a drop-in replacement (0001, tools/export_center.py) whose upstream text changed is made
  anew: the whole-file hunk from this release's own text to the drop-in;
- a hand-made patch whose context moved is applied with one line of context (git apply
  -C1) in a scratch copy and regenerated with full context from the result: listed as
  carried, for review;
- a hunk even that cannot place is left as it was in the new folder and listed with where
  it fails: it needs a human (CONTRIBUTING.md, "Adding a PaddleOCR release").

Each patch is placed on the files as the earlier patches of the new series leave them,
as `git apply` of the whole series does. Nothing in the tree is touched: the work is done
in a scratch copy of the patched files."""

import os
import re
import shutil
import tempfile

from . import PATCHES_DIR, KitError, releases
from .patch_queue import PatchQueue, git_apply
from .patchfile import DROPIN, file_diffs, replacement_diff, sections, split_patch, targets

_TAGS = re.compile(r"^Tags: .*$", re.M)


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


class Carry:
    def __init__(self, tree, tag):
        self.tree, self.tag = tree, tag
        self.series = "v%d.%d" % releases.parse_version(tag)[:2]
        self.folder = os.path.join(PATCHES_DIR, self.series)
        self.source = releases.load_table()[-1].series
        self.notes, self.human = [], []  # (patch name, what was done), (patch name, where it fails)

    def _stage(self, scratch, patch):
        """Copy the patch's targets from the tree into the scratch copy, once each."""
        for path in targets(patch):
            src, dst = os.path.join(self.tree, path), os.path.join(scratch, path)
            if os.path.isfile(src) and not os.path.exists(dst):
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy2(src, dst)

    def run(self):
        """Write patches/<series>/ (its patches and `series`); [(name, note)] carried and
        [(name, where)] that need a human say what was done."""
        if os.path.exists(self.folder):
            raise KitError("%s exists but no series applies to %s; fix its patches (make check names the conflict) "
                           "or remove it, then rerun make add-release" % (self.folder, self.tag))
        scratch = tempfile.mkdtemp(prefix="ppocr-center-kit-carry-")
        made, entries = {}, []
        try:
            work = os.path.join(scratch, "tree")
            os.makedirs(work)
            for patch in PatchQueue(self.tree, self.source).patches:
                name = os.path.basename(patch)
                self._stage(work, patch)
                before = os.path.join(scratch, "before")
                shutil.rmtree(before, ignore_errors=True)
                shutil.copytree(work, before)
                if git_apply(self.tree, "--check", patch)[0] and git_apply(work, patch)[0]:
                    entries.append(os.path.relpath(patch, self.folder))
                    continue
                header, diff = split_patch(_read(patch))
                header = _TAGS.sub("Tags: %s (series %s, carried from series %s by make add-release)"
                                   % (self.tag, self.series, self.source), header, count=1)
                parts = sections(diff)
                replaced = [t for t, s in parts if t in DROPIN and "\nnew file mode " not in s.split("\n@@ ", 1)[0]]
                if replaced and len(replaced) == len(parts) and all(os.path.isfile(os.path.join(self.tree, t)) for t in replaced):
                    body = "".join(replacement_diff(t, _read(os.path.join(self.tree, t)), _read(DROPIN[t])) for t in replaced)
                    self.notes.append((name, "upstream's %s changed: its whole-file replacement made anew from %s's text"
                                       % (", ".join(replaced), self.tag)))
                    for t in replaced:
                        shutil.copy2(DROPIN[t], os.path.join(work, t))
                elif git_apply(work, "-C1", patch)[0]:
                    body = file_diffs(before, work, targets(patch))
                    self.notes.append((name, "its hunks placed with one line of context and regenerated: review them"))
                else:
                    body = diff
                    q = PatchQueue(self.tree, self.source)
                    q.patches = [patch]
                    detail = q.detect()[1]
                    self.human.append((name, "; ".join(detail) or "does not apply"))
                made[name] = header + body
                entries.append(name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        os.makedirs(self.folder)
        for name, text in made.items():
            with open(os.path.join(self.folder, name), "w", encoding="utf-8") as f:
                f.write(text)
        with open(os.path.join(self.folder, "series"), "w", encoding="utf-8") as f:
            f.write("# applied in this order (quilt series); paths are relative to this folder\n"
                    "# carried from series %s onto %s by make add-release\n" % (self.source, self.tag))
            f.write("".join(e + "\n" for e in entries))
        return self
