"""The derived training config of `make train` / `make train-config`: the user's config (never
edited) plus what training with the exported centers needs, written as a new YAML.

- Loss: the config's own loss section stays as it is (tools/train.py reads its
  loss_config_list to size the heads, tools/program.py its name to decode MultiLoss
  predictions), and gets a `kit_center` entry, which the patched ppocr.losses.build_loss
  turns into KitCenterLoss around that loss. An upstream CenterLoss entry of a CombinedLoss
  (PP-OCRv2 enhanced CTC) is replaced by it, keeping its weight unless CENTER_WEIGHT= is given.
- Head: a MultiHead's CTCHead gets the patch's `kit_center_feats` switch (features under
  head_out["ctc_feats"], the other losses see upstream's outputs); a plain CTCHead gets
  upstream's own `return_feats` (the (features, logits) tuple CTCLoss already accepts).
  Only the chosen model(s): a Distillation Teacher is left alone.
- Global: pretrained_model = CHECKPOINT (and the sub-models' own `pretrained` dropped, as
  the export does); use_gpu false when Paddle has no CUDA (program.py of v3.x crashes).

`python -m centerkit.train_config probe <config.json> <centers.pkl> <kit_center_loss.py>`
runs in the clone with its Python: it builds the chosen model(s) as tools/train.py would,
reads the CTC head's last FC (feature width, classes) and checks the pkl against them.
"""

import copy
import json
import os
import sys

import numpy as np
import yaml

from . import KitError, export_errors, files
from .dropins import kit_export

DERIVED_NAME = "centerkit_train.yml"
DEFAULT_WEIGHT = 0.05  # upstream's enhanced CTC config


def chosen_models(config, model):
    """[sub-model names] the center loss applies to ([] for a single model)."""
    with export_errors():
        return kit_export.config.chosen_sub_models(config, model)


def model_archs(config, chosen):
    arch = config["Architecture"]
    return [arch["Models"][m] for m in chosen] if chosen else [arch]


def check(config, chosen):
    """KitError unless every chosen model is a rec model with a CTC head."""
    with export_errors():
        kit_export.config.check_rec_config(config, ("Global", "PostProcess", "Train", "Loss"))
        for arch in model_archs(config, chosen):
            kit_export.config.require_ctc_head(arch)


def ctc_head_args(arch):
    """The arguments dict of the CTCHead of an architecture being derived (MultiHead keeps
    them under its CTCHead entry's Head), made a dict where the YAML left it empty."""
    head = arch["Head"]
    if head["name"] == "CTCHead":
        return head
    entry = next(e for e in head["head_list"] if "CTCHead" in e)
    ctc = entry["CTCHead"] = entry["CTCHead"] or {}
    ctc["Head"] = ctc.get("Head") or {}
    return ctc["Head"]


def _center_loss_entries(loss):
    return [i for i, d in enumerate(loss.get("loss_config_list") or []) if isinstance(d, dict) and "CenterLoss" in d]


def derive(config, centers, weight, chosen, num_classes, width, cuda, checkpoint=None, inference=None):
    """The training config (a new dict) that trains `chosen` with the centers; inference:
    the probe's account of an inference model converted to the checkpoint `checkpoint`."""
    config = copy.deepcopy(config)
    config.pop("Export", None)
    loss = config["Loss"]
    if "kit_center" in loss:
        raise KitError("the config's Loss already has a kit_center entry (a derived config?); pass the original config")
    upstream_center = _center_loss_entries(loss)
    if weight in (None, ""):
        weights = [(loss["loss_config_list"][i]["CenterLoss"] or {}).get("weight") for i in upstream_center]
        weight = next((w for w in weights if w is not None), DEFAULT_WEIGHT)
    for i in reversed(upstream_center):  # the kit's loss takes its place
        del loss["loss_config_list"][i]
    loss["kit_center"] = {"center_file_path": centers, "weight": float(weight), "num_classes": int(num_classes),
                          "feat_dim": int(width), "model_name_list": list(chosen)}
    for arch in model_archs(config, chosen):
        head = ctc_head_args(arch)
        if arch["Head"]["name"] == "MultiHead":
            head["kit_center_feats"] = True
        else:
            head["return_feats"] = True
    g = config["Global"]
    if checkpoint:
        g["pretrained_model"] = checkpoint
        g.pop("checkpoints", None)
        for sub in (config["Architecture"].get("Models") or {}).values():
            sub.pop("pretrained", None)
    if not cuda:
        g["use_gpu"] = False
    if inference:
        from_inference_model(config, inference)
    return config


def from_inference_model(config, inference):
    """Train what an inference model holds, in the form it was saved in: the model
    re-parameterised where it is (patch common/0006), a MultiHead's CTC branch alone (patch
    0003: a random NRTR/SAR head's loss would flow into the pretrained backbone) with the
    CTC loss alone (kit_center's ctc_only; inference_note says so)."""
    arch = config["Architecture"]
    if inference["form"] == "re-parameterised":
        arch["kit_reparameterized"] = True
    if arch["Head"]["name"] == "MultiHead":  # train.py sizes the heads from the loss list: it stays
        arch["Head"]["kit_ctc_only"] = True
        config["Loss"]["kit_center"]["ctc_only"] = True


def inference_note(derived, inference):
    """What the derived config trains, from an inference model, in a line."""
    arch = derived["Architecture"]
    lacks = ", ".join("%s (%d)" % kv for kv in sorted(inference["not_in_weights"].items()))
    return "weights: an inference model (%d tensors), %s; trained: %s%s" % (
        inference["tensors"], inference["form"],
        "its CTC branch alone" if arch["Head"].get("kit_ctc_only") else "the model",
        "; not in it, and not trained: " + lacks if lacks else "")


def derived_path(tree, config):
    save_dir = config["Global"].get("save_model_dir") or "./output/rec/"
    return os.path.join(tree, save_dir, DERIVED_NAME)  # an absolute save_dir replaces tree


def converted_path(tree, config):
    """Where make train puts an inference model's weights as a checkpoint (no .pdparams)."""
    return os.path.join(os.path.dirname(derived_path(tree, config)), "centerkit_init")


def write(config, path, note=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    text = "# written by ppocr-center-kit (make train-config): the training config with CenterLoss\n" + \
        ("# %s\n" % note if note else "") + \
        yaml.safe_dump(config, sort_keys=False, allow_unicode=True, default_flow_style=None)
    files.write_atomic(path, text.encode("utf-8"))


# ---------------------------------------------------------------------------------------
# In the clone, with its Python
# ---------------------------------------------------------------------------------------
def probe(config, chosen, centers, inference=None, converted=None):
    """{"num_classes", "width", "cuda"} of the chosen model(s), or {"error": one line}. With
    an inference model: its tensors placed in the config's model (as trained, else
    re-parameterised) and saved as a checkpoint at `converted` (.pdparams added), and
    "weights": how (form, tensors, what the inference model lacks and the forward never reads)."""
    sys.path.insert(0, os.getcwd())
    import paddle
    from ppocr.modeling.architectures.base_model import BaseModel

    paddle.set_device("cpu")
    kit_export.config.set_head_channels(config, kit_export.model.post_process_classes(config))
    result = {}
    if inference:
        result["weights"] = convert_inference_model(config, inference, converted)
        if "error" in result["weights"]:
            return result["weights"]
    found = set()
    for arch in model_archs(config, chosen):
        arch = copy.deepcopy(arch)
        for key in ("pretrained", "freeze_params", "return_all_feats"):
            arch.pop(key, None)
        model = BaseModel(arch)
        fc = kit_export.model.ctc_last_fc(kit_export.model.ctc_heads(model)[0])
        found.add((int(fc.weight.shape[0]), int(fc.weight.shape[1])))
    if len(found) != 1:
        return {"error": "the chosen models %s have CTC features of different widths/classes %s; train with one MODEL= at a time" % (chosen, sorted(found))}
    (width, classes), = found
    from .dropins import center_file  # what the loss reads the pkl with, in the clone too

    try:
        center_file.read_centers(centers, classes, width)
    except center_file.CenterFileError as e:
        return {"error": str(e)}
    return dict(result, num_classes=classes, width=width, cuda=bool(paddle.is_compiled_with_cuda()),
                characters_sha256=kit_export.report.characters_digest(list(kit_export.model.ctc_decoder(config["Global"]).character)))


def convert_inference_model(config, path, converted):
    """The inference model's tensors, placed in the config's (single) model as the export
    places them, saved as a checkpoint of the form train.py will build (kit_reparameterized,
    a MultiHead's kit_ctc_only): {"form", "tensors", "not_in_weights"} or {"error"}."""
    import paddle
    from ppocr.modeling.architectures.base_model import BaseModel

    kim = kit_export.inference_model

    shape = kit_export.model.config_image_shape(config)
    if shape is None:
        return {"error": "the config's Eval and Train transforms name no image_shape of a resize, so the model's "
                         "input is unknown; pass a config with RecResizeImg (or another *Resize* with image_shape)"}
    arch = copy.deepcopy(config["Architecture"])
    for key in ("pretrained", "freeze_params", "return_all_feats"):
        arch.pop(key, None)
    try:
        model_files = kim.InferenceModel(kim.inference_prefix(path))
    except kim.InferenceModelError as e:
        return {"error": str(e)}
    named, by_variable = model_files.named()
    with paddle.utils.unique_name.guard():  # the names export_model.py gave, as the export builds them
        model = BaseModel(arch)
        placed, form = kim.place(model, model, named, lambda net: kit_export.model.read_parameters(net, shape), by_variable=by_variable)
    if not placed.complete():
        return {"error": placed.problem("inference model %s" % model_files.prefix, form, by_variable)}
    paddle.save({k: paddle.to_tensor(np.ascontiguousarray(t)) for k, t in placed.state.items()}, converted + ".pdparams")
    return {"form": form, "tensors": len(placed.state), "not_in_weights": kim.parts_of(placed.absent)}


if __name__ == "__main__" and sys.argv[1:2] == ["probe"]:
    with open(sys.argv[2], encoding="utf-8") as f:
        given = json.load(f)
    print(json.dumps(probe(given["config"], given["chosen"], given["centers"], given.get("inference"),
                           given.get("converted"))))
