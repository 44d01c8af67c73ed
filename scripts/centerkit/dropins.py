"""The drop-in files the kit's own process uses as modules, loaded from dropin/ by path.

In a patched clone they are tools/export_center.py and ppocr modules, which cannot import
the kit; so the kit imports them, one definition each, instead of keeping copies. None of
them imports Paddle until it runs something.
"""

import importlib.util
import os

from . import DROPIN_DIR, export_errors


def load(relative):
    """The drop-in file at `relative` (its path in the clone) as a module of its own."""
    name = "ppocr_center_kit_" + os.path.splitext(os.path.basename(relative))[0]
    spec = importlib.util.spec_from_file_location(name, os.path.join(DROPIN_DIR, *relative.split("/")))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


inference_model = load("ppocr/utils/kit_inference_model.py")


def check_weights(path, source="CHECKPOINT"):
    """'checkpoint' or 'inference' for the weights at path (absolute), an inference model's
    files read as the export will read them (program, tensors, .info): else the one-line
    KitError, before Paddle starts."""
    with export_errors():
        kind = inference_model.weights_kind(path, source)
        if kind == "inference":
            inference_model.InferenceModel(inference_model.inference_prefix(path))
        return kind
