"""An export child that died of a native signal while building the inference engine, rerun
once on dygraph.

Why: a Python exception in the conversion is caught inside the export and answered by the
dygraph fallback (ENGINE=auto), but a native crash kills the process: Paddle 2.6's oneDNN
dies of SIGILL on CPUs without AVX-512 (kit_export.engines.passes_to_delete avoids the known
case; this catches the rest). The export's EngineWatch notes, per rank, the step of the
engine it is in, in a file under a temp folder outside the clone, and faulthandler adds the
signal's name when the process dies there. Nothing is written before that step is over, so
a rerun with ENGINE=dygraph loses nothing and writes everything once.
"""

import collections
import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile

from .dropins import kit_export

NATIVE = (signal.SIGILL, signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGABRT)
# faulthandler's "Fatal Python error: <name>" for each (the only words it writes for them)
FAULTHANDLER_NAMES = {"Illegal instruction": "SIGILL", "Segmentation fault": "SIGSEGV", "Bus error": "SIGBUS",
                      "Floating point exception": "SIGFPE", "Aborted": "SIGABRT"}
_FATAL = re.compile(r"^Fatal Python error: (.+)$", re.M)

Crash = collections.namedtuple("Crash", "signal phase wanted rank")


def state_folder(tree):
    """The tree's state folder in the temp dir: one name per tree and user, so that the run
    after a killed one (SIGKILL skips every finally) removes what that one left there, the
    converted model included. Runs on one tree are one at a time (TreeLock)."""
    key = hashlib.sha1(os.path.realpath(tree).encode("utf-8")).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), "ppocr-center-kit-state-%s-%d" % (key, os.getuid()))


@contextlib.contextmanager
def engine_state(tree):
    """(the variable, its value) the export child needs for its EngineWatch, in the tree's
    state folder outside the clone, made empty first and removed afterwards."""
    folder = state_folder(tree)
    shutil.rmtree(folder, ignore_errors=True)
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:  # not ours to remove (another user's, a file): a folder of our own
        folder = tempfile.mkdtemp(prefix="ppocr-center-kit-state-")
    try:
        yield {kit_export.engines.ENGINE_STATE_ENV: os.path.join(folder, "engine")}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def crash_of(state_env, rc):
    """The Crash of a child that exited with rc (Popen's: -N when killed by signal N; under
    paddle's launcher, its own non-zero code) while a rank was inside the engine's build, or
    None: it exited normally, was stopped from outside (Ctrl-C, SIGTERM, SIGKILL), or died
    elsewhere. The signal: from rc, or from faulthandler's line in the rank's file."""
    if rc == 0 or (rc < 0 and -rc not in NATIVE):
        return None
    for path in sorted(glob.glob(glob.escape(state_env[kit_export.engines.ENGINE_STATE_ENV]) + ".*")):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        first = text.split("\n", 1)[0].split()
        fatal = _FATAL.search(text)
        name = signal.Signals(-rc).name if rc < 0 else fatal and FAULTHANDLER_NAMES.get(fatal.group(1).strip())
        if len(first) == 2 and first[0] in kit_export.engines.ENGINE_PHASES and name:
            return Crash(name, first[0], first[1], int(path.rsplit(".", 1)[1]))
    return None


def describe(crash):
    return "the export%s %s" % (" (rank %d)" % crash.rank if crash.rank else "",
                                kit_export.engines.crash_words({"signal": crash.signal, "phase": crash.phase}))


def refusal(crash):
    """The one line for ENGINE=inference, which asked for this engine and no other."""
    return "ENGINE=inference: %s; pass ENGINE=dygraph (ENGINE=auto reruns on dygraph by itself)" % describe(crash)


def rerun_line(crash):
    return "ppocr-center-kit: %s; rerunning it once on dygraph (ENGINE=dygraph), nothing was written" % describe(crash)


def dygraph_opts(crash):
    """The -o options that make the rerun dygraph's and have its report say why."""
    fallback = {"signal": crash.signal, "phase": crash.phase, "requested": crash.wanted}
    return ["Export.engine=dygraph", "Export.engine_fallback=%s" % json.dumps(fallback)]
