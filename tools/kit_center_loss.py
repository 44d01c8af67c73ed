# ppocr-center-kit: kit_center_loss.py, added to PaddleOCR as ppocr/losses/kit_center_loss.py
# by the kit's patch 0003. Written for ppocr-center-kit (MIT); imports only paddle and numpy.
"""CenterLoss on the CTC branch of a plain CTC, a MultiHead or a Distillation model.

ppocr.losses.build_loss wraps a config's own loss in KitCenterLoss when the Loss section
has a `kit_center` entry (the kit's derived training config writes it; nothing else does):

    Loss:
      name: MultiLoss            # or CombinedLoss, CTCLoss: the config's own, unchanged
      loss_config_list: [...]
      kit_center: {center_file_path: train_center.pkl, weight: 0.05, num_classes: 6625,
                   feat_dim: 120, model_name_list: [Student]}   # [] for a single model

The wrapped loss gets exactly the predictions it gets upstream (the CTC features that the
kit's head switch adds travel under their own key, "ctc_feats", and are taken out again
before it sees them). The center loss has upstream CenterLoss's value, but gathers each
step's center instead of building a (B*T) x num_classes distance matrix: memory O(B*T*D),
cost independent of the dictionary size. Centers are fixed, loaded from the pkl that the
export writes ({int class: float32 (D,)}).
"""

import os
import pickle

import numpy as np
import paddle
import paddle.nn as nn

PREFIX = "ppocr-center-kit: "


class CenterFileError(ValueError):
    """A centers pkl that cannot be used; the message is one line naming the fix."""


def read_centers(path, num_classes=None, feat_dim=None):
    """(sorted class indices int64 [K], centers float64 [K, D]) of a CenterLoss pkl, or
    CenterFileError naming the fix. Used by the loss and, without Paddle, by the kit."""
    if not path or not os.path.isfile(path):
        raise CenterFileError("centers file %s does not exist; pass CENTERS=<train_center.pkl from make export>" % path)
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
    except Exception as e:  # pickle raises many kinds
        raise CenterFileError("%s is not a pickle (%s); pass the train_center.pkl that make export wrote" % (path, type(e).__name__))
    if not isinstance(data, dict) or not data:
        raise CenterFileError("%s is not in CenterLoss's format {int class: 1-D float array}; re-export it with make export" % path)
    keys, rows = [], []
    for key, value in data.items():
        if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)):
            raise CenterFileError("%s has key %r, not an int class index (CenterLoss's format); re-export it with make export" % (path, key))
        try:
            row = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            row = None
        if row is None or row.ndim != 1 or row.size == 0 or not np.isfinite(row).all():
            raise CenterFileError("%s: class %d is not a finite 1-D float array (CenterLoss's format); re-export it with make export" % (path, key))
        keys.append(int(key))
        rows.append(row)
    widths = sorted({len(r) for r in rows})
    if len(widths) != 1:
        raise CenterFileError("%s mixes center widths %s; re-export it with make export" % (path, widths))
    if num_classes is not None:
        bad = [k for k in keys if not 0 <= k < num_classes]
        if bad:
            raise CenterFileError(
                "%s has class %d outside this config's dictionary [0, %d); export the centers with "
                "this config's character_dict_path (or fix Global.character_dict_path / use_space_char)"
                % (path, bad[0], num_classes))
    if feat_dim is not None and widths[0] != feat_dim:
        raise CenterFileError(
            "%s holds centers of width %d, but the chosen CTC head's features are %d wide; export "
            "them from this model (same MODEL=, same Head mid_channels)" % (path, widths[0], feat_dim))
    order = np.argsort(keys)
    return np.asarray(keys, np.int64)[order], np.stack(rows)[order]


def center_loss_value(features, logits, row_of_class, centers, num_classes):
    """Upstream CenterLoss's value on (features [..., D], logits [..., C]), gathered.

    Upstream: sum(clip(distmat * onehot(argmax), 1e-12, 1e12)) / (B*T), where every masked
    zero is clipped up to 1e-12: per row clip(d) + (C-1)*1e-12. Steps whose class has no
    center (row_of_class = -1; upstream would use a random one) add nothing.
    """
    feats = paddle.reshape(features, [-1, features.shape[-1]]).astype("float64")
    label = paddle.reshape(paddle.argmax(logits, axis=-1), [-1])
    rows = paddle.gather(row_of_class, label)
    valid = (rows >= 0).astype("float64")
    picked = paddle.gather(centers, paddle.maximum(rows, paddle.zeros_like(rows)))
    dist = paddle.sum(paddle.square(feats - picked), axis=1)
    dist = paddle.clip(dist, min=1e-12, max=1e12) * valid
    return paddle.sum(dist) / feats.shape[0] + (num_classes - 1) * 1e-12


class KitCenterLoss(nn.Layer):
    def __init__(self, base, center_file_path=None, weight=0.05, num_classes=None, feat_dim=None,
                 model_name_list=None, **kwargs):
        super().__init__()
        if kwargs:
            raise CenterFileError(PREFIX + "unknown Loss.kit_center keys %s; derive the config with make train-config" % sorted(kwargs))
        if num_classes is None:
            raise CenterFileError(PREFIX + "Loss.kit_center has no num_classes; derive the config with make train-config")
        self.base = base
        self.weight = float(weight)
        self.num_classes = int(num_classes)
        self.model_name_list = list(model_name_list or [])
        try:
            classes, centers = read_centers(center_file_path, self.num_classes, feat_dim)
        except CenterFileError as e:
            raise CenterFileError(PREFIX + str(e)) from None
        self.feat_dim = centers.shape[1]
        row_of_class = np.full(self.num_classes, -1, np.int64)
        row_of_class[classes] = np.arange(len(classes))
        self.row_of_class = paddle.to_tensor(row_of_class)
        self.centers = paddle.to_tensor(centers)  # fixed, float64 as upstream
        self.row_of_class.stop_gradient = True
        self.centers.stop_gradient = True

    # -- where the CTC features are -----------------------------------------------------
    def _ctc(self, out, where):
        """(features, logits, what the wrapped loss gets) of one model's head output."""
        if isinstance(out, dict):  # MultiHead: head_out with the kit's "ctc_feats"
            if "ctc_feats" not in out:
                raise CenterFileError(PREFIX + "%s has no CTC features (ctc_feats); derive the config with make train-config, and apply the kit's patches" % where)
            logits = out["ctc"]
            if isinstance(logits, (list, tuple)):
                logits = logits[-1]
            return out["ctc_feats"], logits, {k: v for k, v in out.items() if k != "ctc_feats"}
        if isinstance(out, (list, tuple)) and len(out) == 2:  # CTCHead(return_feats=True)
            return out[0], out[1], out
        raise CenterFileError(PREFIX + "%s is not a CTC head's (features, logits); set the CTC head's return_feats (make train-config does)" % where)

    def split(self, predicts):
        """(predictions for the wrapped loss, [(model name, features, logits)])."""
        if not self.model_name_list:
            feats, logits, base = self._ctc(predicts, "the model's output")
            return base, [("", feats, logits)]
        if not isinstance(predicts, dict):
            raise CenterFileError(PREFIX + "Loss.kit_center names sub-models %s but the model is not a Distillation model; drop MODEL=" % self.model_name_list)
        base, picks = dict(predicts), []
        for name in self.model_name_list:
            if name not in predicts:
                raise CenterFileError(PREFIX + "sub-model %s is not in the predictions (%s); pass MODEL= one of them" % (name, ", ".join(predicts)))
            sub = predicts[name]
            head = sub["head_out"] if isinstance(sub, dict) and "head_out" in sub else sub
            feats, logits, stripped = self._ctc(head, "sub-model %s" % name)
            if stripped is not head:
                base[name] = dict(sub, head_out=stripped)
            picks.append((name, feats, logits))
        return base, picks

    def center_loss(self, features, logits):
        if features.shape[-1] != self.feat_dim:
            raise CenterFileError(PREFIX + "the centers are %d wide but the CTC features %d; export the centers from this model (same MODEL=, same Head mid_channels)" % (self.feat_dim, features.shape[-1]))
        if logits.shape[-1] != self.num_classes:
            raise CenterFileError(PREFIX + "the CTC head has %d classes but Loss.kit_center.num_classes is %d; derive the config again with make train-config" % (logits.shape[-1], self.num_classes))
        return center_loss_value(features, logits, self.row_of_class, self.centers, self.num_classes)

    def forward(self, predicts, batch, **kwargs):
        base_predicts, picks = self.split(predicts)
        out = dict(self.base(base_predicts, batch, **kwargs))
        total = 0.0
        for name, feats, logits in picks:
            value = self.center_loss(feats, logits)
            out["loss_center_" + name if name else "loss_center"] = value
            total = total + value
        out["loss"] = out["loss"] + self.weight * total.astype(out["loss"].dtype)
        return out


def wrap(base, kit_center):
    """What build_loss returns when the Loss section has a kit_center entry."""
    return KitCenterLoss(base, **dict(kit_center))
