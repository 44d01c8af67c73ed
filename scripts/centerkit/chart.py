"""A bar chart of samples per class as a PNG, with numpy, zlib and struct only: the kit
must not pull an imaging library into the Python that trains.

Classes are sorted by count (most first), so the chart shows how quickly the training data
runs out of examples; the y axis is logarithmic when the counts span more than LOG_RATIO
(the blank class alone usually does), with a few tick labels in a 3x5 pixel font.
"""

import os
import struct
import zlib

import numpy as np

from . import KitError
from .fork import export_center as ec

LOG_RATIO = 50
PLOT_H, MAX_PLOT_W, SCALE = 200, 900, 2  # plot height, widest plot (px), font scale
INK, BAR, GRID, PAPER = 0, 90, 215, 255

_GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001001001001", "8": "111101111101111",
    "9": "111101111001111", "k": "100101110101101", "M": "101111111101101",
}


def png_path(pkl_path):
    """Where the chart of a centers pkl goes: `<pkl without .pkl>.samples.png`."""
    return os.path.splitext(pkl_path)[0] + ".samples.png"


def png_bytes(pixels):
    """An 8-bit grayscale PNG of a 2-D uint8 array."""
    pixels = np.ascontiguousarray(pixels, np.uint8)
    h, w = pixels.shape
    raw = np.hstack([np.zeros((h, 1), np.uint8), pixels]).tobytes()  # filter byte 0 per row

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def label(value):
    value = int(value)
    for unit, size in (("M", 10**6), ("k", 10**3)):
        if value >= size and value % size == 0:
            return "%d%s" % (value // size, unit)
    return str(value)


def _text(img, x, y, text):
    """Draw text with its top-left corner at (x, y), clipped at the image edges."""
    for i, ch in enumerate(text):
        glyph = np.array([int(b) for b in _GLYPHS[ch]], bool).reshape(5, 3)
        big = np.kron(glyph, np.ones((SCALE, SCALE), bool))
        x0 = x + i * 4 * SCALE
        region = img[y:y + big.shape[0], x0:x0 + big.shape[1]]
        region[big[: region.shape[0], : region.shape[1]]] = INK


def _text_width(text):
    return len(text) * 4 * SCALE - SCALE


def _ticks(top, log):
    """Tick values from 0 (linear) or 1 (log) up to top, at most about five of them."""
    if log:
        return [10**k for k in range(int(np.log10(top)) + 1)]
    step = 10 ** int(np.floor(np.log10(top)))
    for mult in (1, 2, 5, 10):
        if top / (step * mult) <= 5:
            step *= mult
            break
    return list(range(0, int(top) + 1, int(step)))


def render(counts, scale="auto"):
    """uint8 image of one bar per class, tallest first. counts: positive ints."""
    counts = np.sort(np.asarray(list(counts), np.float64))[::-1]
    if counts.size == 0 or counts[-1] < 1:
        raise KitError("no samples per class to chart (the report lists none)")
    log = scale == "log" or (scale == "auto" and counts[0] / counts[-1] >= LOG_RATIO)
    if log:
        top = 10 ** np.ceil(np.log10(counts[0])) if counts[0] > 1 else 10
        heights = np.log10(counts) / np.log10(top)
    else:
        ticks = _ticks(counts[0], False)
        top = ticks[-1] if ticks[-1] >= counts[0] else ticks[-1] + (ticks[1] - ticks[0])
        heights = counts / top
    ticks = [t for t in _ticks(top, log) if t <= top]
    if ticks[-1] < top:
        ticks.append(int(top))

    n = counts.size
    bar_w = max(1, min(20, 600 // n))
    plot_w = min(n * bar_w, MAX_PLOT_W)
    # More classes than columns: a column shows the largest count of the classes it covers.
    cols = np.minimum((np.arange(plot_w) * n) // plot_w, n - 1)
    col_h = np.rint(heights[cols] * PLOT_H).astype(int).clip(1, PLOT_H)
    if bar_w >= 4:  # a gap between bars wide enough to see
        col_h[np.arange(plot_w) % bar_w == bar_w - 1] = 0

    left = max(_text_width(label(t)) for t in ticks) + 5 * SCALE
    pad, glyph_h = 4 * SCALE, 5 * SCALE
    width = left + plot_w + pad + _text_width(label(n)) // 2
    height = pad + PLOT_H + pad + glyph_h + pad
    img = np.full((height, width), PAPER, np.uint8)
    base = pad + PLOT_H  # row of the x axis
    for t in ticks:
        frac = (np.log10(t) / np.log10(top)) if log else t / top
        y = base - int(round(frac * PLOT_H))
        img[y, left:left + plot_w] = GRID
        _text(img, left - SCALE * 3 - _text_width(label(t)), max(0, y - glyph_h // 2), label(t))
    rows = np.arange(height)[:, None]
    bars = (rows < base) & (rows >= base - col_h[None, :])
    img[:, left:left + plot_w][bars] = BAR
    img[pad:base + 1, left - 3] = INK  # 2 px off the first bar, which may be 1 px wide
    img[base, left - 3:left + plot_w] = INK
    # x labels: class ranks 1 (leftmost) and n (rightmost).
    _text(img, left, base + pad, "1")
    _text(img, left + plot_w - _text_width(label(n)) // 2 - 1, base + pad, label(n))
    return img


def write(path, samples_per_class, force, scale="auto"):
    """Write the chart of a report's samples_per_class atomically; never over a file unless force."""
    data = png_bytes(render(samples_per_class.values(), scale))
    try:
        ec.write_files({path: data}, force)
    except ec.ExportError as e:
        raise KitError(str(e))
