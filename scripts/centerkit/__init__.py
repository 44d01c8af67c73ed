"""ppocr-center-kit machinery: the Makefile drives it through `python -m centerkit`."""

import os

KIT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATCHES_DIR = os.path.join(KIT_ROOT, "patches")
FORK_SCRIPT = os.path.join(KIT_ROOT, "tools", "export_center.py")


class KitError(Exception):
    """A problem the user can fix: printed as one line naming the fix, exit code 2."""
