"""Files the kit writes and the names it gives them: atomic writes (a temp file beside the
target, fsynced, then renamed), the rule that an existing file is only replaced with
FORCE=1, and where the report and the samples chart of a centers pkl lie.

The export script has the rules for what it writes (report name, temp files, the FORCE
rule, publishing without clobbering): it may not import the kit, so the kit takes them from
it, and what a killed export leaves is found by the same rule that named it.
"""

import contextlib
import os
import re

from . import export_errors
from .dropins import kit_export
from .faults import fault_point

temp_prefix = kit_export.output_files.temp_prefix  # how a temp file of a write to path starts


def report_path(pkl_path):
    """The export's report beside a pkl: `<pkl without .pkl>.report.json`."""
    return kit_export.config.output_paths({"Export": {"output": pkl_path}})[1]


def chart_path(pkl_path):
    """The samples-per-class chart beside a pkl: `<pkl without .pkl>.samples.png`."""
    return os.path.splitext(pkl_path)[0] + ".samples.png"


def remove_temps(path):
    """Remove what a killed write to path left beside it (its temp files)."""
    folder = os.path.dirname(os.path.abspath(path))
    pattern = re.compile(re.escape(temp_prefix(path)) + r"[a-z0-9_]{8}$")
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            if pattern.match(name):
                os.unlink(os.path.join(folder, name))


def blocked(path, force):
    """Whether a write to path is refused: it exists and FORCE is off."""
    return os.path.exists(path) and not force


def refuse_existing(paths, force):
    """KitError naming FORCE=1 for the first of paths that exists, unless force."""
    with export_errors():
        kit_export.output_files.refuse_existing(paths, force, "FORCE=1")


def write_atomic(path, data, mode=None, fault=None):
    """Write bytes to path so that a kill or a full disk leaves the old file (or none) and
    never part of one. mode: the file's mode (default: an ordinary file under the umask).
    fault: the faults.fault_point reached once the temp is written."""
    tmp = kit_export.output_files.temp_copy(path, data, mode)
    try:
        if fault:
            fault_point(fault)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_new(path, data, force):
    """An output written as the export writes its own (kit_export.output_files.write_files), never
    over an existing file unless force: KitError with the fix when it exists or cannot be
    written."""
    refuse_existing([path], force)
    with export_errors():
        kit_export.output_files.write_files({path: data}, force)


def sha256(path):
    """The sha256 hex digest of a file, read in blocks (a large download is not read whole)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
