"""A progress line every 30 s while PaddleOCR trains: epoch, step, loss, elapsed, ETA, read
from the clone's own log (Global.save_model_dir/train.log, which tools/program.py writes).

Why: a training run prints a config dump, then one line per print_batch_step, and the kit's
demo and `make ab` send all of it to a log file: minutes of silence look hung. The line
names the log, so the user knows where the details are.
"""

import contextlib
import datetime
import os
import re
import sys
import threading
import time

INTERVAL = 30.0  # seconds between lines: the longest a user waits for a sign of life
# tools/program.py's line per print_batch_step (v2.6 ... v3.7):
# "epoch: [3/12], global_step: 40, lr: 0.001000, loss: 4.2130, ..., eta: 0:01:23"
_STEP = re.compile(r"epoch: \[(\d+)/(\d+)\], global_step: (\d+),.*?\bloss: ([-+\d.eE]+|nan|inf)(?:.*\beta: ([\d:]+(?: days?, [\d:]+)?))?")
_TAIL = 64 * 1024  # the last step line is in the log's last lines


def last_step(path, since=0):
    """(epoch, epochs, step, loss, eta or None) of the log's last step line after byte
    `since` (PaddleOCR appends to an existing train.log), or None."""
    try:
        with open(path, "rb") as f:
            f.seek(max(since, os.fstat(f.fileno()).st_size - _TAIL))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    found = None
    for found in _STEP.finditer(text):
        pass
    if found is None:
        return None
    epoch, epochs, step, loss, eta = found.groups()
    return int(epoch), int(epochs), int(step), loss, eta


def _clock(seconds):
    return str(datetime.timedelta(seconds=int(seconds)))


def progress_line(label, path, elapsed, since=0):
    step = last_step(path, since)
    if step is None:
        state = "starting (building the model, reading the data)"
    else:
        epoch, epochs, global_step, loss, eta = step
        state = "epoch %d/%d, step %d, loss %s" % (epoch, epochs, global_step, loss) + (", ETA %s" % eta if eta else "")
    return "%s: %s, %s elapsed (full log: %s)" % (label, state, _clock(elapsed), path)


@contextlib.contextmanager
def reporting(label, log_path, interval=INTERVAL, out=None):
    """Print progress_line every `interval` seconds (and once at the end) while the block
    runs: a daemon thread, so a Ctrl-C in the block is not held up by it."""
    out = out or sys.stdout
    start = time.monotonic()
    since = os.path.getsize(log_path) if os.path.isfile(log_path) else 0
    stop = threading.Event()

    def loop():
        while not stop.wait(interval):
            print(progress_line(label, log_path, time.monotonic() - start, since), file=out, flush=True)

    thread = threading.Thread(target=loop, name="train-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(1)
    print(progress_line(label, log_path, time.monotonic() - start, since), file=out, flush=True)
