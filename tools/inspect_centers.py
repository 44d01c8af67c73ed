"""Print the report of an existing centers pkl (`make inspect CENTERS=... [DICT=...]`).

The export's `<pkl without .pkl>.report.json` is used when it lies beside the pkl (and must
describe this pkl); otherwise the report is built from the pkl alone, with DICT= naming
the characters left without a center. The pkl's format is checked strictly first. When
the report has samples per class, their chart is written beside it as
`<pkl without .pkl>.samples.png` (an existing one only with FORCE=1). Needs only numpy
and pyyaml (and matplotlib for the chart): the table and the summary are the export
script's own. Run by the Makefile, which puts the kit's scripts/ on PYTHONPATH.
"""

import argparse
import json
import os
import re
import sys

from centerkit import KitError, chart, files, flag, preflight, run_tool
from centerkit import pkl_format as pkl
from centerkit.dropins import kit_export

UNKNOWN = "unknown"
# Rows of format_report whose values the pkl alone cannot give; they are numbers there.
SAMPLE_ROWS = ("samples per class", "lines read per label file")
DICT_ROWS = ("classes with a center", "classes out of the dictionary", "characters without a center")
BLANK_ROW = "CTC blank (class 0)"


def read_report(path, centers, width):
    """The export's report, if it describes these centers; else KitError."""
    try:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        raise KitError("%s cannot be read as JSON (%s); delete it or re-export" % (path, e))
    listed = report.get("samples_per_class")
    classes = sorted(int(c) for c in listed) if isinstance(listed, dict) else None
    if (classes is not None and classes != sorted(centers)) or report.get("classes_with_center") != len(centers) \
            or report.get("feature_width") != width:
        extra = sorted(set(centers) - set(classes or []))[:5] if classes is not None else []
        raise KitError(
            "%s does not describe this pkl (it lists %s classes of width %s, the pkl holds %d of width %d%s); "
            "it is stale: re-export, or delete it to inspect the pkl alone"
            % (path, report.get("classes_with_center"), report.get("feature_width"), len(centers), width,
               ", e.g. class %s only in the pkl" % extra if extra else "")
        )
    return report


def dictionary(path, centers):
    """CTCLabelDecode's classes for a dictionary file: blank, one per line, then the space
    class when the pkl has a center there (use_space_char is in the config, not the pkl)."""
    try:
        with open(path, "rb") as f:
            chars = [line.decode("utf-8").strip("\n").strip("\r\n") for line in f.readlines()]
    except (OSError, UnicodeDecodeError) as e:
        raise KitError("dictionary %s cannot be read (%s); pass DICT=<the character_dict_path you trained with>" % (path, e))
    return ["blank"] + chars + ([" "] if len(chars) + 1 in centers else [])


def pkl_only_report(centers, dict_chars):
    """(report, {row: text}) from the pkl alone; the rows are those format_report cannot
    show without numbers the pkl does not hold (the export's sample counts, a dictionary)."""
    meta = {k: UNKNOWN for k in ("images_seen", "images_used", "model", "checkpoint", "release")}
    no_dict = dict_chars is None
    if no_dict:  # a stand-in, so summarize runs; its dictionary rows are replaced below
        dict_chars = ["?"] * (max(centers) + 1)
    report = kit_export.report.summarize(centers, {c: 0 for c in centers}, dict_chars, meta)
    if no_dict:  # the closest pairs by class index alone
        report["closest_center_pairs"] = kit_export.report.closest_pairs(centers, None)
    rows = {r: UNKNOWN + " (only the export's report.json has the counts)" for r in SAMPLE_ROWS}
    blank = 0 in centers  # class 0 is CTC's blank whatever the dictionary
    rows[BLANK_ROW] = "a center, samples %s (only the export's report.json has the counts)" % UNKNOWN if blank else "no center"
    if no_dict:
        rows.update({r: UNKNOWN + " (pass DICT=<character dict>)" for r in DICT_ROWS})
        rows["classes with a center"] = "%d %s (of a dictionary not given: DICT=)" % (
            len(centers) - blank, "besides the CTC blank" if blank else "classes, not the CTC blank")
    return report, rows


def replace_rows(table, rows):
    """format_report's table with the values of some rows (by label prefix) replaced."""
    out = []
    for line in table.splitlines():
        m = re.match(r"(\S.*?)\s{2,}", line)
        if m:
            line = next((m.group(0) + v for k, v in rows.items() if m.group(1).startswith(k)), line)
        out.append(line)
    return "\n".join(out)


def write_chart(pkl_path, report, force):
    """One line saying what happened to the samples chart."""
    counts = report.get("samples_per_class")
    if not counts:
        return "chart     none: the report has no samples per class"
    path = files.chart_path(pkl_path)
    if files.blocked(path, force):
        return "chart     %s exists, kept (FORCE=1 rewrites it)" % path
    chart.write(path, counts, force)
    return "chart     wrote %s" % path


def inspect(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("centers")
    p.add_argument("--dict", default="", help="character dictionary, names the missing characters")
    p.add_argument("--force", default="", help="rewrite an existing chart")
    a = p.parse_args(argv)
    preflight.centers_path(a.centers, os.getcwd())  # given, and a file: as every command checks CENTERS=
    centers, width, stock = pkl.load(a.centers)
    rpath = files.report_path(a.centers)
    print("centers   %s: %d classes, width %d%s" % (a.centers, len(centers), width, ", " + stock if stock else ""))
    if os.path.exists(rpath):
        report = read_report(rpath, centers, width)
        try:
            table = kit_export.report.format_report(report)
        except (KeyError, TypeError, ValueError) as e:
            raise KitError("%s lacks what the export writes (%s: %s); re-export" % (rpath, type(e).__name__, e))
        print("report    %s" % rpath)
    else:
        report, rows = pkl_only_report(centers, dictionary(a.dict, centers) if a.dict else None)
        table = replace_rows(kit_export.report.format_report(report), rows)
        print("report    none beside the pkl (%s): what the pkl alone tells" % os.path.basename(rpath))
    print(table)
    print(write_chart(a.centers, report, flag(a.force)))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(inspect, sys.argv[1:]))
