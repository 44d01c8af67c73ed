"""Check a centers pkl against the CenterLoss of a training config, then load it with the
PaddleOCR tree's own CenterLoss class (`make validate CENTERS=... CONFIG=... [PADDLEOCR=...]`).

Prints one verdict line: `ok: ...` (exit 0) or `ppocr-center-kit: error: ...` (exit 2).
What CenterLoss would only hit at training time is caught here: a width other than
feat_dim, classes at or past num_classes, and a num_classes that is not the size of the
CTC head (dictionary + blank, + space with use_space_char). Runs with the Python that
trains (PYTHON=, it needs paddle and PaddleOCR's requirements). Run by the Makefile,
which puts the kit's scripts/ on PYTHONPATH.
"""

import argparse
import inspect
import os
import sys

import numpy as np

from centerkit import KitError, run_tool
from centerkit import pkl_format as pkl
from centerkit.dropins import kit_export
from centerkit import preflight
from centerkit.preflight import resolve_config
from centerkit.tree import find_tree

PARAMS = ("num_classes", "feat_dim", "center_file_path")


def center_losses(node, where="Loss"):
    """[(where, params)] of every CenterLoss in a Loss section: `Loss.name: CenterLoss`, an
    item of a loss_config_list (CombinedLoss, MultiLoss), or any loss named *CenterLoss
    nested deeper (a distillation wrapper); each takes CenterLoss's own parameters."""
    found = []
    if isinstance(node, dict):
        name = node.get("name")
        if isinstance(name, str) and name.endswith("CenterLoss"):
            return [("%s (name: %s)" % (where, name), node)]
        for key, value in node.items():
            if isinstance(key, str) and key.endswith("CenterLoss") and isinstance(value, (dict, type(None))):
                found.append(("%s.%s" % (where, key), value or {}))
            elif isinstance(value, (dict, list)):
                found += center_losses(value, "%s.%s" % (where, key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += center_losses(item, "%s[%d]" % (where, i))
    return found


def width_error(width, where, feat_dim):
    """Why centers this wide do not fit feat_dim, or None (also when feat_dim is not given)."""
    if feat_dim is not None and width != feat_dim:
        return ("the centers are %d wide but %s has feat_dim %s: export them from the model this config "
                "trains (the CTC head's mid_channels), or fix feat_dim" % (width, where, feat_dim))
    return None


def range_error(centers, where, num_classes):
    """Why these classes do not fit num_classes, or None (also when it is not given)."""
    beyond = pkl.center_file.classes_outside(centers, num_classes)
    if beyond:
        return ("the pkl has centers of classes past num_classes %s of %s (%d, largest %d): num_classes must "
                "be the CTC head's size, dictionary + blank (+ space with use_space_char), and the pkl must "
                "come from this config's dictionary" % (num_classes, where, len(beyond), beyond[-1]))
    return None


def check_types(where, params):
    for key in ("num_classes", "feat_dim"):
        value = params.get(key)
        if value is not None and (type(value) is not int or value <= 0):
            raise KitError("%s of %s is %r, not a positive integer; fix the config" % (key, where, value))


def ctc_classes(config, tree):
    """(number of CTC classes, how they add up) from the tree's own CTCLabelDecode, built
    from Global as the export builds it."""
    g = dict(config.get("Global") or {})
    dict_path = g.get("character_dict_path")
    if dict_path and not os.path.isabs(dict_path):
        g["character_dict_path"] = os.path.join(tree, dict_path)
    if dict_path and not os.path.isfile(g["character_dict_path"]):
        raise KitError("dictionary %s does not exist; fix Global.character_dict_path" % dict_path)
    try:
        n = len(kit_export.model.ctc_decoder(g).character)
    except Exception as e:  # e.g. a dictionary that is not UTF-8
        raise KitError("CTCLabelDecode cannot read dictionary %s (%s: %s)" % (dict_path, type(e).__name__, first_line(e)))
    space = bool(dict_path and g.get("use_space_char"))
    chars = "%d characters of %s" % (n - 1 - space, dict_path) if dict_path else "%d default characters" % (n - 1)
    return n, "%s + 1 blank%s" % (chars, " + 1 space (use_space_char: true)" if space else
                                  " (use_space_char: %s)" % str(bool(g.get("use_space_char"))).lower())


def import_center_loss(tree):
    """The CenterLoss class of the tree (not of an installed paddleocr package)."""
    sys.path.insert(0, tree)
    sys.dont_write_bytecode = True  # no __pycache__ left in the clone
    try:
        from ppocr.losses import center_loss
    except Exception as e:  # no paddle, or a requirement of the tree missing
        raise KitError(
            "%s cannot import ppocr.losses from %s (%s: %s); pass PYTHON=<the Python you train with>"
            % (sys.executable, tree, type(e).__name__, first_line(e))
        )
    if not os.path.realpath(center_loss.__file__).startswith(os.path.realpath(tree) + os.sep):
        raise KitError("ppocr was imported from %s, not from %s" % (center_loss.__file__, tree))
    return center_loss.CenterLoss


def load_with(cls, centers, path, params, where):
    """Build the tree's CenterLoss on the pkl and check it holds the pkl's centers."""
    try:
        loss = cls(num_classes=params["num_classes"], feat_dim=params["feat_dim"], center_file_path=path)
        loaded = np.asarray(loss.centers.numpy())
    except Exception as e:
        raise KitError("CenterLoss of %s cannot load %s (%s: %s)" % (where, path, type(e).__name__, first_line(e)))
    keys = sorted(centers)
    want = np.stack([centers[k] for k in keys]).astype(np.float64)
    if loaded.shape != (params["num_classes"], params["feat_dim"]) or not np.allclose(loaded[keys], want, rtol=1e-6):
        raise KitError("CenterLoss of %s did not take the pkl's centers as they are (loaded %s)" % (where, loaded.shape))


def center_file_note(path, given, tree):
    """What the config's center_file_path means for this pkl (not an error: -o can set it)."""
    if not given:
        return "; note: center_file_path is empty, so training starts from random centers: set it to %s" % path
    resolved = given if os.path.isabs(given) else os.path.join(tree, given)
    if not os.path.exists(resolved) or not os.path.samefile(resolved, path):
        return "; note: center_file_path is %s, not this pkl" % given
    return ""


def first_line(error):
    return (str(error).splitlines() or [""])[0]


def fail(message):
    if message:
        raise KitError(message)


def validate(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--centers", default="")
    p.add_argument("--config", default="")
    p.add_argument("--tree", default="", help="PaddleOCR tree (default: the clone around the current folder)")
    a = p.parse_args(argv)
    cwd = os.getcwd()
    preflight.centers_path(a.centers, cwd)  # given, and a file: as every command checks CENTERS=
    centers, width, stock = pkl.load(a.centers)
    tree = find_tree(a.tree, cwd)
    config_path = resolve_config(tree, a.config, cwd)
    config = kit_export.config.load_config(config_path)
    entries = center_losses(config.get("Loss"))
    if not entries:
        raise KitError(
            "%s has no CenterLoss in its Loss section (Loss.name: %s); pass the config you train with "
            "CenterLoss (as configs/rec/ch_PP-OCRv2/ch_PP-OCRv2_rec_enhanced_ctc_loss.yml)"
            % (config_path, (config.get("Loss") or {}).get("name"))
        )
    for where, given in entries:  # what the config states, before paddle takes seconds to import
        check_types(where, given)
        fail(width_error(width, where, given.get("feat_dim")))
    # A class past num_classes is reported after the tree's dictionary is read when it can be:
    # often num_classes is the literal that is wrong (6625 = 6623 characters + blank + space).
    pending = next(filter(None, (range_error(centers, w, g.get("num_classes")) for w, g in entries)), None)
    try:
        cls = import_center_loss(tree)
    except KitError:
        fail(pending)
        raise
    defaults = {k: v.default for k, v in inspect.signature(cls.__init__).parameters.items() if k in PARAMS}
    n, why = ctc_classes(config, tree)
    path = os.path.abspath(a.centers)
    notes = []
    for where, given in entries:
        params = dict(defaults, **{k: v for k, v in given.items() if k in PARAMS and v is not None})
        fail(width_error(width, where, params["feat_dim"]))
        if params["num_classes"] != n:
            fail("num_classes is %s in %s%s, but the CTC head has %d classes: %s; set num_classes: %d"
                 % (params["num_classes"], where, "" if "num_classes" in given else " (CenterLoss's default)", n, why, n))
        fail(range_error(centers, where, params["num_classes"]))
        load_with(cls, centers, path, params, where)
        notes.append(center_file_note(path, given.get("center_file_path"), tree))
    print("ok: %s fits %s: %d of %d classes have a center, width %d%s; loaded by %s%s"
          % (a.centers, ", ".join(w for w, _ in entries), len(centers), n, width, ", " + stock if stock else "",
             inspect.getsourcefile(cls), "".join(sorted(set(notes)))))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(validate, sys.argv[1:]))
