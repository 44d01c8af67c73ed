# ppocr-center-kit: config.py, added to PaddleOCR as ppocr/utils/kit_export/config.py by the kit's
# patch common/0005. Written for ppocr-center-kit (MIT); it imports PaddleOCR at run time and copies none of it.
"""The config as the export reads it (PaddleOCR's `-c CONFIG -o Key.sub=value` options) and
what it derives from it: the sub-model and its CTC head, the heads' sizes as tools/train.py
sets them, the Eval loader over the Train data, the weights to load, the output paths, the
label files a dataset reads.
"""

import collections
import os

import yaml

from .errors import ExportError


EXPORT_DEFAULTS = {
    "checkpoint": None,  # the weights to export from (the kit's CHECKPOINT=); before Global.checkpoints
    "model": None,  # sub-model of a Distillation config to export (chosen_sub_models: default Student)
    "mode": "eval",  # eval: inference's features, deterministic; train: upstream's (train-mode BN, dropout)
    "output": "train_center.pkl",
    "report": None,  # default: <output without .pkl>.report.json
    "force": False,  # overwrite an existing output
    "engine": "auto",  # auto: Paddle Inference when the model converts, else dygraph (logged)
    "tensorrt": False,  # on a GPU, let the inference engine run TensorRT subgraphs (opt-in)
    "engine_fallback": None,  # set by the kit's rerun on dygraph: how the inference engine died
}


DISTILLATION = "Distillation"


# What says where a dataset's samples come from (the rest of a dataset section is how to read them).
# Not ratio_list: below 1, SimpleDataSet reads a random subset with an unseeded RNG.
DATA_SOURCE_KEYS = ("data_dir", "label_file_list", "delimiter")


MODES = ("eval", "train")


ENGINES = ("auto", "inference", "dygraph")


# The switch the kit's rec_ctc_head.py patch adds: CTCHead returns (features, probs) in eval.
EVAL_FEATS_SWITCH = "return_feats_in_eval"


def parse_opts(opts):
    parsed = {}
    for item in opts:
        key, sep, value = item.strip().partition("=")
        if not sep or not key:
            raise ExportError("option %r is not Key=value (e.g. -o Export.model=Student)" % item)
        try:
            parsed[key] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ExportError("option %s: %r is not a YAML value (%s); quote it" % (key, value, str(e).splitlines()[0]))
    return parsed


def load_config(path, opts=()):
    """The training config with -o overrides applied and an Export section with defaults."""
    if not os.path.isfile(path):
        raise ExportError("config %s does not exist; pass CONFIG=<path to a rec .yml>" % path)
    try:
        with open(path, "rb") as f:
            config = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise ExportError("config %s cannot be read as YAML (%s); fix the file" % (path, str(e).splitlines()[0]))
    if not isinstance(config, dict) or "Architecture" not in config:
        raise ExportError("config %s has no Architecture section; pass a PaddleOCR rec config" % path)
    config["Export"] = dict(EXPORT_DEFAULTS, **(config.get("Export") or {}))
    for key, value in dict(opts).items():
        node, parts = config, key.split(".")
        for part in parts[:-1]:
            if not isinstance(node, dict):
                raise ExportError("option %s: %s is a list, which -o cannot index; edit a copy of the config" % (key, part))
            if not isinstance(node.get(part), dict):
                if node is config:
                    raise ExportError("option %s: the config has no %s section" % (key, part))
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return config


def sub_model_names(config):
    """Names of the sub-models of a Distillation config, [] for a single model."""
    arch = config["Architecture"]
    if arch.get("algorithm") != DISTILLATION:
        return []
    return list(arch.get("Models") or {})


def sub_model_arch(config, name):
    """The architecture of sub-model `name` (MODEL=) of a Distillation config, or ExportError
    (make export and make train both choose with it)."""
    names = sub_model_names(config)
    if name not in names:
        raise ExportError(
            "MODEL=%s is not a sub-model of this Distillation config; choose one of: %s"
            % (name, ", ".join(names) or "(none)")
        )
    return config["Architecture"]["Models"][name]


DEFAULT_SUB_MODEL = "Student"


def chosen_sub_models(config, model):
    """[names] of the sub-models MODEL= (a comma list, default Student) chooses in a
    Distillation config, [] for a single model; ExportError for a name the config lacks and
    for MODEL= on a single model. make export and make train choose with it."""
    if config["Architecture"].get("algorithm") != DISTILLATION:
        if model:
            raise ExportError("MODEL=%s is given but the config is not a Distillation model; drop MODEL=" % model)
        return []
    chosen = [m.strip() for m in (model or DEFAULT_SUB_MODEL).split(",") if m.strip()]
    for name in chosen:
        sub_model_arch(config, name)
    return chosen


def chosen_model_arch(config):
    """(name or None, architecture dict) of the model whose centers are exported."""
    chosen = chosen_sub_models(config, config["Export"]["model"])
    if not chosen:
        return None, config["Architecture"]
    if len(chosen) > 1:
        raise ExportError("MODEL=%s names %d sub-models, but centers are exported from one; pass MODEL=%s"
                          % (config["Export"]["model"], len(chosen), chosen[0]))
    return chosen[0], sub_model_arch(config, chosen[0])


def require_ctc_head(model_arch):
    """Raise ExportError unless one (sub-)model's Head is a CTCHead or a MultiHead with one."""
    head = model_arch.get("Head") or {}
    if head.get("name") == "CTCHead":
        return
    if head.get("name") == "MultiHead" and any("CTCHead" in entry for entry in head.get("head_list") or []):
        return
    raise ExportError(
        "the model's Head is %s, not CTCHead or a MultiHead with a CTCHead; centers are "
        "CTC features, so pass a CTC recognition config" % (head.get("name") or "missing")
    )


def check_rec_config(config, sections):
    """Raise ExportError unless this is a rec config with every one of `sections` (the
    export's, or make train's)."""
    arch = config["Architecture"]
    if arch.get("model_type") != "rec":
        raise ExportError(
            "Architecture.model_type is %r, not 'rec'; pass a text recognition config"
            % arch.get("model_type")
        )
    for section in sections:
        if not isinstance(config.get(section), dict):
            raise ExportError("the config has no %s section; pass a full training config" % section)


def check_rec_ctc_config(config):
    """Raise ExportError unless this is a rec config whose chosen model has a CTC head."""
    check_rec_config(config, ("Global", "PostProcess", "Train", "Eval"))
    require_ctc_head(chosen_model_arch(config)[1])
    if config["Export"]["mode"] not in MODES:
        raise ExportError("MODE=%s is not one of %s (-o Export.mode=...)" % (config["Export"]["mode"], ", ".join(MODES)))
    if config["Export"]["engine"] not in ENGINES:
        raise ExportError("ENGINE=%s is not one of %s (-o Export.engine=...)" % (config["Export"]["engine"], ", ".join(ENGINES)))
    if config["Export"]["engine"] == "inference" and config["Export"]["mode"] == "train":
        raise ExportError("ENGINE=inference runs the eval-mode graph and MODE=train needs train-mode layers; "
                          "pass ENGINE=dygraph (or auto) with MODE=train")


def set_head_channels(config, char_num):
    """Head out_channels / out_channels_list as tools/train.py (v2.8 on) sets them.

    char_num is len(post_process.character) of the config's PostProcess. Quirks included:
    with a DistillationSAR/NRTRLabelDecode PostProcess, each MultiHead sub-model takes the
    decoder's tokens off what the previous one was given. v2.7.0 only looked
    at the last loss, which raises KeyError: 'NRTRLabelDecode' on PP-OCRv4 distillation.
    The SAR losses' ignore_index is set as train.py sets it, although the export builds no
    loss: so the whole derivation is train.py's, and tests/test_head_channels.py proves it
    equal to the block in each release's own train.py, config for config.
    """
    arch, post_name = config["Architecture"], config["PostProcess"]["name"]
    losses = (config.get("Loss") or {}).get("loss_config_list") or []
    loss_names = [next(iter(d)) if isinstance(d, dict) else d for d in losses]
    if arch.get("algorithm") == DISTILLATION:
        sar = bool(loss_names) and loss_names[-1] == "DistillationSARLoss"
        nrtr = "DistillationNRTRLoss" in loss_names
        for model in arch["Models"].values():
            if model["Head"]["name"] != "MultiHead":
                model["Head"]["out_channels"] = char_num
                continue
            channels = _multihead_channels(char_num, post_name, sar, nrtr, prefix=DISTILLATION)
            # train.py's quirk: it takes the decoder's tokens off char_num itself, once per
            # MultiHead sub-model, so the next sub-model gets fewer classes still
            char_num = channels["CTCLabelDecode"]
            model["Head"]["out_channels_list"] = channels
            if sar:
                losses[-1]["DistillationSARLoss"]["ignore_index"] = channels["CTCLabelDecode"] + 1
    elif arch["Head"]["name"] == "MultiHead":
        second = loss_names[1] if len(loss_names) > 1 else None
        channels = _multihead_channels(char_num, post_name, second == "SARLoss", second == "NRTRLoss")
        arch["Head"]["out_channels_list"] = channels
        if second == "SARLoss":
            losses[1]["SARLoss"] = dict(losses[1]["SARLoss"] or {}, ignore_index=channels["CTCLabelDecode"] + 1)
    else:
        arch["Head"]["out_channels"] = char_num


def _multihead_channels(char_num, post_name, sar, nrtr, prefix=""):
    """A MultiHead's out_channels_list: the CTC classes are the dictionary without the
    tokens the PostProcess decoder adds (SAR 2, NRTR 3); the second head gets them back."""
    n = char_num - {prefix + "SARLabelDecode": 2, prefix + "NRTRLabelDecode": 3}.get(post_name, 0)
    channels = {"CTCLabelDecode": n}
    if sar:
        channels["SARLabelDecode"] = n + 2
    elif nrtr:
        channels["NRTRLabelDecode"] = n + 3
    return channels


def derive_export_config(config, char_num, data="train"):
    """Turn a checked training config (check_rec_ctc_config) into the one export builds, in
    memory (the YAML is never edited); returns the exported model name. data: whose samples
    the Eval pipeline reads, the Train set's (the export) or the Eval set's own (`make
    confusions` DATA=eval), in either case every line once and in order.

    - Head channels as tools/train.py computes them;
    - only the chosen sub-model of a Distillation config is built, without its `pretrained`
      path (upstream loads that while building, leniently: weights_source names it and
      load_checkpoint loads it strictly);
    - the data set read through the Eval pipeline: Eval transforms, no multi-scale
      sampler (the stock export copies MultiScaleDataSet onto Eval and hangs), every
      line of every label file once and in order, whatever ratio_list says (no ratio_list
      on Eval is SimpleDataSet's 1.0: no sampling).
    The CTC head's features come from the patched head's EVAL_FEATS_SWITCH, set on the
    built model (its `return_feats` option has no effect in eval mode).
    """
    set_head_channels(config, char_num)
    name, model_arch = chosen_model_arch(config)
    arch = config["Architecture"]
    if name is not None:
        arch["Models"] = {name: model_arch}
        model_arch.pop("pretrained", None)

    train_ds, eval_ds = config["Train"]["dataset"], config["Eval"]["dataset"]
    multi_scale = ("MultiScaleDataSet", "MSTextRecDataset")  # no multi-scale sampler in Eval
    source = train_ds if data == "train" else eval_ds
    eval_ds["name"] = "SimpleDataSet" if source["name"] in multi_scale else source["name"]
    for key in DATA_SOURCE_KEYS if data == "train" else ():  # the Train data, none of the Eval set's own source keys
        if key in train_ds:
            eval_ds[key] = train_ds[key]
        else:
            eval_ds.pop(key, None)
    eval_ds.pop("ratio_list", None)
    config["Eval"].pop("sampler", None)
    # every image exactly once, in order (a config's drop_last would skip the last batch)
    loader = {"batch_size_per_card": 64, "num_workers": 0, **(config["Eval"].get("loader") or {})}
    config["Eval"]["loader"] = dict(loader, shuffle=False, drop_last=False)
    return name


Weights = collections.namedtuple("Weights", "source path")


# Sources of weights that are, in a fine-tuning config, the weights before training.
UNTRAINED_SOURCES = ("Global.pretrained_model", "Architecture.Models.")


def weights_source(config):
    """Weights(source, path) the export loads, the first set of: Export.checkpoint (the kit's
    CHECKPOINT=), Global.checkpoints, Global.pretrained_model (what upstream load_model
    falls back to), the chosen sub-model's `pretrained`; None without any."""
    e, g = config["Export"], config["Global"]
    name, model_arch = chosen_model_arch(config)
    for source, path in (("CHECKPOINT", e.get("checkpoint")), ("Global.checkpoints", g.get("checkpoints")),
                         ("Global.pretrained_model", g.get("pretrained_model")),
                         ("Architecture.Models.%s.pretrained" % name, name and model_arch.get("pretrained"))):
        if path:
            return Weights(source, str(path))
    return None


def weights_warning(weights):
    """The warning line for weights that are, in a fine-tuning config, the untrained ones."""
    if not weights.source.startswith(UNTRAINED_SOURCES):
        return None
    return ("weights from %s %s: in a fine-tuning config these are the weights before training; "
            "pass CHECKPOINT=output/<model>/best_accuracy to export the trained ones" % weights)


def checkpoint_prefix(path):
    """A checkpoint path as PaddleOCR names it: without .pdparams (given with it or not)."""
    return path[: -len(".pdparams")] if path.endswith(".pdparams") else path


def output_paths(config):
    """(pkl, report.json) the export writes: Export.output, Export.report (default: beside
    the pkl, <output without .pkl>.report.json)."""
    out = config["Export"]["output"]
    report = config["Export"].get("report") or (os.path.splitext(out)[0] + ".report.json")
    return out, report


def label_files(dataset_config):
    """A dataset section's label_file_list as a list ([] for LMDB)."""
    files = dataset_config.get("label_file_list") or []
    return [files] if isinstance(files, str) else list(files)


def count_lines(path):
    """The lines of a label file as SimpleDataSet counts them (readlines)."""
    with open(path, "rb") as f:
        return sum(1 for _ in f)
