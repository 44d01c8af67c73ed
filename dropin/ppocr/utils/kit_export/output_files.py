# ppocr-center-kit: output_files.py, added to PaddleOCR as ppocr/utils/kit_export/output_files.py by the kit's
# patch common/0005. Written for ppocr-center-kit (MIT); it imports PaddleOCR at run time and copies none of it.
"""The export's outputs written without losing anything: an existing file is refused
unless FORCE, each is written to a temp file beside it and published by a rename.
"""

import os
import tempfile

from .errors import ExportError


def refuse_existing(paths, force, how_to_force="FORCE=1 (-o Export.force=true)"):
    for path in paths:
        if os.path.exists(path) and not force:
            raise ExportError("%s exists; remove it or pass %s" % (path, how_to_force))


def temp_prefix(path):
    """What write_files' temp file for path starts with (mkstemp adds 8 characters): a
    killed export leaves it behind, and the kit's revert removes it."""
    return ".%s." % os.path.basename(path)


def temp_copy(path, data, mode=None):
    """A temp file beside path holding data, fsynced, with mode (default: an ordinary file
    under the umask; mkstemp makes 0600): the one way the export and the kit write a file
    before its rename. Nothing is left behind if this fails."""
    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), dir=os.path.dirname(os.path.abspath(path)))
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def write_files(files, force):
    """Write {path: bytes}: every temp file is written and fsynced first, then each is
    published, so a full disk leaves the old files (or none) and never a partial file; only
    a kill between two publishes can mix old and new. Without force, publishing links the
    temp file (which fails if the name exists), so a file that appeared since the check is
    not clobbered either."""
    refuse_existing(files, force)
    temps, path = {}, None
    try:
        for path, data in files.items():
            temps[path] = temp_copy(path, data)
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
