"""`make refresh PADDLEOCR=<clone>`: the series applied to a clone (`make apply`) and edited
there becomes the patches again, quilt refresh's way.

- a hand-made hunk's file (the hooks of 0003, 0002, 0006) edited in the clone: the last
  patch of the series that touches the file (quilt's top patch for it) is regenerated from
  what the earlier patches make of the original that `make apply` saved, to the clone's
  file, with three lines of context; a file the clone has as the series makes it keeps its
  patch text byte for byte, so a refresh without edits changes nothing;
- a drop-in file (tools/export_center.py, ppocr/utils/kit_export/, the loss) edited in the
  clone is copied back to dropin/, the one source, if dropin/ still holds what was applied
  (else the edit and the kit's newer copy would collide: refused); its patch is then
  regenerated from dropin/ as `make refresh` always does;
- the open run's manifest takes the refreshed files as the patched state, so `make revert`
  restores the originals without keeping the edits aside (they are in the patches now).
"""

import json
import os
import shutil
import tempfile

from . import KitError
from .files import sha256, write_atomic
from .patch_queue import MANIFEST, PatchQueue, git_apply, read_manifest, state_dir
from .patchfile import DROPIN, file_diffs, sections, split_patch, targets
from .tree import TreeLock, find_tree


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def _copy(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copy2(src, dst)


def refresh_from_tree(tree_arg, invoked_from):
    """[(path, what)] of the kit's files the clone's edits went into."""
    tree = find_tree(tree_arg, invoked_from)
    with TreeLock(tree):
        m = read_manifest(tree)
        if m is None or m.get("phase") != "applied":
            raise KitError("%s has no series applied by `make apply`; run `make apply PADDLEOCR=%s`, edit the patched "
                           "files there, then `make refresh PADDLEOCR=%s`" % (tree, tree, tree))
        q = PatchQueue(tree, m["series"])
        changed = _dropins_back(tree, m) + _hand_made(tree, q, m)
        for rel, entry in m["files"].items():  # the refreshed state is the patched state now
            if os.path.isfile(os.path.join(tree, rel)):
                entry["patched_sha256"] = sha256(os.path.join(tree, rel))
        write_atomic(os.path.join(state_dir(tree), MANIFEST), json.dumps(m, indent=1).encode())
    return changed


def _dropins_back(tree, m):
    out = []
    for rel, entry in m["files"].items():
        path = os.path.join(tree, rel)
        if rel not in DROPIN or not os.path.isfile(path) or sha256(path) == entry.get("patched_sha256"):
            continue
        if sha256(DROPIN[rel]) != entry.get("patched_sha256"):
            raise KitError("%s was edited in %s and the kit's dropin/%s changed since `make apply`; merge them by hand "
                           "into dropin/%s, then `make revert` and `make refresh`" % (rel, tree, rel, rel))
        shutil.copy2(path, DROPIN[rel])
        out.append((DROPIN[rel], "copied from %s" % path))
    return out


def _hand_made(tree, q, m):
    """Each patch, in series order, on a scratch copy of the saved originals: a file it is
    the last to touch and that the clone holds otherwise than the patch makes it gets its
    diff regenerated, from the scratch file before the patch to the clone's."""
    last = {}  # file -> the last patch of the series that touches it
    for patch in q.patches:
        for target in targets(patch):
            last[target] = patch
    out = []
    with tempfile.TemporaryDirectory(prefix="ppocr-center-kit-refresh-") as scratch:
        work, before = os.path.join(scratch, "work"), os.path.join(scratch, "before")
        os.makedirs(work)
        for rel, entry in m["files"].items():
            if entry["existed"]:
                _copy(entry["saved"], os.path.join(work, rel))
        for patch in q.patches:
            mine = [t for t in targets(patch) if t not in DROPIN and last[t] == patch]
            shutil.rmtree(before, ignore_errors=True)
            os.makedirs(before)
            for rel in mine:
                if os.path.isfile(os.path.join(work, rel)):
                    _copy(os.path.join(work, rel), os.path.join(before, rel))
            ok, message = git_apply(work, patch)
            if not ok:
                raise KitError("the series' %s does not apply to the originals `make apply` saved (%s); `make revert`, "
                               "then apply and edit again" % (os.path.basename(patch), message))
            edited = [rel for rel in mine if _read(os.path.join(work, rel)) != _read(os.path.join(tree, rel))]
            if not edited:
                continue
            header, diff = split_patch(_read(patch))
            text = header + "".join(file_diffs(before, tree, [target]) if target in edited else section
                                    for target, section in sections(diff))
            with open(patch, "w", encoding="utf-8") as f:
                f.write(text)
            out.append((patch, "regenerated from %s's %s" % (tree, ", ".join(edited))))
    return out
