"""The user commands, `python -m centerkit <command>`: what `make export`, `check`, `apply`,
`revert`, `status` and `refresh` run."""

import argparse
import json
import os
import shutil
import sys
import tempfile

from . import KIT_ROOT, VERSION, KitError, files, flag, releases, run_tool
from . import chart, confusions, engine_rerun, github, patchfile, preflight
from .dropins import kit_export
from .patch_queue import PatchQueue, read_manifest
from .patched_run import report_kept_edits, run_patched
from .supervise import launcher
from .tree import TreeLock, find_tree
from . import ab, add_release, train_cmd
from .ab import cmd_ab  # noqa: F401 (main dispatches on the command's name)
from .train_cmd import cmd_train  # noqa: F401
from .add_release import cmd_add_release  # noqa: F401


def cmd_version(a):
    """make version: the kit's version, and per release of the table its series and the
    sha256 its reports record (series_sha256)."""
    print("ppocr-center-kit %s" % VERSION)
    digests = {s: patchfile.series_digest(s) for s in patchfile.all_series()}
    for release in releases.load_table():
        print("  %-8s series %-5s %s" % (release.name, release.series, digests[release.series]))
    return 0


def cmd_status(a):
    tree = find_tree(a.tree, a.invoked_from)
    print("tree     %s" % tree)
    try:  # a live run holds the lock: its patches are not a killed run's leftovers
        with TreeLock(tree):
            m = read_manifest(tree)
    except KitError as e:
        print("state    RUN IN PROGRESS: %s" % e)
        return 1
    if m is not None:
        print("state    OPEN RUN (%s, series %s): run `make revert` to restore %s" % (m["phase"], m["series"], ", ".join(m["files"])))
        return 1
    try:
        q, version = PatchQueue.for_tree(tree, quiet=True)
    except KitError as e:
        print("release  unknown: %s" % e)
        return 1
    print("release  %s (from %s), series %s%s" % (version, q.version_source, q.series, "" if q.proven else " (not yet proven: "
                                                 "the first series that applies cleanly; the release table does not list it)"))
    status, detail = q.detect()
    print("patches  %s%s" % (status, ": " + "; ".join(detail) if detail else ""))
    if status == "conflict":
        print("next     %s" % q.advice(version))
    return 0


def cmd_check(a):
    tree = find_tree(a.tree, a.invoked_from)
    with TreeLock(tree):
        q, version = PatchQueue.for_tree(tree)
        q.require_no_open_run()
        status, detail = q.detect()
    if status == "applied":
        raise KitError("the %s series is already applied to %s; `make revert` removes it" % (q.series, tree))
    if status != "unapplied":
        raise KitError("the %s series does not apply cleanly to %s (%s: %s); %s" % (q.series, tree, status, "; ".join(detail), q.advice(version)))
    print("ok: PaddleOCR %s, series %s applies cleanly (%s)%s" % (version, q.series, ", ".join(os.path.basename(p) for p in q.patches),
                                                                 "" if q.proven else "; this release is not yet proven by the kit's tests"))
    github.publish("check", github.made_on(version, q.series), [("proven", q.proven)])
    return 0


def cmd_apply(a):
    tree = find_tree(a.tree, a.invoked_from)
    with TreeLock(tree):
        q, version = PatchQueue.for_tree(tree)
        q.apply(version)
    print("applied series %s to %s; `make revert` restores it" % (q.series, tree))
    return 0


def cmd_revert(a):
    tree = find_tree(a.tree, a.invoked_from)
    with TreeLock(tree):
        q, _ = PatchQueue.for_tree(tree, for_revert=True)
        result = q.revert()
        shutil.rmtree(engine_rerun.state_folder(tree), ignore_errors=True)  # a killed run's converted model
    print("%s: %s" % (tree, {"restored": "files restored byte-for-byte", "reversed": "patches reversed", "clean": "nothing to revert"}[result]))
    report_kept_edits(q)
    return 0


def model_opts(a):
    """OPTS and what CHECKPOINT=, MODEL=, MODE=, ENGINE= ask of the export script (and of
    confusions_rec.py, which reads them through it), as -o items."""
    opts = preflight.split_opts(a.opts)
    # Paths go as JSON strings, which YAML reads verbatim: a bare `a #1` or `a: b` would not.
    if a.checkpoint:
        ckpt = a.checkpoint if os.path.isabs(a.checkpoint) else os.path.join(a.invoked_from, a.checkpoint)
        opts.append("Export.checkpoint=%s" % json.dumps(os.path.abspath(ckpt)))
    if a.model:
        opts.append("Export.model=%s" % a.model)
    if getattr(a, "mode", ""):
        opts.append("Export.mode=%s" % a.mode)
    if a.engine:
        opts.append("Export.engine=%s" % a.engine)
    return opts


def child_command(a, tree, checked, script, config, opts):
    """(argv, launcher environment) of a script run in the clone by PYTHON, on NPROC
    processes, its -o options last (run_patched's rerun on dygraph extends them); PYTHON is
    checked for Paddle and the clone's requirements first."""
    python = a.python or sys.executable
    preflight.check_python(tree, python)
    launch, launch_env = launcher(a.nproc, bool(checked["Global"].get("use_gpu")), python)
    return [python, *launch, script, "-c", config, "-o", *opts], launch_env


def cmd_export(a):
    tree = find_tree(a.tree, a.invoked_from)
    config = preflight.resolve_config(tree, a.config, a.invoked_from)
    opts = model_opts(a)
    output = os.path.abspath(os.path.join(a.invoked_from, a.output or "train_center.pkl"))
    opts += ["Export.output=%s" % json.dumps(output), "Export.force=%s" % ("true" if a.force else "false")]
    samples_png = files.chart_path(output)
    files.refuse_existing([output, samples_png], a.force)  # before hours of export, not after
    checked = preflight.check(tree, config, opts)
    report = os.path.join(tree, kit_export.config.output_paths(checked)[1])
    files.refuse_existing([report], a.force)
    preflight.output_folder(output)
    cmd, launch_env = child_command(a, tree, checked, "tools/export_center.py", config, opts)
    rc = run_patched(tree, cmd, outputs=[output, report, samples_png], env=launch_env)
    if rc == 0:
        chart.write_of_report(report, samples_png, a.force)
        with open(report, encoding="utf-8") as f:
            r = json.load(f)
        github.publish("export", dict(path=output, **github.made_on(r["release"], r["series"], r["series_sha256"])),
                       [("characters with a center", "%d of %d" % (r["characters_with_center"], r["dictionary_size"] - 1)),
                        ("images used", "%d of %d" % (r["images_used"], r["images_seen"])), ("engine", r["engine"])])
    return rc


def cmd_confusions(a):
    tree = find_tree(a.tree, a.invoked_from)
    config = preflight.resolve_config(tree, a.config, a.invoked_from)
    data = a.data or "eval"
    if data not in ("eval", "train"):
        raise KitError("DATA=%s is not one of eval, train; pass DATA=eval (the Eval set) or DATA=train" % data)
    output = os.path.abspath(os.path.join(a.invoked_from, a.output or "confusions.json"))
    written = confusions.output_paths(output)
    files.refuse_existing(written, a.force)  # before the run, not after
    baseline = read_json_input(a.baseline, "BASELINE", a.invoked_from) if a.baseline else None
    centers = read_centers(a.centers, a.invoked_from) if a.centers else None
    opts = model_opts(a)
    section = "Eval" if data == "eval" else "Train"
    checked = preflight.check(tree, config, opts, section)
    label_files = [dict(path=os.path.join(tree, f), sha256=files.sha256(os.path.join(tree, f)),
                        lines=kit_export.config.count_lines(os.path.join(tree, f)))
                   for f in kit_export.config.label_files(checked[section]["dataset"])]
    if baseline is not None and confusions.same_lines(baseline, label_files):
        raise KitError(confusions.same_lines(baseline, label_files))
    preflight.output_folder(output)
    with tempfile.TemporaryDirectory(prefix="ppocr-center-kit-confusions-") as tmp:
        recognised_path = os.path.join(tmp, "recognised.json")
        opts += ["Export.data=%s" % data, "Export.predictions=%s" % json.dumps(recognised_path)]
        cmd, launch_env = child_command(a, tree, checked, os.path.join(KIT_ROOT, "tools", "confusions_rec.py"), config, opts)
        rc = run_patched(tree, cmd, outputs=[recognised_path], env=launch_env)
        if rc:
            return rc
        with open(recognised_path, encoding="utf-8") as f:
            recognised = json.load(f)
    summary = confusions.summarize(recognised, label_files, centers)
    text = confusions.format_table(summary)
    if baseline is not None:
        comparison, summary["baseline"] = confusions.compare(baseline, summary)
        summary["baseline"]["file"] = os.path.abspath(os.path.join(a.invoked_from, a.baseline))
        text += "\n" + comparison
    json_path, tsv_path, png_path = written
    files.write_new(tsv_path, confusions.lines_tsv(recognised, summary["per_line"]["edits"]), a.force)
    matrix = confusions.matrix_png(summary)
    if matrix is not None:
        files.write_new(png_path, matrix, a.force)
    files.write_new(json_path, confusions.to_json(summary), a.force)  # last: the run's result
    print(text)
    print("wrote %s, %s%s" % (json_path, tsv_path, ", " + png_path if matrix is not None else " (no substitutions: no matrix)"))
    github.publish("confusions", dict(path=json_path, **{"line-accuracy": "%.4f" % summary["line_accuracy"],
                                                         "cer": "%.4f" % summary["char_error_rate"]},
                                      **github.made_on(summary["release"], summary["series"], summary["series_sha256"])),
                   [("lines", summary["lines"])] + [("top confusion", "%s -> %s (%d)" % (p["label_char"], p["predicted_char"], p["count"]))
                                                    for p in summary["pairs"][:3]])
    return 0


def read_json_input(path, variable, invoked_from):
    """A JSON file a variable names (BASELINE=), or KitError naming the fix."""
    full = os.path.join(invoked_from, path)
    try:
        with open(full, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, ValueError) as e:
        raise KitError("%s=%s cannot be read as JSON (%s); pass a confusions.json that `make confusions` wrote"
                       % (variable, path, getattr(e, "strerror", None) or e))
    if not isinstance(value, dict) or "per_line" not in value:
        raise KitError("%s=%s is not a confusions.json of `make confusions`; pass one it wrote" % (variable, path))
    return value


def read_centers(path, invoked_from):
    """CENTERS=: a centers pkl {class index: vector}, read by the kit's one strict reader
    (no code from the pickle runs), or KitError."""
    from . import pkl_format

    return pkl_format.load(os.path.abspath(os.path.join(invoked_from, path)))[0]  # its own checks: exists, format


def cmd_refresh(a):
    """make refresh: every patch that carries a drop-in regenerated from dropin/; with
    PADDLEOCR=, first the clone's edits to its applied series taken in (tree_refresh)."""
    if a.tree:
        from .tree_refresh import refresh_from_tree

        for path, what in refresh_from_tree(a.tree, a.invoked_from):
            print("refreshed %s: %s" % (os.path.relpath(path), what))
    stale = []
    for path, text in patchfile.refreshed_patches():
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                continue
        stale.append(path)
        if not a.check:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    verb = "stale" if a.check else "refreshed"
    for path in stale:
        print("%s %s" % (verb, os.path.relpath(path)))
    return 1 if (a.check and stale) else 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="centerkit")
    p.add_argument("--invoked-from", default=os.getcwd())
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("version")
    for name in ("status", "check", "apply", "revert", "export"):
        s = sub.add_parser(name)
        s.add_argument("--tree", default="")
        if name == "export":
            for opt in ("config", "checkpoint", "model", "mode", "engine", "output", "opts", "python", "nproc"):
                s.add_argument("--" + opt, default="")
            s.add_argument("--force", default="")
    c = sub.add_parser("confusions")
    for opt in ("tree", "config", "checkpoint", "model", "data", "engine", "output", "centers", "baseline", "opts",
                "python", "nproc", "force"):
        c.add_argument("--" + opt, default="")
    train_cmd.add_arguments(sub.add_parser("train"))  # make train / make train-config
    ab.add_arguments(sub.add_parser("ab"))
    add_release.add_arguments(sub.add_parser("add_release"))
    r = sub.add_parser("refresh")
    r.add_argument("--check", action="store_true", help="exit 1 if a patch is stale, change nothing")
    r.add_argument("--tree", default="", help="a clone with the series applied and edited (PADDLEOCR=)")
    a = p.parse_args(argv)
    if hasattr(a, "force"):
        a.force = flag(a.force)
    return run_tool(globals()["cmd_" + a.command], a)


if __name__ == "__main__":
    sys.exit(main())
