# ppocr-center-kit: report.py, added to PaddleOCR as ppocr/utils/kit_export/report.py by the kit's
# patch common/0005. Written for ppocr-center-kit (MIT); it imports PaddleOCR at run time and copies none of it.
"""The report beside the pkl (what it holds and lacks, the closest centers, how it was
made), its text, and the writing of both.
"""

import json
import os
import pickle

import numpy as np

from .config import output_paths
from .engines import crash_words
from .errors import ExportError
from .output_files import write_files


def characters_digest(dict_chars):
    """sha256 of a CTCLabelDecode's classes: `make train` tells by it whether centers were
    exported with the dictionary (and use_space_char) it trains with."""
    import hashlib

    return hashlib.sha256("\n".join(dict_chars).encode("utf-8")).hexdigest()


def summarize(centers, counts, dict_chars, meta):
    """The report: what the pkl holds and what it lacks (CenterLoss keeps random centers).
    Class 0 is CTC's blank, not a character: counted apart (it takes most time steps)."""
    per_class = sorted(int(counts[c]) for c in centers)
    num_classes = len(dict_chars)
    missing = [ch for i, ch in enumerate(dict_chars) if i not in centers and i != 0]
    return dict(
        meta,
        classes_with_center=len(centers),
        characters_with_center=sum(1 for c in centers if 0 < c < num_classes),
        blank_samples=int(counts[0]) if 0 in centers else None,  # None: the blank has no center
        dictionary_size=num_classes,
        classes_out_of_dictionary=sorted(c for c in centers if c >= num_classes),
        samples_per_class_min=per_class[0] if per_class else 0,
        samples_per_class_median=float(np.median(per_class)) if per_class else 0.0,
        characters_without_center=missing,
        feature_width=int(next(iter(centers.values())).shape[0]) if centers else 0,
        characters_sha256=characters_digest(dict_chars),
        closest_center_pairs=closest_pairs(centers, dict_chars),
    )


CLOSEST_PAIRS = 20


def class_name(c, dict_chars):
    """Class c as the report names it: the CTC blank, its character, or out of the dictionary."""
    if c == 0:
        return "CTC blank"
    if dict_chars is None:
        return None
    return dict_chars[c] if c < len(dict_chars) else "class %d (out of the dictionary)" % c


def closest_pairs(centers, dict_chars, top=CLOSEST_PAIRS):
    """The `top` pairs of centers nearest each other (Euclidean, their cosine similarity
    beside; the blank's center included): the look-alike candidates before any evaluation.
    In row blocks, so an 18k-class dictionary needs no 18k x 18k matrix; the distances of
    the pairs kept are computed again directly (the expanded form loses digits)."""
    classes = sorted(centers)
    if len(classes) < 2:
        return []
    m = np.stack([np.asarray(centers[c], np.float64) for c in classes])
    sq = np.einsum("ij,ij->i", m, m)
    tolerance = 1e-9 * (1.0 + 4.0 * float(sq.max()))  # the expanded form's rounding, with room
    best = []  # (i, j), i < j
    for start in range(0, len(classes), 1024):
        block = sq[start:start + 1024, None] + sq[None, :] - 2.0 * (m[start:start + 1024] @ m.T)
        block[np.arange(start, start + len(block))[:, None] >= np.arange(len(classes))[None, :]] = np.inf  # i < j only
        flat = block.ravel()
        kth = flat[np.argpartition(flat, min(top, flat.size) - 1)[min(top, flat.size) - 1]]
        if not np.isfinite(kth):
            kth = flat[np.isfinite(flat)].max(initial=-np.inf)
        # every pair within rounding of the block's top-th: ties stay in, so the class order decides among them
        keep = np.concatenate([np.flatnonzero(flat < kth - tolerance),
                               np.flatnonzero(np.abs(flat - kth) <= tolerance)[:top]])  # (i, j) order: the class order
        best += [(start + int(k) // len(classes), int(k) % len(classes)) for k in keep]
    pairs = sorted((float(np.linalg.norm(m[i] - m[j])), i, j) for i, j in best)[:top]
    norms = np.sqrt(sq)
    return [dict(classes=[classes[i], classes[j]],
                 characters=[class_name(classes[i], dict_chars), class_name(classes[j], dict_chars)],
                 distance=d,
                 cosine=float(m[i] @ m[j] / (norms[i] * norms[j])) if norms[i] and norms[j] else None)
            for d, i, j in pairs]


def format_closest(pairs):
    """The report's closest pairs of centers, one line each."""
    if not pairs:
        return []
    def named(c, ch):
        if c == 0 or ch is None or (len(ch) > 1 and ch.startswith("class ")):
            return "CTC blank (class 0)" if c == 0 else ch or "class %d" % c
        return "%s (class %d)" % (json.dumps(ch, ensure_ascii=False), c)  # quoted: a space shows

    out = ["closest pairs of centers (Euclidean distance, cosine similarity): the look-alike candidates"]
    for p in pairs:
        out.append("  %-22s %-22s %10.4g  %s" % (named(p["classes"][0], p["characters"][0]),
                                                 named(p["classes"][1], p["characters"][1]), p["distance"],
                                                 "-" if p["cosine"] is None else "%.4f" % p["cosine"]))
    return out


def format_report(report):
    missing = report["characters_without_center"]
    per_class = report.get("samples_per_class") or {}
    blank = report["blank_samples"] if "blank_samples" in report else per_class.get("0")  # older reports
    characters = report.get("characters_with_center",
                            report["classes_with_center"] - ("0" in per_class) - len(report["classes_out_of_dictionary"]))
    rows = [
        ("images seen", report["images_seen"]),
        ("images used (recognised exactly)", report["images_used"]),
        ("lines read per label file", ", ".join("%s: %d" % (os.path.basename(str(k)), v)
                                                 for k, v in (report.get("lines_read_per_label_file") or {}).items())),
        ("classes with a center", "%d of %d characters, %s" % (characters, report["dictionary_size"] - 1,
                                                               "and the CTC blank" if blank is not None else "not the CTC blank")),
        ("CTC blank (class 0)", "%s samples" % blank if blank is not None else "no center"),
        ("classes out of the dictionary", len(report["classes_out_of_dictionary"])),
        ("samples per class min / median", "%d / %g" % (report["samples_per_class_min"], report["samples_per_class_median"])),
        ("characters without a center", "%d %s" % (len(missing), "".join(missing[:40]) + ("..." if len(missing) > 40 else ""))),
        ("feature width", report["feature_width"]),
        ("sub-model", report.get("model") or "(single model)"),
        ("mode", report.get("mode", "eval")),
        ("engine", report.get("engine", "dygraph") + engine_fallback_note(report.get("engine_fallback"))),
        ("engine agreement (first batch)", format_agreement(report.get("engine_agreement"))),
        ("seconds (convert/load/forward/accumulate)", "%s (%s)" % (report.get("seconds"), " / ".join(
            str((report.get("seconds_by_part") or {}).get(k, "-")) for k in ("convert", "load", "forward", "accumulate")))),
        ("weights", "%s (%s)%s" % (report.get("checkpoint"), report.get("weights_source", "unknown"),
                                    format_loaded(report.get("weights_loaded")))),
        ("release", "%s (Paddle %s)%s" % (report.get("release") or "unknown", report.get("paddle") or "unknown",
                                           "; not yet proven: series %s by dry run" % report.get("series")
                                           if report.get("release_proven") is False else "")),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(["%s  %s" % (k.ljust(width), v) for k, v in rows] + format_closest(report.get("closest_center_pairs")))


def format_loaded(loaded):
    """'; inference model ...' of load_weights' account ('' for a checkpoint as trained)."""
    if not loaded or "form" not in loaded:
        return ""
    absent = ", ".join("%s (%d)" % kv for kv in sorted(loaded["not_in_weights"].items()))
    what = ("inference model %s, %d tensors placed by %s names" % (loaded["program"], loaded["tensors"], loaded["names"])
            if loaded["kind"] == "inference model" else "%d tensors placed" % loaded["tensors"])
    return "; %s%s, %s%s" % (what, " (%d renamed)" % loaded["renamed"] if loaded["renamed"] else "", loaded["form"],
                             "; not in them, and not read: " + absent if absent else "")


def engine_fallback_note(fallback):
    """How the report's engine came to be dygraph when the kit reran a crashed export."""
    return " (rerun: the inference engine %s)" % crash_words(fallback) if isinstance(fallback, dict) else ""


def format_agreement(agreement):
    if not agreement:
        return "- (dygraph only)"
    return ("max abs diff %.2g = %.2g of the features' scale %.3g; max relative L2 per step %.2g; argmax equal %.1f%%"
            % (agreement["max_abs_diff"], agreement["max_abs_diff_over_scale"], agreement["feature_scale"],
               agreement["max_step_relative_l2"], 100 * agreement["argmax_equal"]))


def write_centers(config, acc, dict_chars, run_info, logger):
    """Write the pkl and its report (or refuse an empty result), print the report."""
    if acc.images_seen == 0:
        raise ExportError("the training data is empty; check Train.dataset.data_dir and label_file_list")
    if acc.images_used == 0:
        raise ExportError(
            "no training image was recognised exactly (%d seen), so there is nothing to average; "
            "pass a trained CHECKPOINT for this config" % acc.images_seen
        )
    import paddle

    centers = acc.centers()
    out, report_path = output_paths(config)
    meta = dict(paddle=paddle.__version__, images_seen=acc.images_seen, images_used=acc.images_used, model=run_info["model"],
                checkpoint=run_info["weights"].path, weights_source=run_info["weights"].source,
                weights_loaded=run_info["weights_loaded"],
                mode=config["Export"]["mode"], engine=run_info["engine"], engine_agreement=run_info["engine_agreement"],
                engine_fallback=config["Export"].get("engine_fallback"), release=os.environ.get("PADDLEOCR_RELEASE"),
                series=os.environ.get("PPOCR_CENTER_KIT_SERIES"),  # the kit's choice; proven: a release its table lists
                series_sha256=os.environ.get("PPOCR_CENTER_KIT_SERIES_SHA256"), kit_version=os.environ.get("PPOCR_CENTER_KIT_VERSION"),
                release_proven={"1": True, "0": False}.get(os.environ.get("PPOCR_CENTER_KIT_RELEASE_PROVEN")),
                seconds=run_info["timing"]["loop"], seconds_by_part=run_info["timing"], output=out,
                lines_read_per_label_file=run_info["lines_read"])
    report = summarize(centers, acc.counts, dict_chars, meta)
    report["samples_per_class"] = {str(c): int(acc.counts[c]) for c in centers}
    force = bool(config["Export"].get("force"))
    write_files({out: pickle.dumps(centers), report_path: json.dumps(report, indent=1, ensure_ascii=False).encode()}, force)
    print(format_report(report))
    logger.info("wrote %s (%d centers, width %d) and %s", out, len(centers), report["feature_width"], report_path)
    return report
