"""The kit's modules, which the Makefile's entry points import (commands.py is the user
commands): here the kit's paths, KitError and the one-line error every entry point prints."""

import os

KIT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATCHES_DIR = os.path.join(KIT_ROOT, "patches")
EXPORT_SCRIPT = os.path.join(KIT_ROOT, "tools", "export_center.py")  # the drop-in script
LOSS_SOURCE = os.path.join(KIT_ROOT, "tools", "kit_center_loss.py")  # patch 0003 adds it to the clone


class KitError(Exception):
    """A problem the user can fix: printed as one line naming the fix, exit code 2."""


def flag(value):
    """A Makefile switch such as FORCE=: empty, 0, false and no mean off."""
    return str(value).lower() not in ("", "0", "false", "no")


def run_tool(command, argv):
    """Exit code of a kit tool's command: a KitError (or the export script's ExportError)
    becomes the kit's one-line error on stderr and exit code 2, as for the Makefile targets."""
    import sys

    from .export_script import export_script

    try:
        return command(argv)
    except (KitError, export_script.ExportError) as e:
        print("ppocr-center-kit: error: %s" % e, file=sys.stderr)
        return 2
