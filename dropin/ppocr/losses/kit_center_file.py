# ppocr-center-kit: kit_center_file.py, added to PaddleOCR as ppocr/losses/kit_center_file.py
# by the kit's patch common/0004. Written for ppocr-center-kit (MIT); imports only numpy.
"""The centers pkl, read and checked without Paddle: the one definition of the format that
CenterLoss loads ({int class index >= 0: float32 ndarray (feat_dim,)}, one width; upstream's
own export_center.py writes numpy integer keys, the "stock format", which CenterLoss loads
as well). The kit's loss reads its centers with it in the clone, and the kit (make inspect,
validate, smoke, train's checks, centerkit.pkl_format) loads this file from dropin/: a
pkl is refused the same way everywhere, before hours of training, not during them.
"""

import io
import os
import pickle

import numpy as np


class CenterFileError(ValueError):
    """A centers pkl that cannot be used; the message is one line naming the fix."""


# What pickled numpy arrays need; anything else (paddle / torch tensors, arbitrary objects)
# is refused without being run, so a pkl of unknown origin can be inspected safely.
_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),  # protocol 5
    ("_codecs", "encode"),  # protocol 2 stores the array bytes as a latin-1 str
}


class _NumpyOnly(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise CenterFileError("holds a %s.%s, not numpy arrays" % (module, name))
        return super().find_class(module, name)


STOCK_FORMAT = "stock format (numpy integer keys, as upstream's export_center.py writes them)"


def load(path):
    """(centers with int keys, width, STOCK_FORMAT or "") of a pkl in CenterLoss's format,
    else CenterFileError naming the problem and the fix."""
    if not path or not os.path.isfile(path):
        raise CenterFileError("centers file %s does not exist; pass CENTERS=<train_center.pkl from make export>" % (path or "(none)"))
    with open(path, "rb") as f:
        data = f.read()
    try:
        centers = _NumpyOnly(io.BytesIO(data)).load()
    except CenterFileError as e:
        raise CenterFileError("%s %s; save {int class: float32 ndarray} (what `make export` writes)" % (path, e))
    except Exception as e:  # truncated, not a pickle at all, ...
        raise CenterFileError("%s is not a readable pickle (%s: %s); re-export it" % (path, type(e).__name__, e))
    width = check_format(centers, path)
    stock = any(type(k) is not int for k in centers)
    return {int(k): v for k, v in centers.items()}, width, STOCK_FORMAT if stock else ""


def check_format(centers, path):
    """The common feature width, or CenterFileError on the first entry that breaks the format.
    Keys are ints or numpy integers (the stock script's argmax indices): CenterLoss indexes
    its center matrix with either."""
    if not isinstance(centers, dict):
        raise CenterFileError("%s holds a %s, not a dict {class index: center}" % (path, type(centers).__name__))
    if not centers:
        raise CenterFileError("%s holds no centers; re-export it from a trained checkpoint" % path)
    width = None
    for key, value in centers.items():
        if type(key) is not int and not (isinstance(key, np.integer) and not isinstance(key, np.bool_)):
            # bool is an int subclass, numpy's bool_ is no integer: neither is a class index
            raise CenterFileError("%s: key %r is a %s, not an int class index" % (path, key, type(key).__name__))
        if key < 0:
            raise CenterFileError("%s: class index %d is negative" % (path, key))
        if not isinstance(value, np.ndarray) or value.dtype != np.float32 or value.ndim != 1:
            what = ("%s %s array" % (value.dtype, value.shape)) if isinstance(value, np.ndarray) else type(value).__name__
            raise CenterFileError("%s: center of class %d is a %s, not a float32 1-D array" % (path, key, what))
        if value.shape[0] == 0:
            raise CenterFileError("%s: center of class %d is empty (width 0); re-export it" % (path, key))
        if width is None:
            width = value.shape[0]
        if value.shape[0] != width:
            raise CenterFileError("%s: center of class %d has width %d, others %d; all centers need one width"
                           % (path, key, value.shape[0], width))
        if not np.isfinite(value).all():
            raise CenterFileError("%s: center of class %d holds NaN or inf; re-export it" % (path, key))
    return width


def classes_outside(centers, num_classes):
    """The classes of centers at or past num_classes (none when num_classes is not given):
    rows CenterLoss's num_classes-row center matrix does not have."""
    return [] if num_classes is None else sorted(k for k in centers if k >= num_classes)


def read_centers(path, num_classes=None, feat_dim=None):
    """(sorted class indices int64 [K], centers float64 [K, D]) of a centers pkl that fits a
    model of num_classes classes and feat_dim-wide CTC features, or CenterFileError."""
    centers, width, _ = load(path)
    bad = classes_outside(centers, num_classes)
    if bad:
        raise CenterFileError(
            "%s has class %d outside this config's dictionary [0, %d); export the centers with "
            "this config's character_dict_path (or fix Global.character_dict_path / use_space_char)"
            % (path, bad[0], num_classes))
    if feat_dim is not None and width != feat_dim:
        raise CenterFileError(
            "%s holds centers of width %d, but the chosen CTC head's features are %d wide; export "
            "them from this model (same MODEL=, same Head mid_channels)" % (path, width, feat_dim))
    keys = sorted(centers)
    return np.asarray(keys, np.int64), np.stack([centers[k] for k in keys]).astype(np.float64)
