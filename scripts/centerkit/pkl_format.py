"""The centers pkl format for the kit's own process: the one definition is the drop-in
dropin/ppocr/losses/kit_center_file.py (the kit's loss reads its centers with it in the
clone), loaded by dropins.py; its CenterFileError becomes the kit's one-line KitError."""

from . import export_errors
from .dropins import center_file

STOCK_FORMAT = center_file.STOCK_FORMAT


def load(path):
    """(centers with int keys, width, STOCK_FORMAT or "") of a pkl in CenterLoss's format,
    else KitError naming the problem."""
    with export_errors():
        return center_file.load(path)
