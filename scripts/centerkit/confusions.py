"""Which characters a recognizer confuses (`make confusions`): each line's label aligned with
its prediction, the edits counted per character and per (label char, predicted char) pair,
and what the kit writes and prints of them. Pure Python (rapidfuzz, numpy; matplotlib for
the PNG): the recognition itself runs in the clone (tools/confusions_rec.py).

The alignment is rapidfuzz's Levenshtein.editops(label, prediction), one optimal edit
script of unit costs. Where several are optimal it takes the common prefix and suffix as
matches, then walks the DP matrix back from the end preferring, at each step, a deletion
(of a label character), then an insertion (of a predicted one), then the diagonal
(a substitution or a match). So a swap "0O" -> "O0" counts as one insertion of O and one
deletion of O, not as the substitutions 0->O and O->0; and a doubled character "aa" -> "a"
deletes the second.
"""

import collections
import json
import unicodedata

import numpy as np

TOP_PAIRS = 20  # rows of the printed table
MATRIX_PAIRS = 20  # the PNG's characters: those of the top pairs
SPACE = "\u2423"  # ␣, how a space is shown


Counts = collections.namedtuple("Counts", "substitutions deletions insertions occurrences correct distances label_chars")


def edit_ops(label, prediction):
    """[(tag, label position, prediction position)] of the alignment the module doc names."""
    from rapidfuzz.distance import Levenshtein

    return [(op.tag, op.src_pos, op.dest_pos) for op in Levenshtein.editops(label, prediction)]


def count(pairs):
    """Counts of [(label, prediction)]: substitutions {(label char, predicted char): n},
    deletions {label char: n}, insertions {predicted char: n}, occurrences and correct (aligned
    to itself) {label char: n}, each line's edit distance, each line's label length."""
    subs, dels, ins = collections.Counter(), collections.Counter(), collections.Counter()
    occurrences, correct = collections.Counter(), collections.Counter()
    distances, label_chars = [], []
    for label, prediction in pairs:
        ops = edit_ops(label, prediction)
        edited = set()
        for tag, i, j in ops:
            if tag == "replace":
                subs[label[i], prediction[j]] += 1
                edited.add(i)
            elif tag == "delete":
                dels[label[i]] += 1
                edited.add(i)
            else:
                ins[prediction[j]] += 1
        occurrences.update(label)
        correct.update(c for i, c in enumerate(label) if i not in edited)
        distances.append(len(ops))
        label_chars.append(len(label))
    return Counts(subs, dels, ins, occurrences, correct, distances, label_chars)


def shown(char):
    """A character as the table prints it: itself, a space as ␣, an invisible one (control,
    format, separator, combining mark) as U+XXXX."""
    if char == " ":
        return SPACE
    if char == "":
        return "(none)"
    if unicodedata.category(char)[0] in "CZ" or unicodedata.combining(char):
        return "U+%04X" % ord(char)
    return char


def output_paths(output):
    """(json, lines tsv, matrix png) of OUTPUT: the TSV and PNG beside it, named after it."""
    stem = output[: -len(".json")] if output.endswith(".json") else output
    return output, stem + ".lines.tsv", stem + ".matrix.png"


def summarize(recognised, label_files, centers=None):
    """The confusions JSON of what tools/confusions_rec.py wrote (recognised), the label files
    read [{path, sha256, lines}], and optionally the centers {class index: vector}."""
    lines = recognised["lines"]
    counts = count((l["compared"][0], l["compared"][1]) for l in lines)
    dictionary = recognised["dictionary"]
    index = {c: i for i, c in enumerate(dictionary) if i}  # class 0 is the CTC blank
    total_chars = sum(counts.label_chars)
    edits = sum(counts.distances)
    pairs = [dict(label_char=l, predicted_char=p, count=n, label_index=index.get(l), predicted_index=index.get(p),
                  share=n / counts.occurrences[l])
             for (l, p), n in sorted(counts.substitutions.items(), key=lambda kv: (-kv[1], kv[0]))]
    if centers is not None:
        add_center_distances(pairs, centers)
    per_char = {c: dict(index=index.get(c), occurrences=n, correct=counts.correct[c], recall=counts.correct[c] / n,
                        deleted=counts.deletions[c])
                for c, n in sorted(counts.occurrences.items(), key=lambda kv: (-kv[1], kv[0]))}
    outside = {c: n for c, n in counts.occurrences.items() if c not in index}
    return dict(
        lines=len(lines),
        line_accuracy=recognised["line_accuracy"],
        char_error_rate=edits / total_chars if total_chars else 0.0,
        label_chars=total_chars,
        edits=dict(substitutions=sum(counts.substitutions.values()), deletions=sum(counts.deletions.values()),
                   insertions=sum(counts.insertions.values())),
        pairs=pairs,
        deletions=dict(counts.deletions.most_common()),
        insertions=dict(counts.insertions.most_common()),
        characters=per_char,
        label_chars_outside_dictionary=outside,
        label_files=label_files,
        metric=recognised["metric"],
        alignment="rapidfuzz.distance.Levenshtein.editops(label, prediction) on the strings RecMetric compares",
        per_line=dict(correct=[bool(l["correct"]) for l in lines], edits=counts.distances, label_chars=counts.label_chars),
        **{k: recognised.get(k) for k in ("data", "model", "weights", "weights_source", "weights_loaded", "engine", "release",
                                          "series", "series_sha256", "kit_version", "seconds",
                                          "seconds_convert")},
    )


def add_center_distances(pairs, centers):
    """Each pair's center_distance (Euclidean, between the two characters' centers) and
    center_rank (1 + how many other characters' centers are nearer the label character's
    than the predicted one's; the blank's is not a character); None where a center is missing."""
    classes = sorted(c for c in centers if c != 0)
    matrix = np.stack([np.asarray(centers[c], np.float64) for c in classes]) if classes else np.zeros((0, 0))
    row = {c: i for i, c in enumerate(classes)}
    for pair in pairs:
        a, b = row.get(pair["label_index"]), row.get(pair["predicted_index"])
        if a is None or b is None:
            pair["center_distance"] = pair["center_rank"] = None
            continue
        dist = np.linalg.norm(matrix - matrix[a], axis=1)
        dist[a] = np.inf
        pair["center_distance"] = float(dist[b])
        pair["center_rank"] = int(np.sum(dist < dist[b])) + 1


def lines_tsv(recognised, distances):
    """image TAB label TAB prediction TAB edit distance, one row per line, in order (a tab or
    newline inside a field written as \\t, \\n)."""
    def field(text):
        return str(text).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")

    rows = ["%s\t%s\t%s\t%d\n" % (field(l["image"]), field(l["label"]), field(l["prediction"]), d)
            for l, d in zip(recognised["lines"], distances)]
    return "".join(rows).encode("utf-8")


def to_json(summary):
    return (json.dumps(summary, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def format_table(summary, top=TOP_PAIRS):
    """What `make confusions` prints: the totals, then the top pairs."""
    e = summary["edits"]
    out = ["lines            %d" % summary["lines"],
           "line accuracy    %.4f  (upstream RecMetric acc)" % summary["line_accuracy"],
           "CER              %.4f  (%d edits / %d label characters: %d substitutions, %d deletions, %d insertions)"
           % (summary["char_error_rate"], sum(e.values()), summary["label_chars"], e["substitutions"], e["deletions"],
              e["insertions"])]
    outside = summary.get("label_chars_outside_dictionary") or {}
    if outside:
        out.append("not in the dictionary (never predicted): %s" % ", ".join(
            "%s x%d" % (shown(c), n) for c, n in sorted(outside.items(), key=lambda kv: -kv[1])))
    pairs = summary["pairs"][:top]
    if not pairs:
        out.append("no substitutions")
        return "\n".join(out)
    centers = "center_distance" in pairs[0]
    out.append("")
    out.append("top %d of %d confused pairs (label -> predicted):" % (len(pairs), len(summary["pairs"])))
    header = ["label", "index", "predicted", "index", "count", "share"] + (["center dist", "rank"] if centers else [])
    rows = []
    for p in pairs:
        row = [shown(p["label_char"]), index_text(p["label_index"]), shown(p["predicted_char"]),
               index_text(p["predicted_index"]), str(p["count"]), "%.1f%%" % (100 * p["share"])]
        if centers:
            row += ["-" if p["center_distance"] is None else "%.4g" % p["center_distance"],
                    "-" if p["center_rank"] is None else str(p["center_rank"])]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    out.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    out.extend("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
    return "\n".join(out)


def index_text(index):
    return "-" if index is None else str(index)


def matrix_png(summary, pairs=MATRIX_PAIRS):
    """PNG bytes of the confusion matrix of the characters in the top pairs: rows the label
    character, columns the predicted one, the diagonal the characters read right; None when
    there is no substitution."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullFormatter

    from . import chart

    top = summary["pairs"][:pairs]
    if not top:
        return None
    chars = list(dict.fromkeys([p["label_char"] for p in top] + [p["predicted_char"] for p in top]))
    where = {c: i for i, c in enumerate(chars)}
    m = np.zeros((len(chars), len(chars)))
    for c in chars:
        m[where[c], where[c]] = (summary["characters"].get(c) or {}).get("correct", 0)
    for p in summary["pairs"]:
        if p["label_char"] in where and p["predicted_char"] in where:
            m[where[p["label_char"]], where[p["predicted_char"]]] = p["count"]
    side = min(2 + 0.45 * len(chars), 14)
    fig = Figure(figsize=(side + 1.5, side), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    shown_m = np.ma.masked_equal(m, 0)
    image = ax.imshow(shown_m, cmap="viridis", norm=LogNorm(vmin=1, vmax=max(m.max(), 2)))
    index = {p["label_char"]: p["label_index"] for p in top}
    index.update((p["predicted_char"], p["predicted_index"]) for p in top)
    names = ["%s (%s)" % (shown(c), index_text(index[c])) for c in chars]
    fonts = chart.text_fonts()
    ax.set_xticks(range(len(chars)), names, rotation=90, fontsize=8, fontfamily=fonts)
    ax.set_yticks(range(len(chars)), names, fontsize=8, fontfamily=fonts)
    for (r, c), v in np.ndenumerate(m):
        if v:
            ax.text(c, r, "%d" % v, ha="center", va="center", fontsize=7, color="white" if r != c else "black")
    ax.set_xlabel("predicted (character, class index)")
    ax.set_ylabel("label (character, class index)")
    ax.set_title("the %d most confused pairs; diagonal: read right" % len(top))
    bar = fig.colorbar(image, ax=ax, shrink=0.8, label="count")
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: "%g" % v))  # 1, 10, 100: not 10^0
    bar.ax.yaxis.set_minor_formatter(NullFormatter())
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def same_lines(before, label_files):
    """KitError text unless the baseline `before` read the label files [{path, sha256, lines}]
    (same files, same content, same order); None when it did."""
    had = [(f.get("sha256"), f.get("lines")) for f in before.get("label_files") or []]
    if had == [(f["sha256"], f["lines"]) for f in label_files]:
        return None
    return ("BASELINE read other lines (label files %s) than this run (%s); compare runs on the same data"
            % (", ".join("%s sha256 %s" % (f.get("path"), str(f.get("sha256"))[:12]) for f in before.get("label_files") or [])
               or "none", ", ".join("%s sha256 %s" % (f["path"], f["sha256"][:12]) for f in label_files)))


def compare(before, after, top=TOP_PAIRS):
    """The before -> after report of two summaries of the same lines: totals, the top pairs
    (of either run), McNemar's test of the line accuracy, the CER's bootstrap interval and
    the verdict line."""
    from . import paired_stats

    b, a = before["per_line"], after["per_line"]
    lost, gained, p = paired_stats.mcnemar_exact(b["correct"], a["correct"])
    change, low, high = paired_stats.cer_change_interval(b["edits"], a["edits"], a["label_chars"])
    acc_change = after["line_accuracy"] - before["line_accuracy"]
    out = ["", "before -> after (BASELINE %s lines)" % before["lines"],
           "line accuracy    %.4f -> %.4f  (%+.4f; %d lines now wrong, %d now right; McNemar exact p = %.4g)"
           % (before["line_accuracy"], after["line_accuracy"], acc_change, lost, gained, p),
           "CER              %.4f -> %.4f  (%+.4f, 95%% bootstrap interval %+.4f .. %+.4f)"
           % (before["char_error_rate"], after["char_error_rate"], change, low, high)]
    counts_b = {(q["label_char"], q["predicted_char"]): q["count"] for q in before["pairs"]}
    counts_a = {(q["label_char"], q["predicted_char"]): q["count"] for q in after["pairs"]}
    keys = sorted(set(counts_b) | set(counts_a), key=lambda k: (-max(counts_b.get(k, 0), counts_a.get(k, 0)), k))[:top]
    if keys:
        out.append("pair             before -> after")
        out.extend("%-16s %d -> %d" % ("%s -> %s" % (shown(l), shown(r)), counts_b.get((l, r), 0), counts_a.get((l, r), 0))
                   for l, r in keys)
    out.append("verdict: %s" % paired_stats.verdict(acc_change, p, low, high))
    return "\n".join(out), dict(mcnemar=dict(lines_lost=lost, lines_gained=gained, p_value=p),
                                cer_change=dict(change=change, low=low, high=high), line_accuracy_change=acc_change,
                                verdict=paired_stats.verdict(acc_change, p, low, high))
