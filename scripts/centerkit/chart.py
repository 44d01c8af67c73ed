"""The samples-per-class chart of a centers pkl, drawn with matplotlib (Agg, no display):
left, the TOP_N classes with the most samples as bars labelled by class index, class 0 as
BLANK in its own colour (CTC's blank, not a character; log axis when the counts span
LOG_RATIO or more, as the blank alone usually makes them);
right, a histogram of how many classes have how many samples. Readable alike for ten
classes and for the thousands of a Chinese dictionary."""

import io
import json

import numpy as np

from . import KitError, files

TOP_N = 40
LOG_RATIO = 50
SIZE = (11, 4.2)  # inches, at DPI: 1100 x 420 px whatever the number of classes
DPI = 100
BLANK = "blank"  # class 0's tick label
BAR, BLANK_BAR = "#4c72b0", "#8c8c8c"


def text_fonts():
    """Font families for labels that may hold Chinese characters: DejaVu Sans, matplotlib's
    own, then Noto Sans CJK SC where the demo's pinned font is in the kit's cache
    (matplotlib takes each glyph from the first family that has it); else DejaVu alone,
    whose missing glyphs show as boxes."""
    import logging

    from matplotlib import font_manager

    from .released_models import cached_cjk_font

    path = cached_cjk_font()
    if path is None:
        return ["DejaVu Sans"]
    if not any(f.fname == path for f in font_manager.fontManager.ttflist):
        font_manager.fontManager.addfont(path)
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # the variable font's weights
    return ["DejaVu Sans", "Noto Sans CJK SC"]


def figure(samples_per_class, scale="auto"):
    """A matplotlib Figure of {class index: samples} (keys str or int, counts positive):
    axes[0] the top classes, tallest first, axes[1] the histogram of all the counts."""
    # matplotlib: a requirement the kit checks when it starts (centerkit.require_kit_modules)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    classes = sorted(samples_per_class.items(), key=lambda kv: (-kv[1], int(kv[0])))
    counts = np.array([n for _, n in classes], np.float64)
    if counts.size == 0 or counts[-1] < 1:
        raise KitError("no samples per class to chart (the report lists none)")
    log = scale == "log" or (scale == "auto" and counts[0] / counts[-1] >= LOG_RATIO)
    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    top, hist = fig.subplots(1, 2, width_ratios=(3, 2))

    shown = classes[:TOP_N]
    is_blank = [int(c) == 0 for c, _ in shown]
    top.bar(range(len(shown)), [n for _, n in shown], color=[BLANK_BAR if b else BAR for b in is_blank],
            edgecolor="white", linewidth=0.5)
    crowded = len(shown) > 12
    top.set_xticks(range(len(shown)), [BLANK if b else str(c) for b, (c, _) in zip(is_blank, shown)],
                   rotation=90 if crowded else 0, fontsize=7 if crowded else 9)
    top.set_yscale("log" if log else "linear")
    top.set_xlabel("class index (%s: class 0, the CTC blank)" % BLANK if any(is_blank) else "class index")
    top.set_ylabel("samples")
    top.set_title("the %d classes with the most samples, of %d" % (len(shown), len(classes)))

    if log:
        bins = np.geomspace(counts[-1], counts[0] * 1.0001, 30)
        hist.set_xscale("log")
    elif counts[0] - counts[-1] < 30:  # one bin per count
        bins = np.arange(counts[-1], counts[0] + 2) - 0.5
    else:
        bins = 30
    hist.hist(counts, bins=bins, color="#55a868", edgecolor="white", linewidth=0.5)
    hist.yaxis.set_major_locator(MaxNLocator(integer=True))
    hist.set_xlabel("samples per class")
    hist.set_ylabel("classes")
    blank = next((n for c, n in classes if int(c) == 0), None)
    hist.set_title("samples per class, %d classes%s" % (len(classes), "" if blank is None else
                                                        " (the blank's %d among them)" % blank))
    return fig


def png(samples_per_class, scale="auto"):
    """The chart as PNG bytes."""
    out = io.BytesIO()
    figure(samples_per_class, scale).savefig(out, format="png")
    return out.getvalue()


def write(path, samples_per_class, force, scale="auto"):
    """Write the chart of a report's samples_per_class atomically; never over a file unless force."""
    files.write_new(path, png(samples_per_class, scale), force)


def write_of_report(report_path, path, force):
    """`make export`'s chart, of the report the export script wrote (the kit draws it, so the
    script needs no plotting library)."""
    try:
        with open(report_path, encoding="utf-8") as f:
            counts = json.load(f).get("samples_per_class")
    except (OSError, ValueError) as e:
        raise KitError("the export wrote no readable report %s (%s), so no samples chart was drawn" % (report_path, e))
    if not counts:
        return
    write(path, counts, force)
    print("wrote %s" % path, flush=True)
