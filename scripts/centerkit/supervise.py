"""Signals and the export child: SIGTERM/SIGHUP taken as Ctrl-C, signals held while files
are restored, the export child started so that it dies with the kit (Linux prctl) and
stopped in order when the kit is interrupted, and paddle's distributed launcher."""

import contextlib
import os
import signal
import subprocess
import sys
import tempfile

from . import KitError, quiet
from .faults import fault_point


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def interrupt_on_term():
    """SIGTERM and SIGHUP (a CI timeout, a closed terminal) raise KeyboardInterrupt as
    Ctrl-C does, so the with-blocks on the way out (the revert) run."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)


@contextlib.contextmanager
def signals_deferred():
    """Hold SIGINT/SIGTERM/SIGHUP while restoring files, then deliver them. The handlers are
    swapped for ones that only take note: blocking them in this thread is not enough, as the
    kernel hands a signal to any thread that does not block it (numpy's BLAS threads), and
    Python then raises KeyboardInterrupt in the main thread all the same. Nests."""
    got = []
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        old[sig] = signal.signal(sig, lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for sig in dict.fromkeys(got):  # each once, in order of arrival
            signal.raise_signal(sig)


def cuda_devices(python):
    """How many GPUs the Paddle of `python` can use (0 on a CPU-only build): the capability
    query, asked of the Python that runs the export, not of the kit's."""
    probe = "import paddle; print(paddle.device.cuda.device_count() if paddle.is_compiled_with_cuda() else 0)"
    try:
        r = subprocess.run([python, "-c", probe], capture_output=True, text=True)
    except OSError as e:
        raise KitError("%s cannot be run (%s); pass PYTHON=<the Python with Paddle>" % (python, e.strerror or e))
    if r.returncode or not r.stdout.split():
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        raise KitError("%s cannot import paddle (%s); pass PYTHON=<the Python with Paddle>" % (python, last))
    return int(r.stdout.split()[-1])


def process_count(nproc):
    """NPROC as a number (1 when empty), or a one-line KitError."""
    if not (nproc or "1").isdigit() or int(nproc or 1) < 1:
        raise KitError("NPROC=%s is not a number of processes; pass e.g. NPROC=2" % nproc)
    return int(nproc or 1)


def launcher(nproc, use_gpu, python):
    """(arguments, environment) that run the export on nproc processes: one per GPU when
    Global.use_gpu is true and the Paddle of `python` has GPUs, else CPU processes with the
    gloo backend, set explicitly (paddle's launcher has no --backend option; it reads
    PADDLE_DISTRI_BACKEND, and on a CUDA build would pick NCCL for CPU tensors). Paddle's
    launcher logs go outside the tree so it stays clean."""
    n = process_count(nproc)
    if n == 1:
        return [], {}
    gpus = cuda_devices(python) if use_gpu else 0
    if use_gpu and not gpus:
        print("ppocr-center-kit: warning: Global.use_gpu is true but %s's Paddle has no GPU; "
              "running %d CPU processes (gloo)" % (python, n), file=sys.stderr, flush=True)
    log_dir = tempfile.mkdtemp(prefix="ppocr-center-kit-launch-")
    print("running %d %s; per-rank logs in %s" % (n, "GPU processes (NCCL)" if gpus else "CPU processes (gloo)", log_dir),
          flush=True)
    return ["-m", "paddle.distributed.launch", "--nproc_per_node", str(n), "--log_dir", log_dir], \
        ({} if gpus else {"PADDLE_DISTRI_BACKEND": "gloo"})


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
    Ctrl-C reaches the child too, so it gets a moment to stop by itself; SIGTERM/SIGHUP (see
    interrupt_on_term) may have reached the kit only, so the child gets SIGINT (it removes
    its temp file) at once. SIGKILL if it is still there after that."""
    kit = os.getpid()
    kwargs["env"] = quiet.child_env(kwargs.get("env") or os.environ)
    child = subprocess.Popen(cmd, preexec_fn=lambda: _die_with_parent(kit), **quiet.pipes(), **kwargs)
    relays = quiet.relay(child)  # its output without the known noise (VERBOSE=1: all of it)
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
        quiet.wait(relays)  # its last lines before the kit's own
        raise
    quiet.wait(relays)
    fault_point("export.child-exited")
    return rc


def run_kit(cmd, **kwargs):
    """Exit code of another kit command (make train, make confusions, run by make ab and the
    demo), which reverts the clone itself when interrupted: on Ctrl-C (which reaches it too)
    or SIGTERM/SIGHUP (passed on to it as SIGINT) the caller waits until it is done, so the
    prompt returns only with the clone clean; then the interrupt goes on."""
    child = subprocess.Popen(cmd, **kwargs)
    try:
        return child.wait()
    except KeyboardInterrupt as e:
        with signals_deferred():
            if e.args and child.poll() is None:  # interrupt_on_term's: the kit alone got it
                child.send_signal(signal.SIGINT)
            child.wait()
        raise
