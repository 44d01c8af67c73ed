# ppocr-center-kit: model.py, added to PaddleOCR as ppocr/utils/kit_export/model.py by the kit's
# patch common/0005. Written for ppocr-center-kit (MIT); it imports PaddleOCR at run time and copies none of it.
"""The model the export runs: built from the config in a fresh name scope, weights loaded
(a checkpoint strictly, or an inference model's tensors placed: inference_model.py), its
CTC heads returning features, in eval or train mode.
"""

import os

import numpy as np

from .center_math import CenterAccumulator, csr_kernel
from .config import EVAL_FEATS_SWITCH, checkpoint_prefix, weights_warning
from .errors import ExportError


def ctc_heads(net):
    """The CTCHead layers of a built (sub-)model, outermost first."""
    return [layer for layer in net.sublayers(include_self=True) if type(layer).__name__ == "CTCHead"]


def ctc_last_fc(head):
    """The CTCHead's last Linear layer: its input is what the centers average."""
    return head.fc2 if head.mid_channels is not None else head.fc


def post_process_classes(config):
    """len(character) of the config's PostProcess: what train.py sizes the heads from."""
    from ppocr.postprocess import build_post_process

    return len(build_post_process(dict(config["PostProcess"]), config["Global"]).character)


def ctc_decoder(global_config):
    """CTCLabelDecode built from Global alone: the CTC branch is decoded on its own, whatever
    the config's (Distillation, SAR, NRTR) PostProcess."""
    from ppocr.postprocess import build_post_process

    return build_post_process({"name": "CTCLabelDecode"}, dict(global_config))


def head_outputs(out):
    """(features, probabilities) from a (sub-)model's eval output."""
    if isinstance(out, dict):  # return_all_feats models wrap the head output
        out = out.get("head_out", out.get("ctc"))
    if isinstance(out, (tuple, list)) and len(out) == 2:
        return out
    raise ExportError(
        "the CTC head did not return features in eval mode: this tree's "
        "ppocr/modeling/heads/rec_ctc_head.py lacks the kit's patch; run it through `make export`"
    )


def load_weights(model, net, weights, sample_shape):
    """Load a training checkpoint into the model (a sub-model's `pretrained` into net, the
    exported sub-model) or an inference model into net, refusing weights that do not fit
    (ExportError); returns what the report says of how. Upstream load_model only warns on
    missing keys and goes on with random weights, which recognises nothing and used to end
    in an empty pkl."""
    from . import inference_model as kim

    try:
        if kim.weights_kind(weights.path, weights.source) == "checkpoint":
            # a sub-model's `pretrained` holds that sub-model's parameters, a checkpoint the whole model's
            target = net if weights.source.startswith("Architecture.") else model
            return load_checkpoint(model, target, checkpoint_prefix(weights.path), sample_shape)
        inference = kim.InferenceModel(kim.inference_prefix(weights.path))  # one (sub-)model's
    except kim.InferenceModelError as e:
        raise ExportError(str(e)) from None
    named, by_variable = inference.named()
    placed, form = kim.place(model, net, named, lambda layer: read_parameters(layer, sample_shape()),
                             by_variable=by_variable)
    if not placed.complete():
        raise ExportError(placed.problem("inference model %s" % inference.prefix, form, by_variable))
    return dict(set_placed(net, placed, form), kind="inference model", program=os.path.basename(inference.program),
                names=".pdiparams.info" if not by_variable else "program")


def load_checkpoint(model, target, base, sample_shape):
    """Every parameter of target from the checkpoint, with its shape; else (a checkpoint the
    kit fine-tuned from an inference model: re-parameterised, a MultiHead's CTC branch alone)
    every tensor of it placed and every parameter target's forward reads weighted, as built
    or re-parameterised. One paddle.load: a large checkpoint is in memory once."""
    import paddle

    params = paddle.load(base + ".pdparams")
    state = target.state_dict()
    bad = [k for k, v in state.items() if k not in params or list(params[k].shape) != list(v.shape)]
    if not bad:
        # as upstream load_model: a float16 checkpoint is cast to the model's dtype
        target.set_state_dict({k: params[k] if params[k].dtype == v.dtype else params[k].astype(v.dtype)
                               for k, v in state.items()})
        return {"kind": "checkpoint"}
    from . import inference_model as kim

    # every tensor placed: in releases whose rep() keeps the merged branches, such a checkpoint
    # also holds them, untrained, and would fit the training layout
    placed, form = kim.place(model, target, params, lambda layer: read_parameters(layer, sample_shape()))
    if placed.state and placed.complete():
        return dict(set_placed(target, placed, form), kind="checkpoint")
    raise ExportError(
        "checkpoint %s does not fit this config (%d of %d parameters missing or of another "
        "shape, e.g. %s); pass the checkpoint trained with this config" % (base, len(bad), len(state), bad[0]))


def set_placed(net, placed, form):
    """Set the placed tensors (cast to the model's dtypes); the report's account of them.
    What no inference model holds (a MultiHead's NRTR/SAR head, which inference never runs)
    is named: absent and not read."""
    import paddle
    from . import inference_model as kim

    state = net.state_dict()
    net.set_state_dict({k: paddle.to_tensor(np.ascontiguousarray(np.asarray(t))).astype(state[k].dtype)
                        for k, t in placed.state.items()})
    return {"form": form, "tensors": len(placed.state), "renamed": placed.renamed,
            "not_in_weights": kim.parts_of(placed.absent)}


def read_parameters(net, sample_shape):
    """The state_dict keys the eval forward of net reads: those of the layers that run on
    one blank image of the data's shape (a MultiHead runs its CTC branch alone; a
    re-parameterised layer, its merged conv)."""
    import paddle

    ran = set()
    hooks = [layer.register_forward_post_hook(lambda layer, inputs, outputs: ran.add(id(layer)))
             for layer in net.sublayers(include_self=True)]
    training = net.training
    net.eval()
    try:
        with paddle.no_grad():
            net(paddle.zeros([1] + list(sample_shape), dtype="float32"))
    finally:
        for hook in hooks:
            hook.remove()
        if training:
            net.train()
    keys = set()
    for prefix, layer in net.named_sublayers(include_self=True):
        if id(layer) in ran:
            keys.update((prefix + "." if prefix else "") + name for name in (*layer._parameters, *layer._buffers))
    return keys & set(net.state_dict())


def build_exported_model(config, name, weights, logger, data):
    """(the exported (sub-)model in Export.mode with its CTC heads returning features, an
    empty CenterAccumulator as wide as the input of its CTC head's last FC, the report's
    account of the weights: load_weights')."""
    import paddle
    from ppocr.modeling.architectures import build_model

    # a fresh name scope: the variable names upstream's export_model.py gave the layers,
    # which place an inference model's tensors where it has no .pdiparams.info
    with paddle.utils.unique_name.guard():
        model = build_model(config["Architecture"])
        net = model.model_list[0] if name is not None else model
        loaded = load_weights(model, net, weights, lambda: sample_shape(data))
    logger.info("weights: %s (%s)", weights.path, weights.source)
    if weights_warning(weights):
        logger.warning(weights_warning(weights))
    heads = ctc_heads(net)
    if not heads:
        raise ExportError("the model has no CTCHead; export centers from a CTC recognition config")
    set_mode(net, heads, config["Export"]["mode"])
    logger.info("mode: %s", config["Export"]["mode"])
    last_fc = ctc_last_fc(heads[0])
    if csr_kernel() is None:
        logger.warning("scipy is missing: centers are summed with numpy's add.at, ~30x slower (pip install scipy)")
    return net, CenterAccumulator(last_fc.weight.shape[1], last_fc.weight.shape[0]), loaded  # weight: [in, out]


def sample_shape(data):
    """[C, H, W] of the data's first image as the pipeline makes it."""
    dataset = data.loader.dataset
    if len(dataset) == 0:
        raise ExportError("the data set is empty; check its data_dir and label_file_list")
    return list(dataset[0][0].shape)


def config_image_shape(config):
    """[C, H, W] that the config's Eval (else Train) pipeline resizes images to: the
    image_shape of its first *Resize* transform; None if it names none."""
    for section in ("Eval", "Train"):
        for op in ((config.get(section) or {}).get("dataset") or {}).get("transforms") or []:
            name, args = next(iter(op.items())) if isinstance(op, dict) and op else (None, None)
            if "Resize" in str(name) and isinstance(args, dict) and args.get("image_shape"):
                return list(args["image_shape"])
    return None


def set_mode(net, heads, mode):
    """eval: every layer in eval mode, the CTC heads returning their features (the kit's
    patch). train: what the stock script runs, every layer in train mode (BatchNorm on
    batch statistics, dropout on), the CTC heads' own return_feats (features, logits);
    a MultiHead alone is kept out of train mode, so it returns its CTC branch only and
    never runs the NRTR/SAR head (which needs labels), while its CTC layers train."""
    if mode == "eval":
        for head in heads:
            setattr(head, EVAL_FEATS_SWITCH, True)
        net.eval()
        return
    net.train()
    for head in heads:
        head.return_feats = True
    for layer in net.sublayers(include_self=True):
        if type(layer).__name__ == "MultiHead":
            layer.training = False
