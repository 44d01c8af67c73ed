"""The fork script (tools/export_center.py) as a module: it holds the config derivation
and the center math, and imports nothing from Paddle until it runs, so the kit's checks
use that one copy instead of a second."""

import importlib.util

from . import FORK_SCRIPT

_spec = importlib.util.spec_from_file_location("ppocr_center_kit_export", FORK_SCRIPT)
export_center = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(export_center)
