# ppocr-center-kit: inference_model.py, added to PaddleOCR as ppocr/utils/kit_export/inference_model.py
# by the kit's patch common/0005. Written for ppocr-center-kit (MIT); imports only numpy.
"""A Paddle inference model as weights: what PaddleOCR's tools/export_model.py writes and
what PaddleOCR, PaddleX and RapidOCR publish (`inference.pdiparams` with its program,
`inference.pdmodel` from Paddle 2.x or `inference.json` from Paddle 3, and where the
exporter wrote one, `inference.pdiparams.info`).

The .pdiparams file is the program's persistable tensors, one after the other in the order
of their names (Paddle's predictor sorts them so too); the program gives those names,
Paddle variable names such as conv2d_10.w_0. The .info file maps them to the dygraph
model's structured names (backbone.conv1.conv.weight). Without it the tensors can still be
placed by their variable names, which are the ones the exporter's process gave the layers
as it built them: a model built the same way in a fresh name scope has the same names.

Which parameters the model must get is the caller's to say (those its forward reads);
`place` says what goes where, what has no home, and what stays without weights, trying the
model as trained and re-parameterised. Nothing here imports Paddle (it calls the model's
own methods): the kit checks a model's files with it before starting Paddle.
"""

import json
import os
import pickle
import re
import struct

import numpy as np

PARAMS = ".pdiparams"
INFO = ".pdiparams.info"
PROGRAMS = (".json", ".pdmodel")  # Paddle 3 (PIR), Paddle 2.x
DEFAULT_NAME = "inference"  # the prefix tools/export_model.py writes in Global.save_inference_dir
TRAINING = ".pdparams"

# Structured names that changed since models in circulation were exported: (old name
# pattern, new name, where the old names come from). Applied only to a name the model lacks.
RENAMES = (
    (r"_conv\.w$", "_conv.lab.scale", "PP-OCRv4 models exported before v2.7.0, the first release with PPLCNetV3"),
    (r"_conv\.b$", "_conv.lab.bias", "PP-OCRv4 models exported before v2.7.0, the first release with PPLCNetV3"),
    (r"\.activation\.scale$", ".act.lab.scale", "PP-OCRv4 models exported before v2.7.0, the first release with PPLCNetV3"),
    (r"\.activation\.bias$", ".act.lab.bias", "PP-OCRv4 models exported before v2.7.0, the first release with PPLCNetV3"),
)

# framework.proto: VarType.Type values of a tensor's data type, and of a dense tensor variable
DTYPES = {0: np.bool_, 1: np.int16, 2: np.int32, 3: np.int64, 4: np.float16, 5: np.float32, 6: np.float64,
          20: np.uint8, 21: np.int8, 22: np.uint16}  # 22: bfloat16, kept as its bits
DENSE_TENSOR = 7


class InferenceModelError(ValueError):
    """A problem with the files or the placement, in one line naming the fix."""


def inference_prefix(path):
    """The path prefix of the inference model `path` names (its folder holding
    inference.pdiparams, the prefix itself, or its .pdiparams file); None if it names none."""
    path = str(path)
    if os.path.isdir(path):
        path = os.path.join(path, DEFAULT_NAME)
    elif path.endswith(PARAMS):
        path = path[: -len(PARAMS)]
    return path if os.path.isfile(path + PARAMS) else None


def training_prefix(path):
    """A training checkpoint's path as PaddleOCR names it: without .pdparams."""
    path = str(path)
    return path[: -len(TRAINING)] if path.endswith(TRAINING) else path


def weights_kind(path, source="CHECKPOINT"):
    """'checkpoint' (path.pdparams exists), 'inference' (an inference model), or an
    InferenceModelError naming both forms: the one rule of what CHECKPOINT= may name
    (source: where the path came from, for the message)."""
    if os.path.isfile(training_prefix(path) + TRAINING):
        return "checkpoint"
    if inference_prefix(path):
        return "inference"
    raise InferenceModelError(
        "weights %s (%s) do not exist: neither %s.pdparams (a training checkpoint) nor an inference model "
        "(inference.pdiparams in that folder, or %s.pdiparams); pass CHECKPOINT=<checkpoint path without .pdparams> "
        "or CHECKPOINT=<inference model folder>" % (path, source, training_prefix(path), training_prefix(path)))


# ---------------------------------------------------------------------------------------
# The files
# ---------------------------------------------------------------------------------------
def _varint(buf, i):
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(buf):
    """(field number, value) of a protobuf message: ints for varints, bytes otherwise."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        wire = key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = buf[i:i + size], i + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, i = buf[i:i + size], i + size
        else:
            raise ValueError("protobuf wire type %d" % wire)
        yield key >> 3, value


def _tensor_desc(buf):
    """(dtype code, dims) of a framework.proto TensorDesc (dims packed or not)."""
    dtype, dims = None, []
    for field, value in _fields(buf):
        if field == 1:
            dtype = value
        elif field == 2 and isinstance(value, int):
            dims.append(value - (1 << 64) if value >= 1 << 63 else value)
        elif field == 2:
            j = 0
            while j < len(value):
                d, j = _varint(value, j)
                dims.append(d - (1 << 64) if d >= 1 << 63 else d)
    return dtype, dims


def pdmodel_params(data):
    """{name: shape} of the persistable dense tensors of a ProgramDesc's global block."""
    params = {}
    blocks = [v for f, v in _fields(data) if f == 1]
    for field, var in _fields(blocks[0]) if blocks else ():
        if field != 3:  # BlockDesc.vars
            continue
        desc = dict((f, v) for f, v in _fields(var))  # VarDesc: 1 name, 2 type, 3 persistable
        if not desc.get(3):
            continue
        kind = dict((f, v) for f, v in _fields(desc[2]))  # VarType: 1 type, 3 dense tensor desc
        if kind.get(1) != DENSE_TENSOR or 3 not in kind:
            continue
        tensor = dict((f, v) for f, v in _fields(kind[3])).get(1, b"")
        params[desc[1].decode("utf-8")] = _tensor_desc(tensor)[1]
    return params


def json_params(program):
    """{name: shape} of the parameters (builtin.parameter ops, "p") of a PIR program."""
    params = {}

    def walk(regions):
        for region in regions:
            for block in region.get("blocks", ()):
                for op in block.get("ops", ()):
                    if op.get("#") == "p":
                        params[op["A"][3]] = list(op["O"]["TT"]["D"][1])
                    walk(op.get("regions", ()))

    walk(program["program"]["regions"])
    return params


def read_tensors(path):
    """The tensors of a .pdiparams file, in file order (Paddle's save_combine stream: per
    tensor a LoD header, a TensorDesc and the raw data)."""
    with open(path, "rb") as f:
        data = f.read()
    out, i = [], 0
    while i < len(data):
        _, lod_levels = struct.unpack_from("<IQ", data, i)
        i += 12
        for _ in range(lod_levels):
            (size,) = struct.unpack_from("<Q", data, i)
            i += 8 + size
        _, desc_size = struct.unpack_from("<Ii", data, i)
        i += 8
        code, dims = _tensor_desc(data[i:i + desc_size])
        i += desc_size
        if code not in DTYPES:
            raise ValueError("tensor data type %s" % code)
        dtype = np.dtype(DTYPES[code])
        count = int(np.prod(dims)) if dims else 1
        if i + count * dtype.itemsize > len(data):
            raise ValueError("the file ends inside tensor %d" % (len(out) + 1))
        out.append(np.frombuffer(data, dtype, count, i).reshape(dims))
        i += count * dtype.itemsize
    return out


class InferenceModel:
    """The files of an inference model at a path prefix: .tensors {variable name: array},
    .structured {variable name: structured name} (None without .pdiparams.info), .program
    (the program file's name). InferenceModelError when they are missing or do not agree."""

    def __init__(self, prefix):
        self.prefix = prefix
        programs = [prefix + ext for ext in PROGRAMS if os.path.isfile(prefix + ext)]
        if not programs:
            raise InferenceModelError("inference model %s has no program (%s); pass the folder tools/export_model.py "
                                      "wrote, with all its files" % (prefix, " or ".join(DEFAULT_NAME + e for e in PROGRAMS)))
        self.program = programs[0]
        try:
            if self.program.endswith(".json"):
                with open(self.program, encoding="utf-8") as f:
                    shapes = json_params(json.load(f))
            else:
                with open(self.program, "rb") as f:
                    shapes = pdmodel_params(f.read())
            tensors = read_tensors(prefix + PARAMS)
        except (ValueError, KeyError, IndexError, TypeError, struct.error) as e:
            raise InferenceModelError("inference model %s cannot be read (%s: %s); pass an inference model that "
                                      "tools/export_model.py wrote" % (prefix, type(e).__name__, e)) from None
        names = sorted(shapes)
        if len(names) != len(tensors) or any(list(shapes[n]) != list(t.shape) for n, t in zip(names, tensors)):
            raise InferenceModelError(
                "inference model %s: its %s holds %d tensors that do not fit the %d parameters %s names; pass "
                "the files of one export" % (prefix, os.path.basename(prefix + PARAMS), len(tensors), len(names),
                                            os.path.basename(self.program)))
        self.tensors = dict(zip(names, tensors))
        self.structured = None
        if os.path.isfile(prefix + INFO):
            with open(prefix + INFO, "rb") as f:
                info = pickle.load(f)
            self.structured = {n: info[n]["structured_name"] for n in names if n in info}

    def named(self):
        """({name: tensor}, by_variable): by structured name where .info gives one, else by
        variable name (by_variable True: the model's own variable names place them)."""
        if self.structured is None:
            return self.tensors, True
        return {self.structured.get(var, var): t for var, t in self.tensors.items()}, False


# ---------------------------------------------------------------------------------------
# Placement
# ---------------------------------------------------------------------------------------
def renamed(name, keys):
    """name as the model calls it (RENAMES), or None."""
    for pattern, new, _ in RENAMES:
        candidate = re.sub(pattern, new, name)
        if candidate != name and candidate in keys:
            return candidate
    return None


class Placement:
    """Where each of `named` {name: tensor} goes in a model whose parameters are params
    {structured name: (variable name, shape)}: .state {structured name: tensor}, .unplaced
    [names with no home, or a home of another shape], .unweighted [what `read` (the
    parameters the forward reads) holds that got nothing], .absent [the model's other
    parameters left without], .renamed (count). by_variable: the names are variable names."""

    def __init__(self, named, params, read, by_variable=False):
        self.state, self.unplaced, self.renamed = {}, [], 0
        key_of_variable = {var: key for key, (var, _) in params.items()}
        for name, tensor in named.items():
            if by_variable:
                key = key_of_variable.get(name)
            else:
                key = name if name in params else renamed(name, params)
                self.renamed += key is not None and key != name
            if key is None or list(params[key][1]) != list(tensor.shape) or key in self.state:
                self.unplaced.append(name if key is None else "%s (%s)" % (name, key))
            else:
                self.state[key] = tensor
        self.unweighted = sorted(k for k in read if k not in self.state)
        self.absent = sorted(k for k in params if k not in self.state and k not in read)

    def complete(self):
        return not self.unplaced and not self.unweighted

    def problem(self, what, form, by_variable=False):
        """The one line that refuses this placement of `what` (e.g. "inference model X")."""
        parts = []
        if self.unplaced:
            parts.append("%d of its tensors have no parameter of that name and shape in the %s model (%s)"
                         % (len(self.unplaced), form, _some(self.unplaced)))
        if self.unweighted:
            parts.append("%d parameters the model reads would stay without weights (%s)"
                         % (len(self.unweighted), _some(self.unweighted)))
        why = "; ".join(parts)
        if by_variable:
            why += ("; without .pdiparams.info the tensors are placed by the names the exporting process gave "
                    "them, so export the model again with this release's tools/export_model.py "
                    "(-o Global.export_with_pir=False writes the .info) or pass the training checkpoint")
        else:
            why += "; pass the weights of this config"
        return "%s does not fit this config: %s" % (what, why)


FORMS = ("as trained", "re-parameterised")


def reparameterise(model):
    """rep() on every layer of model that has one, in order, as upstream's export_model.py
    does it (a rep() may rep what comes later); False when no layer has one. Also what the
    kit's patch 0006 runs when a training config asks for the re-parameterised form."""
    rep_layers = [layer for layer in model.sublayers() if hasattr(layer, "rep")]
    for layer in rep_layers:
        if not getattr(layer, "is_repped", False):
            layer.rep()
    return bool(rep_layers)


def place(model, net, named, read, **how):
    """(Placement, form) of named tensors in net (model or one of its sub-models): as
    trained, else, where the model has layers with rep(), re-parameterised as upstream's
    export_model.py does it (rep() on every layer of the model, in order); the complete
    one, else the one that placed most. read(net): the keys net's forward reads."""
    best = None
    for form in FORMS:
        if form == "re-parameterised" and not reparameterise(model):
            break
        params = {k: (v.name, v.shape) for k, v in net.state_dict().items()}
        placed = Placement(named, params, read(net), **how)
        if placed.complete():
            return placed, form
        if best is None or len(placed.state) > len(best[0].state):
            best = (placed, form)
    return best


def parts_of(keys, depth=2):
    """{'head.gtc_head': 84, ...}: parameters counted by their first `depth` name parts."""
    out = {}
    for key in keys:
        part = ".".join(key.split(".")[:depth])
        out[part] = out.get(part, 0) + 1
    return out


def _some(names, count=3):
    return ", ".join(names[:count]) + (", ..." if len(names) > count else "")
