"""One command run in the clone with the series applied, and reverted whatever happens:
the body of `make export` and `make train`."""

import os
import shlex
import sys

from .patch_queue import PatchQueue
from .supervise import interrupt_on_term, run_child
from .tree import TreeLock


def run_patched(tree, cmd, outputs=(), env=None):
    """Apply the series to tree, run cmd (argv) in it, revert; the child's exit code in the
    shell's convention (128+N when killed by signal N). outputs: the run's output files,
    which the queue's read-only and fault checks cover too; env: variables the child gets
    on top of the kit's (the launcher's), shown on the command line printed."""
    env = dict(env or {})
    interrupt_on_term()
    with TreeLock(tree):
        q, version = PatchQueue.for_tree(tree)
        try:
            with q.applied(version, outputs=list(outputs)):
                shown = ["%s=%s" % kv for kv in env.items()] + cmd
                print("+ " + " ".join(shlex.quote(c) for c in shown), flush=True)
                rc = run_child(cmd, cwd=tree, env=dict(os.environ, PADDLEOCR_RELEASE=str(version), **env))
        finally:
            if q.reverted:
                print("reverted series %s: %s byte-identical to before" % (q.series, ", ".join(q.targets())), flush=True)
                report_kept_edits(q)
    return 128 - rc if rc < 0 else rc


def report_kept_edits(q):
    for path, keep in q.kept_edits:
        print("ppocr-center-kit: note: %s was edited while patched; those edits are kept in %s" % (path, keep), file=sys.stderr)
