"""Test-only faults inside the export child (tools/export_center.py, which the kit does not
own and must not carry test hooks): tests/test_fault_injection.py puts this folder on
PYTHONPATH, Python imports it at start-up, and it acts only in a process running
export_center.py and only when the test arms fault injection (centerkit.faults.armed:
CENTERKIT_TEST_FAULTS names the test run's token file) and sets

    CENTERKIT_CHILD_FAULT=<event>:<file name>:<action>

  event   loop       the first progress update (one batch forwarded, none written)
          fsync      fsync of the temp file of output <file name> (written, not renamed)
          replaced   the publishing (rename or link) of a temp file as output <file name> (done)
          convert    paddle.jit.save, when the inference engine saves the converted model
                     (<file name> unused, `-`, for this event and the next three)
          predictor  paddle.inference.create_predictor, when the engine builds its predictor
          first-batch  the predictor's first run (the engine's first batch)
          cpuinfo    the export reading /proc/cpuinfo (action NOAVX512 only)
          start      the child's start, before Paddle is imported (action EXIT only)
  action  KILL|INT|TERM  that signal to the process group (everything make started)
          ILL|SEGV|BUS|FPE|ABRT  that signal to this process alone, as a native crash is
          ENOSPC         the call fails with OSError(ENOSPC), as on a full disk
          UNSUPPORTED    the call fails as converting a model with unsupported code does
          NOAVX512       /proc/cpuinfo reads without the avx512* flags (an AMD EPYC's view)
          EXIT           the child exits at once with code 3: an export that fails in no
                         time, for the kill tests whose subject is the kit around it

It appends `child.<event>` to CENTERKIT_FAULT_TRACE when it acts, so the test knows the
fault happened where it meant it to.
"""

import errno
import os
import re
import signal
import sys

_SPEC = os.environ.get("CENTERKIT_CHILD_FAULT", "")
NATIVE = ("ILL", "SEGV", "BUS", "FPE", "ABRT")


def _install(event, name, action):
    done = []

    def act():
        if done:
            return
        done.append(1)
        trace = os.environ.get("CENTERKIT_FAULT_TRACE")
        if trace:
            with open(trace, "a", encoding="utf-8") as f:
                f.write("child.%s#1\n" % event)
        if action == "ENOSPC":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if action == "UNSUPPORTED":
            raise NotImplementedError("test fault: this model has code that to_static cannot convert")
        if action in ("NOAVX512", "EXIT"):  # the caller changes the reading / exits
            return
        if action in NATIVE:
            os.kill(os.getpid(), getattr(signal, "SIG" + action))
            return
        os.killpg(os.getpgrp(), getattr(signal, "SIG" + action))

    if event == "loop":
        import tqdm

        update = tqdm.tqdm.update

        def patched_update(self, n=1):
            update(self, n)
            act()

        tqdm.tqdm.update = patched_update
    elif event == "fsync":
        fsync = os.fsync

        def patched_fsync(fd):
            target = os.path.basename(os.readlink("/proc/self/fd/%d" % fd))
            if target.startswith("." + name + "."):  # export_center.temp_prefix of <name>
                act()
            return fsync(fd)

        os.fsync = patched_fsync
    elif event == "replaced":  # published: os.replace with FORCE, os.link without
        def after(publish):
            def patched(src, dst, *args, **kwargs):
                result = publish(src, dst, *args, **kwargs)
                if os.path.basename(dst) == name:
                    act()
                return result
            return patched

        os.replace, os.link = after(os.replace), after(os.link)
    elif event == "convert":
        import paddle.jit

        save = paddle.jit.save

        def patched_save(*args, **kwargs):
            act()
            return save(*args, **kwargs)

        paddle.jit.save = patched_save
    elif event == "start" and action == "EXIT":
        act()
        sys.stdout.flush()
        os._exit(3)
    elif event == "predictor":
        import paddle.inference

        create = paddle.inference.create_predictor

        def patched_create(config):
            act()
            return create(config)

        paddle.inference.create_predictor = patched_create
    elif event == "first-batch":
        import paddle.inference

        create = paddle.inference.create_predictor

        class FirstRunFails:
            def __init__(self, predictor):
                self._predictor = predictor

            def __getattr__(self, name):
                return getattr(self._predictor, name)

            def run(self, *args):
                act()
                return self._predictor.run(*args)

        paddle.inference.create_predictor = lambda config: FirstRunFails(create(config))
    elif event == "cpuinfo" and action == "NOAVX512":
        import builtins
        import io

        real_open = builtins.open

        def patched_open(path, *args, **kwargs):
            if path != "/proc/cpuinfo":
                return real_open(path, *args, **kwargs)
            with real_open(path, *args, **kwargs) as f:
                text = f.read()
            act()
            return io.StringIO(re.sub(r"\bavx512\w*", "", text))

        builtins.open = patched_open
    else:
        raise SystemExit("CENTERKIT_CHILD_FAULT: unknown event %r" % event)


def _armed():
    try:  # the kit's scripts/ is on the export child's PYTHONPATH (the Makefile puts it there)
        from centerkit.faults import armed
    except ImportError:
        return False
    return armed()


if _SPEC and sys.argv and sys.argv[0].endswith("export_center.py") and _armed():
    _install(*_SPEC.split(":"))
