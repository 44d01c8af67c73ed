"""One command run in the clone with the series applied, and reverted whatever happens:
the body of `make export` and `make train`."""

import os
import shlex
import sys

from . import VERSION, engine_rerun, print_error
from .patchfile import series_digest
from .patch_queue import PatchQueue
from .supervise import interrupt_on_term, run_child
from .tree import TreeLock


def run_patched(tree, cmd, outputs=(), env=None):
    """Apply the series to tree, run cmd (argv) in it, revert; the child's exit code in the
    shell's convention (128+N when killed by signal N). outputs: the run's output files,
    which the queue's read-only and fault checks cover too; env: variables the child gets
    on top of the kit's (the launcher's), shown on the command line printed.
    A child that dies of a native signal while building the inference engine (see
    engine_rerun) is run once more, on dygraph, with the series still applied: cmd must end
    with its -o options, which the rerun extends."""
    env = dict(env or {})
    interrupt_on_term()
    with TreeLock(tree):
        q, version = PatchQueue.for_tree(tree)
        try:
            with q.applied(version, outputs=list(outputs)), engine_rerun.engine_state(tree) as state:
                child_env = dict(os.environ, PADDLEOCR_RELEASE=str(version), PPOCR_CENTER_KIT_SERIES=q.series,
                                 PPOCR_CENTER_KIT_SERIES_SHA256=series_digest(q.series),
                                 PPOCR_CENTER_KIT_VERSION=VERSION,
                                 PPOCR_CENTER_KIT_RELEASE_PROVEN="1" if q.proven else "0", **env, **state)
                rc = _run(cmd, env, tree, child_env)
                crash = engine_rerun.crash_of(state, rc)
                if crash and crash.wanted == "inference":
                    print_error(engine_rerun.refusal(crash))
                elif crash:
                    print(engine_rerun.rerun_line(crash), file=sys.stderr, flush=True)
                    rc = _run(cmd + engine_rerun.dygraph_opts(crash), env, tree, child_env)
        finally:
            if q.reverted:
                print("reverted series %s: %s byte-identical to before" % (q.series, ", ".join(q.targets())), flush=True)
                report_kept_edits(q)
    return 128 - rc if rc < 0 else rc


def _run(cmd, shown_env, tree, child_env):
    shown = ["%s=%s" % kv for kv in shown_env.items()] + cmd
    print("+ " + " ".join(shlex.quote(c) for c in shown), flush=True)
    return run_child(cmd, cwd=tree, env=child_env)


def report_kept_edits(q):
    for path, keep in q.kept_edits:
        print("ppocr-center-kit: note: %s was edited while patched; those edits are kept in %s" % (path, keep), file=sys.stderr)
