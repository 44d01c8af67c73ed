"""The kit's modules, which the Makefile's entry points import (commands.py is the user
commands): here the kit's paths, KitError and the one-line error every entry point prints."""

import os

PREFIX = "ppocr-center-kit:"  # of every line the kit and its children print for the user (the export child's too)
KIT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATCHES_DIR = os.path.join(KIT_ROOT, "patches")
# dropin/ mirrors the tree: the files the patches put there, at the same paths
DROPIN_DIR = os.path.join(KIT_ROOT, "dropin")
with open(os.path.join(KIT_ROOT, "VERSION"), encoding="utf-8") as _f:
    VERSION = _f.read().strip()  # the kit's version (CHANGELOG.md); every report records it
LOSS_SOURCE = os.path.join(DROPIN_DIR, "ppocr", "losses", "kit_center_loss.py")  # the training loss


# requirements.txt's pip names whose module has another name (the rest import as they are named)
MODULE_OF = {"pyyaml": "yaml", "gitpython": "git"}


def kit_requirements():
    """[(module, pip name)] of requirements.txt: every one the kit's process imports, some
    only late (matplotlib for a chart after the recognition of every line)."""
    import re

    with open(os.path.join(KIT_ROOT, "requirements.txt"), encoding="utf-8") as f:
        names = [re.match(r"[A-Za-z0-9_.\-]+", l).group(0) for l in (l.split("#")[0].strip() for l in f) if l]
    return [(MODULE_OF.get(n.lower(), n.lower()), n) for n in names]


def require_kit_modules():
    """Exit 2 with one line naming the pip command when this Python (the Makefile's PYTHON)
    lacks a module of requirements.txt. Checked on import, before any command reads a tree:
    without gitpython the release would be misread from the tree's version file, and the
    fix named ("check out a supported tag") would be the wrong one; without matplotlib
    `make confusions` would die after recognising every line."""
    import importlib.util
    import sys

    missing = [pip for module, pip in kit_requirements() if importlib.util.find_spec(module) is None]
    if missing:
        print_error('%s lacks %s, which the kit needs; run "%s" -m pip install -r %s (or pass PYTHON=<a Python that '
                    "has them>)" % (sys.executable, ", ".join(missing), sys.executable,
                                    os.path.join(KIT_ROOT, "requirements.txt")))
        raise SystemExit(2)


def print_error(message):
    """The kit's one error line, on stderr (and under GitHub Actions also as an annotation:
    centerkit.github). Every entry point's errors come here; the drop-ins, which cannot
    import the kit, print theirs the same way (kit_export/errors.py's print_error)."""
    import sys

    from . import github

    print("%s error: %s" % (PREFIX, message), file=sys.stderr, flush=True)
    github.error(message)


require_kit_modules()


class KitError(Exception):
    """A problem the user can fix: printed as one line naming the fix, exit code 2."""


class export_errors:
    """`with export_errors():` turns the drop-ins' one-line errors (the export's ExportError,
    inference_model's InferenceModelError, the pkl reader's CenterFileError: they cannot
    import the kit, so they have their own classes) into KitError, for the kit's code that
    calls their functions: the one place they meet."""

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        from .dropins import center_file, kit_export

        errors = (kit_export.errors.ExportError, kit_export.inference_model.InferenceModelError, center_file.CenterFileError)
        if kind is not None and issubclass(kind, errors):
            raise KitError(str(value)) from None
        return False


def flag(value):
    """A Makefile switch such as FORCE=: empty, 0, false and no mean off."""
    return str(value).lower() not in ("", "0", "false", "no")


def run_tool(command, argv):
    """Exit code of a kit tool's command: a KitError (or a drop-in's error, export_errors)
    becomes the kit's one-line error on stderr and exit code 2, as for the Makefile targets;
    Ctrl-C (or SIGTERM, see supervise.interrupt_on_term) one line and 130, not a traceback."""
    import sys

    try:
        with export_errors():
            return command(argv)
    except KitError as e:
        print_error(str(e))
        return 2
    except KeyboardInterrupt:
        print("ppocr-center-kit: interrupted", file=sys.stderr)
        return 130
