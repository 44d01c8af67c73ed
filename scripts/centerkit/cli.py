"""`python -m centerkit <command>`: what the Makefile targets run."""

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile

from . import KIT_ROOT, KitError, flag, run_tool
from . import chart, patchfile, preflight, releases
from .fork import export_center as ec
from .faults import fault_point
from .patch_queue import PatchQueue, TreeLock, read_manifest, signals_deferred
from . import train_cmd
from .train_cmd import cmd_train  # noqa: F401 (main dispatches on the command's name)


def make_export_command(tree, python, config, checkpoint, output, opts, **variables):
    """The `make export` a user would type, for the kit's own tools (smoke, bench, demo)."""
    return ["make", "--no-print-directory", "-f", os.path.join(KIT_ROOT, "Makefile"), "export",
            "PADDLEOCR=%s" % tree, "PYTHON=%s" % python, "CONFIG=%s" % config, "CHECKPOINT=%s" % checkpoint,
            "OUTPUT=%s" % output, "OPTS=%s" % " ".join("-o " + o for o in opts)] + \
        ["%s=%s" % kv for kv in variables.items()]


def find_tree(given, invoked_from):
    """PADDLEOCR if given, else the PaddleOCR tree enclosing the folder make ran in."""
    def is_tree(path):
        return os.path.isfile(os.path.join(path, "tools", "export_center.py")) and os.path.isdir(
            os.path.join(path, "ppocr")
        )

    if given:
        path = os.path.abspath(os.path.join(invoked_from, given))
        if not is_tree(path):
            raise KitError("%s is not a PaddleOCR tree (no tools/export_center.py and ppocr/); set PADDLEOCR=<your clone>" % path)
        return path
    path = os.path.abspath(invoked_from)
    while True:
        if is_tree(path):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            raise KitError("%s is not inside a PaddleOCR clone; run make there or set PADDLEOCR=<clone>" % invoked_from)
        path = parent


def queue_for(tree, for_revert=False):
    """The PatchQueue of the tree's release; an open run's own series for a revert."""
    m = read_manifest(tree) if for_revert else None
    if m is not None:
        return PatchQueue(tree, m["series"]), m.get("release")
    version, _ = releases.detect_version(tree)
    return PatchQueue(tree, releases.series_for(version)), version


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
        version, source = releases.detect_version(tree)
        series = releases.series_for(version)
        print("release  %s (from %s), series %s" % (version, source, series))
    except KitError as e:
        print("release  unknown: %s" % e)
        return 1
    status, detail = PatchQueue(tree, series).detect()
    print("patches  %s%s" % (status, ": " + "; ".join(detail) if detail else ""))
    return 0


def cmd_check(a):
    tree = find_tree(a.tree, a.invoked_from)
    with TreeLock(tree):
        q, version = queue_for(tree)
        q.require_no_open_run()
        status, detail = q.detect()
    if status != "unapplied":
        raise KitError("the %s series does not apply cleanly to %s (%s%s); run `make status`" % (q.series, tree, status, ": " + "; ".join(detail) if detail else ""))
    print("ok: PaddleOCR %s, series %s applies cleanly (%s)" % (version, q.series, ", ".join(os.path.basename(p) for p in q.patches)))
    return 0


def cmd_apply(a):
    tree = find_tree(a.tree, a.invoked_from)
    with TreeLock(tree):
        q, version = queue_for(tree)
        q.apply(version)
    print("applied series %s to %s; `make revert` restores it" % (q.series, tree))
    return 0


def cmd_revert(a):
    tree = find_tree(a.tree, a.invoked_from)
    with TreeLock(tree):
        q, _ = queue_for(tree, for_revert=True)
        result = q.revert()
    print("%s: %s" % (tree, {"restored": "files restored byte-for-byte", "reversed": "patches reversed", "clean": "nothing to revert"}[result]))
    report_kept_edits(q)
    return 0


def report_kept_edits(q):
    for path, keep in q.kept_edits:
        print("ppocr-center-kit: note: %s was edited while patched; those edits are kept in %s" % (path, keep), file=sys.stderr)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def launcher(nproc):
    """Arguments that run the export on nproc processes (GPUs when present, else CPU with
    gloo); paddle's launcher logs go outside the tree so it stays clean."""
    if not (nproc or "1").isdigit() or int(nproc or 1) < 1:
        raise KitError("NPROC=%s is not a number of processes; pass e.g. NPROC=2" % nproc)
    n = int(nproc or 1)
    if n == 1:
        return []
    log_dir = tempfile.mkdtemp(prefix="ppocr-center-kit-launch-")
    print("running %d processes; per-rank logs in %s" % (n, log_dir), flush=True)
    return ["-m", "paddle.distributed.launch", "--nproc_per_node", str(n), "--log_dir", log_dir]


try:
    import ctypes

    _libc = ctypes.CDLL(None, use_errno=True)
except (ImportError, OSError):
    _libc = None


def _die_with_parent(parent):
    """In the export child before exec: SIGTERM when the kit dies, even of SIGKILL (Linux
    PR_SET_PDEATHSIG), so it does not go on exporting while the tree is reverted under it."""
    try:
        _libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (AttributeError, OSError):
        return
    if os.getppid() != parent:  # the kit died before prctl took effect
        os._exit(1)


def run_child(cmd, **kwargs):
    """Exit code of the export child, stopped before the revert when the kit is interrupted:
    Ctrl-C reaches the child too, so it gets a moment to stop by itself; SIGTERM/SIGHUP (from
    _raise_interrupt) may have reached the kit only, so the child gets SIGINT (it removes its
    temp file) at once. SIGKILL if it is still there after that."""
    kit = os.getpid()
    child = subprocess.Popen(cmd, preexec_fn=lambda: _die_with_parent(kit), **kwargs)
    try:
        fault_point("export.child-started")
        rc = child.wait()
    except KeyboardInterrupt as e:
        first = None if not e.args else signal.SIGINT  # Ctrl-C's KeyboardInterrupt has no args
        with signals_deferred():
            for sig, grace in ((first, 2), (signal.SIGINT, 3), (signal.SIGKILL, None)):
                if sig is not None and child.poll() is None:
                    child.send_signal(sig)
                try:
                    child.wait(grace)
                    break
                except subprocess.TimeoutExpired:
                    pass
        raise
    fault_point("export.child-exited")
    return rc


def cmd_export(a):
    tree = find_tree(a.tree, a.invoked_from)
    config = preflight.resolve_config(tree, a.config, a.invoked_from)
    try:
        opts = [o for o in shlex.split(a.opts or "") if o not in ("-o", "--opt")]
    except ValueError as e:
        raise KitError("OPTS=%s cannot be split (%s); quote it as in a shell" % (a.opts, e))
    # Paths go as JSON strings, which YAML reads verbatim: a bare `a #1` or `a: b` would not.
    if a.checkpoint:
        ckpt = a.checkpoint if os.path.isabs(a.checkpoint) else os.path.join(a.invoked_from, a.checkpoint)
        opts.append("Global.checkpoints=%s" % json.dumps(os.path.abspath(ckpt)))
    if a.model:
        opts.append("Export.model=%s" % a.model)
    output = os.path.abspath(os.path.join(a.invoked_from, a.output or "train_center.pkl"))
    opts += ["Export.output=%s" % json.dumps(output), "Export.force=%s" % ("true" if a.force else "false")]
    samples_png = chart.png_path(output)
    ec.refuse_existing([output, samples_png], a.force, "FORCE=1")  # before hours of export, not after
    report = os.path.join(tree, ec.output_paths(preflight.check(tree, config, opts))[1])
    ec.refuse_existing([report], a.force, "FORCE=1")
    if not os.path.isdir(os.path.dirname(output)):
        raise KitError("the folder of OUTPUT=%s does not exist; create it or choose another OUTPUT=" % output)
    launch = launcher(a.nproc)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    with TreeLock(tree):
        q, version = queue_for(tree)
        try:
            with q.applied(version, outputs=[output, report, samples_png]):
                env = dict(os.environ, PADDLEOCR_RELEASE=str(version))
                cmd = [a.python or sys.executable, *launch, "tools/export_center.py", "-c", config, "-o", *opts]
                print("+ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
                rc = run_child(cmd, cwd=tree, env=env)
        finally:
            if q.reverted:
                print("reverted series %s: %s byte-identical to before" % (q.series, ", ".join(q.targets())), flush=True)
                report_kept_edits(q)
    if rc == 0:
        write_samples_chart(report, samples_png, a.force)
    return 128 - rc if rc < 0 else rc  # killed by signal N: the shell's 128+N


def write_samples_chart(report_path, png, force):
    """The chart of the report the fork script wrote; kit-side, so the fork stays as is."""
    try:
        with open(report_path, encoding="utf-8") as f:
            counts = json.load(f).get("samples_per_class")
    except (OSError, ValueError) as e:
        raise KitError("the export wrote no readable report %s (%s), so no samples chart was drawn" % (report_path, e))
    if counts:
        chart.write(png, counts, force)
        print("wrote %s" % png, flush=True)


def cmd_refresh(a):
    stale = []
    for path, text in [pt for series in patchfile.all_series() for pt in patchfile.refreshed_patches(series)]:
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
    for name in ("status", "check", "apply", "revert", "export"):
        s = sub.add_parser(name)
        s.add_argument("--tree", default="")
        if name == "export":
            for opt in ("config", "checkpoint", "model", "output", "opts", "python", "nproc"):
                s.add_argument("--" + opt, default="")
            s.add_argument("--force", default="")
    train_cmd.add_arguments(sub.add_parser("train"))  # make train / make train-config
    r = sub.add_parser("refresh")
    r.add_argument("--check", action="store_true", help="exit 1 if a patch is stale, change nothing")
    a = p.parse_args(argv)
    if hasattr(a, "force"):
        a.force = flag(a.force)
    try:
        return run_tool(globals()["cmd_" + a.command], a)
    except KeyboardInterrupt:
        print("ppocr-center-kit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
