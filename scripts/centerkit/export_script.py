"""The drop-in script dropin/tools/export_center.py, loaded as the module `export_script` for the
knowledge only the export has: its option parsing and config derivation (load_config,
check_rec_ctc_config, derive_export_config, set_head_channels, weights_source), its
center math (CenterAccumulator, shard_indices) and its report (summarize, format_report).

The script must run alone inside a PaddleOCR clone, so it cannot import the kit; the kit
imports it instead of keeping a second copy. It imports nothing from Paddle until it runs.
files.py takes the rules of what the export writes from it too (names, temp files, FORCE).
"""

from .dropins import load

export_script = load("tools/export_center.py")
