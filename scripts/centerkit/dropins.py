"""The drop-in modules the kit's own process uses, one definition each, instead of copies.

In a patched clone they are ppocr modules, which cannot import the kit; so the kit imports
them: the export's package dropin/ppocr/utils/kit_export/ (ppocr.utils.kit_export in the
clone) as the package `kit_export` (its modules import each other relatively and nothing
from Paddle until a function runs), and the training loss's pkl reader
(ppocr/losses/kit_center_file.py, imported relatively by the loss) from its path.
"""

import importlib.util
import os
import sys

from . import DROPIN_DIR, export_errors

_PACKAGE_PARENT = os.path.join(DROPIN_DIR, "ppocr", "utils")
if _PACKAGE_PARENT not in sys.path:
    sys.path.insert(0, _PACKAGE_PARENT)

import kit_export  # noqa: E402
import kit_export.center_math  # noqa: E402,F401  (each module the kit uses, loaded as kit_export.<module>)
import kit_export.cli  # noqa: E402,F401
import kit_export.config  # noqa: E402,F401
import kit_export.engines  # noqa: E402,F401
import kit_export.errors  # noqa: E402,F401
import kit_export.inference_model  # noqa: E402,F401
import kit_export.model  # noqa: E402,F401
import kit_export.output_files  # noqa: E402,F401
import kit_export.report  # noqa: E402,F401
import kit_export.run  # noqa: E402,F401


def load(relative):
    """The drop-in file at `relative` (its path in the clone) as a module of its own."""
    name = "ppocr_center_kit_" + os.path.splitext(os.path.basename(relative))[0]
    spec = importlib.util.spec_from_file_location(name, os.path.join(DROPIN_DIR, *relative.split("/")))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


center_file = load("ppocr/losses/kit_center_file.py")  # the pkl format (pkl_format.py)


def check_weights(path, source="CHECKPOINT"):
    """'checkpoint' or 'inference' for the weights at path (absolute), an inference model's
    files read as the export will read them (program, tensors, .info): else the one-line
    KitError, before Paddle starts."""
    kim = kit_export.inference_model
    with export_errors():
        kind = kim.weights_kind(path, source)
        if kind == "inference":
            kim.InferenceModel(kim.inference_prefix(path))
        return kind
