# ppocr-center-kit: kit_center_loss.py, added to PaddleOCR as ppocr/losses/kit_center_loss.py
# by the kit's patch common/0004. Written for ppocr-center-kit (MIT); imports only paddle, numpy and kit_center_file.
"""CenterLoss on the CTC branch of a plain CTC, a MultiHead or a Distillation model.

ppocr.losses.build_loss wraps a config's own loss in KitCenterLoss when the Loss section
has a `kit_center` entry (the kit's derived training config writes it; nothing else does):

    Loss:
      name: MultiLoss            # or CombinedLoss, CTCLoss: the config's own, unchanged
      loss_config_list: [...]
      kit_center: {center_file_path: train_center.pkl, weight: 0.05, num_classes: 6625,
                   feat_dim: 120, model_name_list: [Student]}   # [] for a single model
                   # ctc_only: true with a MultiHead's kit_ctc_only (training an inference model)

The wrapped loss gets exactly the predictions it gets upstream (the CTC features that the
kit's head switch adds travel under their own key, "ctc_feats", and are taken out again
before it sees them). The center loss has upstream CenterLoss's value, but gathers each
step's center instead of building a (B*T) x num_classes distance matrix: memory O(B*T*D),
cost independent of the dictionary size. Centers are fixed, loaded from the pkl that the
export writes ({int class: float32 (D,)}).
"""

import os

import numpy as np
import paddle
import paddle.nn as nn

PREFIX = "ppocr-center-kit: "


try:  # in the clone, beside this file (common/0004 adds it)
    from .kit_center_file import CenterFileError, read_centers
except ImportError:  # loaded by its path (the kit's probe and tests): the file beside it
    import importlib.util

    _spec = importlib.util.spec_from_file_location(
        "kit_center_file", os.path.join(os.path.dirname(os.path.abspath(__file__)), "kit_center_file.py"))
    _file = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_file)
    CenterFileError, read_centers = _file.CenterFileError, _file.read_centers


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
                 model_name_list=None, ctc_only=False, **kwargs):
        super().__init__()
        if ctc_only:  # a MultiHead trained on its CTC branch alone (its kit_ctc_only): MultiLoss's CTC loss alone
            base.loss_funcs = {k: v for k, v in base.loss_funcs.items() if k == "CTCLoss"}
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
