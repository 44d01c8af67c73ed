"""The centers pkl format for the kit's own process: the one definition is the drop-in
dropin/ppocr/losses/kit_center_file.py (the kit's loss reads its centers with it in the
clone), loaded here from its path (dropins.py), and its
CenterFileError turned into the kit's one-line KitError."""

from . import KitError
from .dropins import load

center_file = load("ppocr/losses/kit_center_file.py")
STOCK_FORMAT = center_file.STOCK_FORMAT


def load(path):
    """(centers with int keys, width, STOCK_FORMAT or "") of a pkl in CenterLoss's format,
    else KitError naming the problem."""
    try:
        return center_file.load(path)
    except center_file.CenterFileError as e:
        raise KitError(str(e)) from None

