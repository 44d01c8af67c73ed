"""Files the kit writes and the names it gives them: atomic writes (a temp file beside the
target, fsynced, then renamed), the rule that an existing file is only replaced with
FORCE=1, and where the report and the samples chart of a centers pkl lie.

The export script writes its pkl and report by the same naming rules on its own (it may
not import the kit); tests/test_inspect_validate.py checks that both agree.
"""

import contextlib
import os
import re
import tempfile

from . import KitError
from .faults import fault_point


def report_path(pkl_path):
    """The export's report beside a pkl: `<pkl without .pkl>.report.json`."""
    return os.path.splitext(pkl_path)[0] + ".report.json"


def chart_path(pkl_path):
    """The samples-per-class chart beside a pkl: `<pkl without .pkl>.samples.png`."""
    return os.path.splitext(pkl_path)[0] + ".samples.png"


def temp_prefix(path):
    """How the temp file of a write to path starts (mkstemp adds 8 characters)."""
    return ".%s." % os.path.basename(path)


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
    for path in paths:
        if blocked(path, force):
            raise KitError("%s exists; remove it or pass FORCE=1" % path)


def write_atomic(path, data, mode=None, replace=True, fault=None):
    """Write bytes to path so that a kill or a full disk leaves the old file (or none) and
    never part of one. mode: the file's mode (default: an ordinary file under the umask).
    replace=False links the temp file into place, which fails with FileExistsError if the
    name exists meanwhile. fault: the faults.fault_point reached once the temp is written."""
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask  # mkstemp makes 0600
        os.chmod(tmp, mode)
        if fault:
            fault_point(fault)
        if not replace:
            try:
                os.link(tmp, path)
                os.unlink(tmp)
                return
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links: the caller's exists-check stands
                pass
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_new(path, data, force):
    """write_atomic of an output, never over an existing file unless force: KitError with
    the fix when it exists or cannot be written."""
    refuse_existing([path], force)
    try:
        write_atomic(path, data, replace=force)
    except FileExistsError:
        raise KitError("%s appeared while writing it; remove it or pass FORCE=1" % path)
    except OSError as e:  # full disk, read-only folder: one line, nothing left behind
        raise KitError("cannot write %s: %s; free space or choose another OUTPUT=" % (path, e.strerror or e))
