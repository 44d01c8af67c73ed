# ppocr-center-kit: export_center.py, a drop-in replacement for PaddleOCR's
# tools/export_center.py. Written for ppocr-center-kit (MIT); it imports PaddleOCR at
# run time and copies none of it.
"""Export the per-class CTC feature centers (train_center.pkl) that CenterLoss loads.

Works with the unmodified training config of a plain CTC model (same centers as the
stock script), a MultiHead model (CTC+NRTR, CTC+SAR) and a Distillation model
(Teacher/Student, any sub-model names):

    python tools/export_center.py -c CONFIG -o Global.checkpoints=output/x/best_accuracy \
        [Export.model=Student] [Export.output=train_center.pkl] [Export.force=true] \
        [Export.mode=eval|train] [Export.engine=auto|inference|dygraph]

The centers are the mean CTC-head input feature of every time step, grouped by the
argmax class, over the training images the model recognises exactly (as upstream).
The forward pass runs on Paddle Inference (the model converted to a static graph, oneDNN
on a CPU) when it converts, else on dygraph (see Forward).
Under paddle.distributed.launch or spawn each rank reads every N-th image and rank 0
writes the result of one all_reduce.
Self-contained: it runs alone in the clone (also after `make apply`) and imports nothing
from the kit. What does not need Paddle (option parsing, config derivation, center math,
the report) is importable without it: the kit loads this file (centerkit.export_script)
for that knowledge instead of keeping a second copy.
"""

import collections
import functools
import json
import os
import pickle
import sys
import tempfile
import time

import numpy as np
import yaml

EXPORT_DEFAULTS = {
    "checkpoint": None,  # the weights to export from (the kit's CHECKPOINT=); before Global.checkpoints
    "model": "Student",  # sub-model of a Distillation config to export
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
# A path prefix outside the clone, set by the kit: each rank notes there which step of the
# inference engine it is in, and faulthandler names the signal if it dies there (EngineWatch).
ENGINE_STATE_ENV = "PPOCR_CENTER_KIT_ENGINE_STATE"
ENGINE_PHASES = {"convert": "converting the model to a static graph",
                 "predictor": "building the Paddle Inference predictor",
                 "first-batch": "running the predictor's first batch"}


class ExportError(Exception):
    """A problem the user can fix; reported as one line, exit code 2."""


def print_error(message):
    """The kit's one error line (the kit's centerkit.print_error, which this script cannot
    import): on stderr, and under GitHub Actions also as an ::error workflow command, escaped
    as the runner unescapes it (centerkit.github.annotation; a kit test checks they agree)."""
    print("ppocr-center-kit: error: %s" % message, file=sys.stderr, flush=True)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        escaped = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        print("::error title=ppocr-center-kit::%s" % escaped, flush=True)


# ---------------------------------------------------------------------------------------
# Options, PaddleOCR's way: -c CONFIG -o Key.sub=value ...
# ---------------------------------------------------------------------------------------
def parse_args(argv):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", required=True, help="training config (yml)")
    parser.add_argument(
        "-o", "--opt", nargs="+", action="extend", default=[], help="Key.sub=value ..."
    )
    args = parser.parse_args(argv)
    return args.config, parse_opts(args.opt)


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


# ---------------------------------------------------------------------------------------
# Config derivation: what tools/train.py computes, plus what export needs
# ---------------------------------------------------------------------------------------
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


def chosen_model_arch(config):
    """(name or None, architecture dict) of the model whose centers are exported."""
    arch = config["Architecture"]
    if arch.get("algorithm") == DISTILLATION:
        name = config["Export"]["model"]
        return name, sub_model_arch(config, name)
    return None, arch


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


# ---------------------------------------------------------------------------------------
# Center math: float64 sums and counts per class, O(classes x width) memory
# ---------------------------------------------------------------------------------------
class CenterAccumulator:
    """Running per-class sums of CTC features over the correctly recognised samples.

    Equal to upstream program.update_center's running mean (it averages every time step's
    feature into the center of that step's argmax class, blank included), without its
    Python loop over samples and steps. Each batch is summed per class in one sweep of a
    CSR one-hot matrix (class x step) times the features, into float32 partial sums (the
    features' own dtype); a class's partial is folded into the float64 sums once it holds
    more than `fold_rows` steps and at the end. So every float32 sum covers at most
    fold_rows + one batch of steps (relative error ~1e-6), and memory is O(classes x width)
    whatever the dataset size.
    """

    def __init__(self, num_classes, width, fold_rows=1024):
        self.sums = np.zeros((num_classes, width))  # float64
        self.counts = np.zeros(num_classes, np.int64)
        self.images_seen = 0
        self.images_used = 0
        self._partial = np.zeros((num_classes, width), np.float32)
        self._pending = np.zeros(num_classes, np.int64)  # steps in _partial, per class
        self._fold_rows = fold_rows

    def update(self, feats, class_idx, keep):
        """feats [B, T, D] (Tensor or array), class_idx [B, T] argmax per step, keep [B] bool."""
        keep = np.asarray(keep, bool)
        self.images_seen += len(keep)
        self.images_used += int(keep.sum())
        if not keep.any():
            return
        num_classes = len(self.counts)
        # Steps of unrecognised samples get class num_classes: sorted last, outside the matrix.
        idx = np.where(keep[:, None], np.asarray(class_idx), num_classes).reshape(-1)
        rows = _as_float32_rows(feats, len(idx))
        steps = np.bincount(idx, minlength=num_classes + 1)[:num_classes]
        # A stable sort of 16-bit keys is numpy's radix sort: the CSR column order, O(steps).
        key = idx.astype(np.uint16) if num_classes < 2**16 else idx
        order = np.argsort(key, kind="stable")[: steps.sum()]
        indptr = np.concatenate(([0], np.cumsum(steps)))
        _add_csr_product(self._partial, indptr, order, rows)
        self.counts += steps
        self._pending += steps
        full = np.flatnonzero(self._pending > self._fold_rows)
        if full.size:
            self._fold(full)

    def _fold(self, classes=slice(None)):
        self.sums[classes] += self._partial[classes]
        self._partial[classes] = 0
        self._pending[classes] = 0

    def totals(self):
        """(float64 sums, counts) of everything seen so far."""
        self._fold()
        return self.sums, self.counts

    def centers(self):
        """{int class index: float32 (width,)}, the format CenterLoss loads."""
        sums, counts = self.totals()
        present = np.flatnonzero(counts)
        means = (sums[present] / counts[present, None]).astype(np.float32)
        return {int(c): means[i] for i, c in enumerate(present)}


def _as_float32_rows(feats, num_rows):
    """[B, T, D] features as a C-contiguous float32 [B*T, D] array; on CPU no copy (dlpack)."""
    if hasattr(feats, "place"):  # a paddle Tensor
        on_cpu = feats.place.is_cpu_place() and hasattr(feats, "__dlpack__")  # 3.x: shared memory
        feats = np.from_dlpack(feats) if on_cpu else feats.numpy()
    return np.ascontiguousarray(np.asarray(feats).reshape(num_rows, -1), dtype=np.float32)


@functools.lru_cache(maxsize=None)
def csr_kernel():
    """scipy's CSR kernel (Y += A @ X in place), or None without scipy (it comes with
    scikit-image, which every PaddleOCR requirements.txt lists). Imported when the centers
    are summed, not with the module: scipy.sparse is ~0.5 s of every kit command (make
    status, check) otherwise."""
    try:
        from scipy.sparse._sparsetools import csr_matvecs
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return csr_matvecs


def _add_csr_product(out, indptr, columns, rows):
    """out[c] += sum of rows[columns[indptr[c]:indptr[c + 1]]] for every class c, in float32.

    scipy's CSR kernel walks each class's steps with one output row in cache; paddle's CPU
    index_add_ costs ~3x as much (an Eigen expression per step) and numpy's add.at ~30x.
    """
    kernel = csr_kernel()
    if kernel is None:
        np.add.at(out, np.repeat(np.arange(len(out)), np.diff(indptr)), rows[columns])
        return
    ones = np.ones(len(columns), np.float32)
    kernel(len(out), len(rows), out.shape[1], indptr, columns, ones, rows.ravel(), out.ravel())


def shard_indices(num_samples, rank, world_size):
    """This rank's sample indices: every world_size-th one, so across ranks no image is read
    twice or skipped (paddle's DistributedBatchSampler pads the last batch with repeats)."""
    return list(range(rank, num_samples, world_size))


def summed(value):
    """value (an array) summed over every rank."""
    import paddle
    import paddle.distributed as dist

    tensor = paddle.to_tensor(value)
    dist.all_reduce(tensor)
    return tensor.numpy()


def all_reduce_accumulator(acc):
    """Sum every rank's float64 sums, counts and image tallies, once, at the end."""
    sums, counts = acc.totals()
    acc.sums, acc.counts = summed(sums), summed(counts)
    acc.images_seen, acc.images_used = (int(v) for v in summed(np.array([acc.images_seen, acc.images_used], np.int64)))


def correct_mask(post_result):
    """Which samples a (predictions, labels) post-process result recognised exactly."""
    preds, labels = post_result
    return np.array([p[0] == l[0] for p, l in zip(preds, labels)], bool)


def recognised(ctc_decode, class_idx, labels):
    """correct_mask of what CTCLabelDecode reads from the argmax path, decoded from the
    argmax the accumulation uses too (the stock script computes it twice per batch)."""
    return correct_mask((ctc_decode.decode(class_idx, is_remove_duplicate=True), ctc_decode.decode(labels)))


def characters_digest(dict_chars):
    """sha256 of a CTCLabelDecode's classes: `make train` tells by it whether centers were
    exported with the dictionary (and use_space_char) it trains with."""
    import hashlib

    return hashlib.sha256("\n".join(dict_chars).encode("utf-8")).hexdigest()


def summarize(centers, counts, dict_chars, meta):
    """The report: what the pkl holds and what it lacks (CenterLoss keeps random centers).
    Class 0 is CTC's blank, not a character: counted apart (it takes most time steps)."""
    per_class = sorted(int(counts[c]) for c in centers)
    num_classes = len(dict_chars)
    missing = [ch for i, ch in enumerate(dict_chars) if i not in centers and i != 0]
    return dict(
        meta,
        classes_with_center=len(centers),
        characters_with_center=sum(1 for c in centers if 0 < c < num_classes),
        blank_samples=int(counts[0]) if 0 in centers else None,  # None: the blank has no center
        dictionary_size=num_classes,
        classes_out_of_dictionary=sorted(c for c in centers if c >= num_classes),
        samples_per_class_min=per_class[0] if per_class else 0,
        samples_per_class_median=float(np.median(per_class)) if per_class else 0.0,
        characters_without_center=missing,
        feature_width=int(next(iter(centers.values())).shape[0]) if centers else 0,
        characters_sha256=characters_digest(dict_chars),
        closest_center_pairs=closest_pairs(centers, dict_chars),
    )


CLOSEST_PAIRS = 20


def class_name(c, dict_chars):
    """Class c as the report names it: the CTC blank, its character, or out of the dictionary."""
    if c == 0:
        return "CTC blank"
    if dict_chars is None:
        return None
    return dict_chars[c] if c < len(dict_chars) else "class %d (out of the dictionary)" % c


def closest_pairs(centers, dict_chars, top=CLOSEST_PAIRS):
    """The `top` pairs of centers nearest each other (Euclidean, their cosine similarity
    beside; the blank's center included): the look-alike candidates before any evaluation.
    In row blocks, so an 18k-class dictionary needs no 18k x 18k matrix; the distances of
    the pairs kept are computed again directly (the expanded form loses digits)."""
    classes = sorted(centers)
    if len(classes) < 2:
        return []
    m = np.stack([np.asarray(centers[c], np.float64) for c in classes])
    sq = np.einsum("ij,ij->i", m, m)
    tolerance = 1e-9 * (1.0 + 4.0 * float(sq.max()))  # the expanded form's rounding, with room
    best = []  # (i, j), i < j
    for start in range(0, len(classes), 1024):
        block = sq[start:start + 1024, None] + sq[None, :] - 2.0 * (m[start:start + 1024] @ m.T)
        block[np.arange(start, start + len(block))[:, None] >= np.arange(len(classes))[None, :]] = np.inf  # i < j only
        flat = block.ravel()
        kth = flat[np.argpartition(flat, min(top, flat.size) - 1)[min(top, flat.size) - 1]]
        if not np.isfinite(kth):
            kth = flat[np.isfinite(flat)].max(initial=-np.inf)
        # every pair within rounding of the block's top-th: ties stay in, so the class order decides among them
        keep = np.concatenate([np.flatnonzero(flat < kth - tolerance),
                               np.flatnonzero(np.abs(flat - kth) <= tolerance)[:top]])  # (i, j) order: the class order
        best += [(start + int(k) // len(classes), int(k) % len(classes)) for k in keep]
    pairs = sorted((float(np.linalg.norm(m[i] - m[j])), i, j) for i, j in best)[:top]
    norms = np.sqrt(sq)
    return [dict(classes=[classes[i], classes[j]],
                 characters=[class_name(classes[i], dict_chars), class_name(classes[j], dict_chars)],
                 distance=d,
                 cosine=float(m[i] @ m[j] / (norms[i] * norms[j])) if norms[i] and norms[j] else None)
            for d, i, j in pairs]


def format_closest(pairs):
    """The report's closest pairs of centers, one line each."""
    if not pairs:
        return []
    def named(c, ch):
        if c == 0 or ch is None or (len(ch) > 1 and ch.startswith("class ")):
            return "CTC blank (class 0)" if c == 0 else ch or "class %d" % c
        return "%s (class %d)" % (json.dumps(ch, ensure_ascii=False), c)  # quoted: a space shows

    out = ["closest pairs of centers (Euclidean distance, cosine similarity): the look-alike candidates"]
    for p in pairs:
        out.append("  %-22s %-22s %10.4g  %s" % (named(p["classes"][0], p["characters"][0]),
                                                 named(p["classes"][1], p["characters"][1]), p["distance"],
                                                 "-" if p["cosine"] is None else "%.4f" % p["cosine"]))
    return out


def format_report(report):
    missing = report["characters_without_center"]
    per_class = report.get("samples_per_class") or {}
    blank = report["blank_samples"] if "blank_samples" in report else per_class.get("0")  # older reports
    characters = report.get("characters_with_center",
                            report["classes_with_center"] - ("0" in per_class) - len(report["classes_out_of_dictionary"]))
    rows = [
        ("images seen", report["images_seen"]),
        ("images used (recognised exactly)", report["images_used"]),
        ("lines read per label file", ", ".join("%s: %d" % (os.path.basename(str(k)), v)
                                                 for k, v in (report.get("lines_read_per_label_file") or {}).items())),
        ("classes with a center", "%d of %d characters, %s" % (characters, report["dictionary_size"] - 1,
                                                               "and the CTC blank" if blank is not None else "not the CTC blank")),
        ("CTC blank (class 0)", "%s samples" % blank if blank is not None else "no center"),
        ("classes out of the dictionary", len(report["classes_out_of_dictionary"])),
        ("samples per class min / median", "%d / %g" % (report["samples_per_class_min"], report["samples_per_class_median"])),
        ("characters without a center", "%d %s" % (len(missing), "".join(missing[:40]) + ("..." if len(missing) > 40 else ""))),
        ("feature width", report["feature_width"]),
        ("sub-model", report.get("model") or "(single model)"),
        ("mode", report.get("mode", "eval")),
        ("engine", report.get("engine", "dygraph") + engine_fallback_note(report.get("engine_fallback"))),
        ("engine agreement (first batch)", format_agreement(report.get("engine_agreement"))),
        ("seconds (convert/load/forward/accumulate)", "%s (%s)" % (report.get("seconds"), " / ".join(
            str((report.get("seconds_by_part") or {}).get(k, "-")) for k in ("convert", "load", "forward", "accumulate")))),
        ("weights", "%s (%s)%s" % (report.get("checkpoint"), report.get("weights_source", "unknown"),
                                    format_loaded(report.get("weights_loaded")))),
        ("release", "%s (Paddle %s)%s" % (report.get("release") or "unknown", report.get("paddle") or "unknown",
                                           "; not yet proven: series %s by dry run" % report.get("series")
                                           if report.get("release_proven") is False else "")),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(["%s  %s" % (k.ljust(width), v) for k, v in rows] + format_closest(report.get("closest_center_pairs")))


def format_loaded(loaded):
    """'; inference model ...' of load_weights' account ('' for a checkpoint as trained)."""
    if not loaded or "form" not in loaded:
        return ""
    absent = ", ".join("%s (%d)" % kv for kv in sorted(loaded["not_in_weights"].items()))
    what = ("inference model %s, %d tensors placed by %s names" % (loaded["program"], loaded["tensors"], loaded["names"])
            if loaded["kind"] == "inference model" else "%d tensors placed" % loaded["tensors"])
    return "; %s%s, %s%s" % (what, " (%d renamed)" % loaded["renamed"] if loaded["renamed"] else "", loaded["form"],
                             "; not in them, and not read: " + absent if absent else "")


def crash_words(crash):
    """'died of SIGILL while building ...' of a crash {signal, phase} (Export.engine_fallback)."""
    return "died of %s while %s" % (crash.get("signal"), ENGINE_PHASES.get(crash.get("phase"), crash.get("phase")))


def engine_fallback_note(fallback):
    """How the report's engine came to be dygraph when the kit reran a crashed export."""
    return " (rerun: the inference engine %s)" % crash_words(fallback) if isinstance(fallback, dict) else ""


def format_agreement(agreement):
    if not agreement:
        return "- (dygraph only)"
    return ("max abs diff %.2g = %.2g of the features' scale %.3g; max relative L2 per step %.2g; argmax equal %.1f%%"
            % (agreement["max_abs_diff"], agreement["max_abs_diff_over_scale"], agreement["feature_scale"],
               agreement["max_step_relative_l2"], 100 * agreement["argmax_equal"]))


def refuse_existing(paths, force, how_to_force="FORCE=1 (-o Export.force=true)"):
    for path in paths:
        if os.path.exists(path) and not force:
            raise ExportError("%s exists; remove it or pass %s" % (path, how_to_force))


def temp_prefix(path):
    """What write_files' temp file for path starts with (mkstemp adds 8 characters): a
    killed export leaves it behind, and the kit's revert removes it."""
    return ".%s." % os.path.basename(path)


def write_files(files, force):
    """Write {path: bytes}: every temp file is written and fsynced first, then each is
    published, so a full disk leaves the old files (or none) and never a partial file; only
    a kill between two publishes can mix old and new. Without force, publishing links the
    temp file (which fails if the name exists), so a file that appeared since the check is
    not clobbered either."""
    refuse_existing(files, force)
    temps, path = {}, None
    try:
        umask = os.umask(0)
        os.umask(umask)
        for path, data in files.items():
            fd, temps[path] = tempfile.mkstemp(prefix=temp_prefix(path), dir=os.path.dirname(os.path.abspath(path)))
            os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; a pkl is an ordinary file
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        for path in files:
            publish(temps.pop(path), path, force)
    except BaseException as e:
        for tmp in temps.values():
            if os.path.exists(tmp):
                os.unlink(tmp)
        if isinstance(e, FileExistsError):
            raise ExportError("%s appeared while exporting; remove it or pass FORCE=1" % path)
        if isinstance(e, OSError):  # full disk, read-only folder: one line, nothing left behind
            raise ExportError("cannot write %s: %s; free space or choose another OUTPUT=" % (path, e.strerror or e))
        raise


def publish(tmp, path, force):
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        os.unlink(tmp)
        raise
    except OSError:  # a file system without hard links: the check in refuse_existing stands
        os.replace(tmp, path)
        return
    os.unlink(tmp)


# ---------------------------------------------------------------------------------------
# The run (needs Paddle and the PaddleOCR tree this file sits in)
# ---------------------------------------------------------------------------------------
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
    from ppocr.utils import kit_inference_model as kim

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
    from ppocr.utils import kit_inference_model as kim

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
    from ppocr.utils import kit_inference_model as kim

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


def run(config, logger):
    """The export, in its steps; returns the report (None on ranks other than 0)."""
    device, rank, world_size = set_up_devices(config, logger)
    name, weights, ctc_decode = derive_for_this_tree(config)
    data = train_images(config, device, rank, world_size, logger)
    net, acc, loaded = build_exported_model(config, name, weights, logger, data)
    forward = Forward(net, config, device, rank, world_size, logger)
    timing = accumulate(forward, data, acc, ctc_decode, show_progress=rank == 0)
    if world_size > 1:
        all_reduce_accumulator(acc)
        if rank != 0:  # rank 0 alone writes
            return None
    # the ranks' shards cover every sample once and train_images checked that the samples
    # are the label files' lines: so each file's lines were read, all of them, once
    lines_read = {label_file: lines for label_file, lines in data.sources}
    return write_centers(config, acc, list(ctc_decode.character),
                         dict(model=name, weights=weights, weights_loaded=loaded, timing=timing, engine=forward.engine_used(),
                              engine_agreement=forward.agreement, lines_read=lines_read), logger)


def set_up_devices(config, logger):
    """(device, rank, world size): a GPU when Global.use_gpu is true and Paddle has one (a
    warning when it has none), else the CPU; the log names the device used. World size > 1
    under paddle.distributed.launch / spawn (NCCL on GPUs, gloo on CPU)."""
    import paddle

    wanted = bool(config["Global"].get("use_gpu"))
    gpus = paddle.device.cuda.device_count() if paddle.is_compiled_with_cuda() else 0
    if wanted and not gpus:
        logger.warning("Global.use_gpu is true but this Paddle %s: exporting on the CPU"
                       % ("sees no GPU" if paddle.is_compiled_with_cuda() else "is a CPU-only build"))
    device = paddle.set_device("gpu:%d" % paddle.distributed.ParallelEnv().dev_id if wanted and gpus else "cpu")
    logger.info("device: %s", paddle.get_device())
    world_size = paddle.distributed.get_world_size()
    config["Global"]["distributed"] = world_size > 1
    if world_size > 1:
        paddle.distributed.init_parallel_env()
    return device, paddle.distributed.get_rank(), world_size


def derive_for_this_tree(config):
    """derive_export_config with this tree's PostProcess; (model name, Weights, the
    CTCLabelDecode that tells recognised images), or ExportError without weights."""
    weights = weights_source(config)  # before the derivation drops the sub-model's `pretrained`
    if weights is None:
        raise ExportError("no checkpoint to export from; pass CHECKPOINT=<output/.../best_accuracy>")
    name = derive_export_config(config, post_process_classes(config))
    return name, weights, ctc_decoder(config["Global"])


TrainData = collections.namedtuple("TrainData", "loader sources check_reads")
# On a CPU large batches cost more per image (oneDNN, PP-OCRv4 mobile on 2 cores: 7.4 s per
# 100 lines at 128, 1.7 s at 8); in eval mode, without a collate_fn that pads a batch as a
# whole, an image reads the same in any batch, so the CPU takes at most CPU_BATCH at a time.
CPU_BATCH = 8


def train_images(config, device, rank, world_size, logger):
    """TrainData: a loader of the Train images through the Eval pipeline (of this rank's
    shard_indices with several ranks), the sources [(label file, lines)] and
    read_each_once's check. Every line of every label file is a
    sample, read once."""
    import paddle
    from ppocr.data import build_dataloader

    files = label_files(config["Eval"]["dataset"])  # before the build: SimpleDataSet pops them
    batch = config["Eval"]["loader"]
    if isinstance(device, paddle.CPUPlace) and config["Export"]["mode"] == "eval" and not batch.get("collate_fn"):
        batch["batch_size_per_card"] = min(int(batch["batch_size_per_card"]), CPU_BATCH)
    loader = build_dataloader(config, "Eval", device, logger)
    dataset = loader.dataset
    sources = [(f, count_lines(f)) for f in files] or [(config["Eval"]["dataset"].get("data_dir"), len(dataset))]
    if sum(n for _, n in sources) != len(dataset):
        raise ExportError(
            "the %s holds %d samples for the %d lines of %s, so some would be read twice or never; "
            "export from a SimpleDataSet or LMDBDataSet config"
            % (type(dataset).__name__, len(dataset), sum(n for _, n in sources), ", ".join(files))
        )
    check_reads = read_each_once(dataset, sources)
    if world_size > 1:
        loader = paddle.io.DataLoader(
            paddle.io.Subset(dataset, shard_indices(len(dataset), rank, world_size)),
            places=device, batch_size=loader.batch_sampler.batch_size, shuffle=False, drop_last=False,
            num_workers=loader.num_workers, return_list=True, collate_fn=loader.collate_fn,
        )
    return TrainData(loader, sources, check_reads)


def label_files(dataset_config):
    """A dataset section's label_file_list as a list ([] for LMDB)."""
    files = dataset_config.get("label_file_list") or []
    return [files] if isinstance(files, str) else list(files)


def count_lines(path):
    """The lines of a label file as SimpleDataSet counts them (readlines)."""
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def read_each_once(dataset, sources):
    """A function that raises an ExportError naming the first sample the dataset could not
    load. SimpleDataSet and LMDBDataSet replace such a sample (a missing or broken image, a
    line without a label) with another one, so one image would be read twice and the broken
    one never; the replacement is their call of self.__getitem__ from inside __getitem__,
    which this subclass notices and notes in an unnamed temp file opened for appending. An
    exception would not do: paddle's loader raises it in a thread of its own (with workers
    or not), which ends that thread and leaves the loop waiting or failing without it. The
    file is shared with the loader's forked workers, and the loop checks it every batch."""
    base = type(dataset)
    notes = tempfile.TemporaryFile("a+b")

    def __getitem__(self, idx):
        if self._export_reading is not None:
            os.write(notes.fileno(), (unreadable_sample(self, sources, self._export_reading) + "\n").encode())
        self._export_reading = idx
        try:
            return base.__getitem__(self, idx)
        finally:
            self._export_reading = None

    def check():
        noted = os.pread(notes.fileno(), 4096, 0)
        if noted:
            raise ExportError(noted.decode("utf-8", "replace").split("\n")[0])

    dataset._export_reading = None
    dataset.__class__ = type(base.__name__, (base,), {"__getitem__": __getitem__})
    return check


def unreadable_sample(dataset, sources, idx):
    """What to say about sample idx, which the dataset could not load."""
    image = ""
    lines, delimiter = getattr(dataset, "data_lines", None), getattr(dataset, "delimiter", "\t")
    if isinstance(lines, list) and idx < len(lines):
        image = "image %s, " % lines[idx].decode("utf-8", "replace").rstrip("\n").split(delimiter)[0]
    for name, count in sources:
        if idx < count:
            break
        idx -= count
    return ("training sample %sline %d of %s, cannot be read (missing, not an image, or no label; the "
            "log above has upstream's message); fix or remove that line" % (image, idx + 1, name))


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


def accumulate(forward, data, acc, ctc_decode, show_progress):
    """Forward every batch and add the features of the images read exactly to acc; returns
    the seconds of the loop and of its parts: waiting for the loader (whose thread or
    workers run the Eval transforms meanwhile), the forward pass (with the inference
    engine's conversion apart), the accumulation."""
    progress = _progress(len(data.loader.dataset), enabled=show_progress)
    timing = dict(load=0.0, forward=0.0, accumulate=0.0)
    start = time.perf_counter()
    try:  # the bar ends its line before any error is printed
        batches = iter(data.loader)
        while True:
            t0 = time.perf_counter()
            batch = next(batches, None)
            t1 = time.perf_counter()
            if batch is None:
                break
            data.check_reads()
            feats, class_idx = forward(batch[0])
            t2 = time.perf_counter()
            acc.update(feats, class_idx, recognised(ctc_decode, class_idx, batch[1].numpy()))
            progress(len(class_idx))
            t3 = time.perf_counter()
            timing["load"] += t1 - t0
            timing["forward"] += t2 - t1
            timing["accumulate"] += t3 - t2
        data.check_reads()
    finally:
        progress(None)
    timing["convert"] = forward.convert_seconds
    timing["forward"] -= forward.convert_seconds
    timing["loop"] = time.perf_counter() - start
    return {k: round(v, 3) for k, v in timing.items()}


# ---------------------------------------------------------------------------------------
# Forward engines: (features [B, T, D], argmax class [B, T]) of a batch of images
# ---------------------------------------------------------------------------------------
class Forward:
    """The forward pass Export.engine asks for. dygraph: the built model, as training runs
    it. inference: that model converted to a static graph (to_static + jit.save, into a
    temp folder outside the clone) and run by a Paddle Inference predictor, oneDNN on the
    CPU, CUDA (TensorRT with Export.tensorrt) on a GPU; the argmax is taken inside the
    graph, so the [B, T, C] scores never leave it. auto: inference when the conversion
    succeeds and its output equals dygraph's on the first images, else dygraph, with one
    log line saying why. The choice is made on the first batch, whose shape the graph is
    built for (the Eval transforms resize every image to one shape); a batch of another
    shape, if any, goes through dygraph."""

    CHECK_IMAGES = 2  # of the first batch, forwarded by both engines before the predictor is used

    def __init__(self, net, config, device, rank, world_size, logger):
        self.net, self.logger = net, logger
        self.export = config["Export"]
        self.device, self.world_size = device, world_size
        self.engine = None  # the InferenceEngine, once chosen
        self.dygraph_batches = 0  # with an engine: batches of another shape
        self.convert_seconds = 0.0
        self.agreement = None  # check_same_outputs' figures on the first batch
        self.watch = EngineWatch(rank, self.export["engine"])
        self._chosen = False

    def __call__(self, images):
        if not self._chosen:
            self._chosen = True
            try:
                self.engine = self._choose(images)
                if self.engine is not None:
                    return self._checked_first(images)
            finally:
                self.watch.leave()  # past the first batch a crash is no longer the engine's build
        if self.engine is not None and list(images.shape[1:]) == self.engine.shape:
            return self.engine(images)
        if self.engine is not None and self.dygraph_batches == 0:
            self.logger.warning("engine: a batch of shape %s, not the converted %s, goes through dygraph"
                                % (list(images.shape[1:]), self.engine.shape))
        self.dygraph_batches += 1
        return self.dygraph(images)

    def _checked_first(self, images):
        """The first batch through the new predictor, checked against dygraph's outputs on
        its first images; the converted model's folder is removed whatever happens (the
        predictor holds the model in memory once it has run)."""
        engine = self.engine
        try:
            reference = self.dygraph(images[: self.CHECK_IMAGES])
            self.watch.enter("first-batch")
            with stdout_silenced():  # oneDNN's passes print a debug line per op they check, to C++'s stdout
                outputs = engine(images)
            self.agreement = check_same_outputs(reference, outputs)
        except Exception as e:
            self.engine = None
            self._unavailable(e)
            return self.dygraph(images)
        finally:
            engine.remove_files()
        self.logger.info("engine: inference (%s; converted in %.1f s)" % (self.engine.describe, self.convert_seconds))
        return outputs

    def dygraph(self, images):
        import paddle

        with paddle.no_grad():
            feats, probs = head_outputs(self.net(images))
        return feats, argmax_on_host(probs)

    def _choose(self, images):
        import paddle

        wanted = self.export["engine"]
        if wanted == "dygraph":
            fallback = self.export.get("engine_fallback")
            self.logger.info("engine: dygraph (%s)" % ("the kit's rerun: the inference engine " + crash_words(fallback)
                                                       if isinstance(fallback, dict) else "ENGINE=dygraph"))
            return None
        if self.export["mode"] != "eval":  # check_rec_ctc_config refuses ENGINE=inference here
            self.logger.info("engine: dygraph (MODE=%s runs layers in train mode; the inference "
                             "graph is eval-only)" % self.export["mode"])
            return None
        start = time.perf_counter()
        try:
            gpu = None if isinstance(self.device, paddle.CPUPlace) else paddle.distributed.ParallelEnv().dev_id
            threads = max(1, available_cores() // self.world_size)
            return InferenceEngine(self.net, list(images.shape[1:]), gpu, threads, bool(self.export.get("tensorrt")),
                                   int(images.shape[0]), self.watch, self.logger)
        except Exception as e:  # any failure of the conversion: dygraph can still run the model
            self._unavailable(e)
            return None
        finally:
            self.convert_seconds = time.perf_counter() - start  # the time spent on it, also when it failed

    def _unavailable(self, error):
        """ENGINE=inference: an ExportError; auto: one log line, and dygraph from here on."""
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        if self.export["engine"] == "inference":
            raise ExportError("ENGINE=inference: the model cannot run on Paddle Inference (%s); "
                              "pass ENGINE=dygraph" % reason)
        self.logger.warning("engine: dygraph (the inference engine is unavailable: %s)" % reason)

    def engine_used(self):
        """What the report records: the engine of the batches (both, if some fell back)."""
        if self.engine is None:
            return "dygraph"
        return "inference" + (" (%d batches of another shape: dygraph)" % self.dygraph_batches if self.dygraph_batches else "")


class InferenceEngine:
    """net as a Paddle Inference predictor for batches of images of shape [C, H, W] (gpu: the
    GPU id, None on the CPU; batch: the largest batch, for TensorRT). Raises on any failure,
    and then leaves no folder behind."""

    def __init__(self, net, shape, gpu, threads, tensorrt, batch, watch, logger):
        self.shape = shape
        # in the kit's state folder when there is one: the kit removes it also after a crash
        self.folder = tempfile.mkdtemp(prefix="ppocr-center-kit-engine-", dir=watch.folder)
        try:
            watch.enter("convert")
            save_static_graph(net, shape, self.folder)
            deleted = []
            if gpu is None:
                import paddle

                deleted, why = passes_to_delete(paddle.__version__, cpu_flags())
                if deleted:
                    logger.info("engine: the predictor is built without %s (%s)" % (", ".join(deleted), why))
            watch.enter("predictor")
            self.predictor, self.describe = new_predictor(self.folder, gpu, threads, tensorrt, [batch] + shape, deleted)
            self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
            self.outputs = [self.predictor.get_output_handle(n) for n in self.predictor.get_output_names()]
        except BaseException:
            self.remove_files()
            raise

    def __call__(self, images):
        self.input.copy_from_cpu(np.ascontiguousarray(images.numpy()))
        self.predictor.run()
        out = [h.copy_to_cpu() for h in self.outputs]
        feats = next(o for o in out if o.dtype.kind == "f")
        class_idx = next(o for o in out if o.dtype.kind in "iu")
        return feats, class_idx

    def remove_files(self):
        """Remove the converted model's folder (the predictor, once run, needs it no more)."""
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


def _graph_forward(self, x):
    """The converted graph's forward: the CTC head's features and each step's argmax."""
    feats, probs = head_outputs(self.net(x))
    return feats, probs.argmax(axis=-1)


def save_static_graph(net, shape, folder):
    """jit.save a copy of net (the dygraph model stays as built, for the fallback) as
    folder/model, with the input [any batch] + shape. The recipe of the release's own
    tools/export_model.py (ppocr/utils/export_model.py from v2.9): reparameterizable layers
    (rep(), the PP-OCRv4/v5 backbones) fused, to_static with full_graph, jit.save (PIR on
    Paddle 3). Not its input specs: those are chosen per algorithm for deployment (height 32
    for most rec models, a free width for SVTR_LCNet), while the export knows the one shape
    its Eval pipeline produces and converts for exactly that."""
    import copy
    import warnings

    import paddle

    warnings.filterwarnings("ignore", message="No ccache found")  # to_static imports cpp_extension; no C++ is built
    graph = type("ExportGraph", (paddle.nn.Layer,), {"forward": _graph_forward})()
    graph.net = copy.deepcopy(net)
    graph.eval()
    for layer in graph.sublayers():
        if hasattr(layer, "rep") and not getattr(layer, "is_repped", False):
            layer.rep()
        for name, buffer in list(layer._buffers.items()):  # only the copy's: dygraph leaves them empty
            if buffer is not None and not buffer._is_initialized():
                # an LSTM's dropout state, unused in eval; Paddle 2.6's jit.save fails on an empty one
                layer.register_buffer(name, paddle.zeros([1], buffer.dtype), persistable=name not in layer._non_persistable_buffer_names_set)
    spec = [paddle.static.InputSpec(shape=[None] + list(shape), dtype="float32", name="x")]
    static = paddle.jit.to_static(graph, input_spec=spec, full_graph=True)
    paddle.jit.save(static, os.path.join(folder, "model"))


def new_predictor(folder, gpu, threads, tensorrt, batch_shape, deleted_passes=()):
    """(a Paddle Inference predictor of folder/model, a description of its options): on GPU
    gpu (TensorRT subgraphs if asked, for batches up to batch_shape), else on the CPU,
    without the optimiser passes deleted_passes (see passes_to_delete)."""
    from paddle import inference

    names = os.listdir(folder)
    graph = "model.json" if "model.json" in names else "model.pdmodel"  # PIR (Paddle 3) or the old IR
    config = inference.Config(os.path.join(folder, graph), os.path.join(folder, "model.pdiparams"))
    if gpu is not None:
        config.enable_use_gpu(512, gpu)
        describe = "GPU %d" % gpu
        if tensorrt:
            batch = [int(d) for d in batch_shape]
            config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=batch[0], min_subgraph_size=3,
                                          precision_mode=inference.PrecisionType.Float32, use_static=False,
                                          use_calib_mode=False)
            config.set_trt_dynamic_shape_info({"x": [1] + batch[1:]}, {"x": batch}, {"x": batch})
            describe += ", TensorRT"
    else:
        config.disable_gpu()
        config.enable_mkldnn()
        config.set_cpu_math_library_num_threads(threads)
        describe = "CPU, oneDNN, %d threads" % threads
        for name in deleted_passes:
            config.delete_pass(name)
        if deleted_passes:
            describe += ", without " + ", ".join(deleted_passes)
    config.set_optim_cache_dir(folder)  # what the optimiser caches stays in the temp folder
    config.disable_glog_info()
    return inference.create_predictor(config), describe


# The first-batch check's tolerance (check_same_outputs), as the report states it.
AGREEMENT_TOLERANCE = {"max_abs_diff_over_scale": 1e-3, "argmax_equal": 0.99}


def check_same_outputs(reference, outputs):
    """The agreement of the predictor's first outputs with dygraph's on their first images
    (reference), or a ValueError unless the features are within 1e-3 of their scale (the
    largest magnitude) and the argmax equal on 99% of the steps. The figures: the largest
    absolute difference, it over the scale, the largest relative L2 difference of one time
    step's feature vector, the share of equal argmax steps."""
    ref_feats, ref_idx = reference
    ref_feats = ref_feats.numpy() if hasattr(ref_feats, "numpy") else np.asarray(ref_feats)
    feats, class_idx = outputs[0][: len(ref_feats)], outputs[1][: len(ref_feats)]
    if feats.shape != ref_feats.shape or class_idx.shape != ref_idx.shape:
        raise ValueError("the converted model returns features %s and classes %s, dygraph %s and %s"
                         % (feats.shape, class_idx.shape, ref_feats.shape, ref_idx.shape))
    scale = max(float(np.abs(ref_feats).max()), 1e-6)
    delta = feats.astype(np.float64) - ref_feats
    diff = float(np.abs(delta).max())
    step_norms = np.maximum(np.linalg.norm(ref_feats.astype(np.float64), axis=-1), 1e-12)
    agree = float(np.mean(class_idx == ref_idx))
    if diff > AGREEMENT_TOLERANCE["max_abs_diff_over_scale"] * scale or agree < AGREEMENT_TOLERANCE["argmax_equal"]:
        raise ValueError("the converted model's outputs differ from dygraph's (features by %.3g of %.3g, "
                         "argmax equal on %.1f%% of the steps)" % (diff, scale, 100 * agree))
    return {"images": len(ref_feats), "max_abs_diff": diff, "feature_scale": scale,
            "max_abs_diff_over_scale": diff / scale,
            "max_step_relative_l2": float((np.linalg.norm(delta, axis=-1) / step_norms).max()),
            "argmax_equal": agree, "tolerance": AGREEMENT_TOLERANCE}


# Paddle 2.x's oneDNN self_attention_fuse_pass runs AVX-512 code on any CPU and dies of
# SIGILL on those without it (AMD EPYC/Ryzen, older Intel): Paddle issues 60477, 64852,
# 70156, PaddleOCR 11597; deleting the pass is the known workaround. Paddle 3's pass does
# not crash there (v3.x exports measured on an AMD EPYC without AVX-512).
FUSE_PASS_CRASH = ("self_attention_fuse_pass", "avx512f")


def passes_to_delete(paddle_version, flags):
    """([pass names], why) the CPU predictor is built without: self_attention_fuse_pass on
    Paddle 2.x unless the CPU flags (None: unknown) show AVX-512 Foundation."""
    pass_name, flag = FUSE_PASS_CRASH
    major = int(str(paddle_version).split(".")[0] or 0)
    if major >= 3 or major == 0:  # 0.0.0: a develop build, whose version says nothing
        return [], None
    if flags is not None and flag in flags:
        return [], None
    cpu = "a CPU without AVX-512 (no %s flag)" % flag if flags is not None else "a CPU whose flags are unknown"
    return [pass_name], "Paddle %s on %s: the pass dies of SIGILL there" % (paddle_version, cpu)


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU's feature flags (the first `flags` line of /proc/cpuinfo), None if unknown."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() == "flags":
                    return set(value.split())
    except OSError:
        pass
    return None


class EngineWatch:
    """What the kit reads when this rank dies of a native signal (SIGILL, SIGSEGV, ...) while
    the inference engine is built or runs its first batch, where a Python exception would
    have been caught and answered by the dygraph fallback: the step it was in and, from
    faulthandler, the signal. Then nothing is written yet, and the kit reruns the export on
    dygraph. A file <ENGINE_STATE_ENV>.<rank> outside the clone, in the folder where the
    converted model goes too; without the variable (the script run by hand) it does nothing."""

    def __init__(self, rank, wanted):
        base = os.environ.get(ENGINE_STATE_ENV)
        self.path = base and "%s.%d" % (base, rank)
        self.folder = base and os.path.dirname(base)
        self.wanted, self.file, self._was_enabled = wanted, None, False

    def enter(self, phase):
        if not self.path:
            return
        import faulthandler

        if self.file is None:
            self.file = open(self.path, "w", encoding="utf-8")
            self._was_enabled = faulthandler.is_enabled()
            faulthandler.enable(self.file)  # chains to Paddle's own handler, which prints its C++ stack
        self.file.seek(0)
        self.file.truncate()
        self.file.write("%s %s\n" % (phase, self.wanted))
        self.file.flush()

    def leave(self):
        if self.file is None:
            return
        import faulthandler

        faulthandler.disable()
        if self._was_enabled:  # the user's PYTHONFAULTHANDLER / -X faulthandler
            faulthandler.enable()
        self.file.close()
        os.unlink(self.path)
        self.file = None


class stdout_silenced:
    """File descriptor 1 on /dev/null for the block (prints of C++ code included)."""

    def __enter__(self):
        sys.stdout.flush()
        self.saved = os.dup(1)
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)

    def __exit__(self, *exc):
        os.dup2(self.saved, 1)
        os.close(self.saved)


def available_cores():
    """The cores this process may run on (its affinity mask, e.g. a container's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def argmax_on_host(probs):
    """The [B, T] argmax class of [B, T, C] scores as a numpy array: taken on the device, so
    only B x T indices cross to the host (the scores are ~190 MB a batch for an 18k-class
    dictionary); on the CPU numpy's argmax is the fast one."""
    if probs.place.is_cpu_place():
        return probs.numpy().argmax(axis=-1)
    return probs.argmax(axis=-1).numpy()


def write_centers(config, acc, dict_chars, run_info, logger):
    """Write the pkl and its report (or refuse an empty result), print the report."""
    if acc.images_seen == 0:
        raise ExportError("the training data is empty; check Train.dataset.data_dir and label_file_list")
    if acc.images_used == 0:
        raise ExportError(
            "no training image was recognised exactly (%d seen), so there is nothing to average; "
            "pass a trained CHECKPOINT for this config" % acc.images_seen
        )
    import paddle

    centers = acc.centers()
    out, report_path = output_paths(config)
    meta = dict(paddle=paddle.__version__, images_seen=acc.images_seen, images_used=acc.images_used, model=run_info["model"],
                checkpoint=run_info["weights"].path, weights_source=run_info["weights"].source,
                weights_loaded=run_info["weights_loaded"],
                mode=config["Export"]["mode"], engine=run_info["engine"], engine_agreement=run_info["engine_agreement"],
                engine_fallback=config["Export"].get("engine_fallback"), release=os.environ.get("PADDLEOCR_RELEASE"),
                series=os.environ.get("PPOCR_CENTER_KIT_SERIES"),  # the kit's choice; proven: a release its table lists
                series_sha256=os.environ.get("PPOCR_CENTER_KIT_SERIES_SHA256"), kit_version=os.environ.get("PPOCR_CENTER_KIT_VERSION"),
                release_proven={"1": True, "0": False}.get(os.environ.get("PPOCR_CENTER_KIT_RELEASE_PROVEN")),
                seconds=run_info["timing"]["loop"], seconds_by_part=run_info["timing"], output=out,
                lines_read_per_label_file=run_info["lines_read"])
    report = summarize(centers, acc.counts, dict_chars, meta)
    report["samples_per_class"] = {str(c): int(acc.counts[c]) for c in centers}
    force = bool(config["Export"].get("force"))
    write_files({out: pickle.dumps(centers), report_path: json.dumps(report, indent=1, ensure_ascii=False).encode()}, force)
    print(format_report(report))
    logger.info("wrote %s (%d centers, width %d) and %s", out, len(centers), report["feature_width"], report_path)
    return report


def _progress(total, enabled=True):
    """A tqdm bar in images with images/s; a no-op without tqdm."""
    try:
        from tqdm import tqdm
    except ImportError:
        enabled = False
    if not enabled:
        return lambda n: None
    bar = tqdm(total=total, unit="img", desc="export centers", dynamic_ncols=True)

    def step(n):
        if n is None:
            bar.close()
        else:
            bar.update(n)

    return step


def main(argv=None):
    root = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        config_path, opts = parse_args(sys.argv[1:] if argv is None else argv)
        config = load_config(config_path, opts)
        check_rec_ctc_config(config)
        from ppocr.utils.logging import get_logger

        run(config, get_logger())
    except ExportError as e:
        print_error(str(e))
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line, not Paddle's frames (temp files are gone by now)
        print("ppocr-center-kit: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
