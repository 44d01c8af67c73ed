"""The children's output (export, training) relayed to the kit's own stdout and stderr,
without known noise: lines that every run prints and that say nothing about this run,
and the KeyboardInterrupt traceback of a child stopped by Ctrl-C (the kit says what
happened in its own lines). VERBOSE=1 (the Makefile's, CENTERKIT_VERBOSE here) relays
everything as it comes.

Relayed in chunks, not lines, so a progress bar redrawn with \\r shows as it is drawn; a
line is held back only while it could still become a noise line or a traceback."""

import os
import re
import sys
import threading

# Printed on every run whatever the config, as parts of lines: Paddle's C++ extension
# loader's warning (and the source line Python shows under it), Paddle's PIR executor,
# PaddleOCR's save_load / export_model without the paddle encryption package.
NOISE = ("UserWarning: No ccache found.", "Paddle static graph(PIR) not support input out tensor for now",
         "Skipping import of the encryption module")
WARNING_SOURCE = "warnings.warn(warning_message)"
TRACEBACK = "Traceback (most recent call last):"
CHAINED = ("During handling of the above exception, another exception occurred:",
           "The above exception was the direct cause of the following exception:")


def verbose():
    return os.environ.get("CENTERKIT_VERBOSE", "").lower() not in ("", "0", "false", "no")


def child_env(env):
    """The child's environment: unbuffered Python output, so the relay shows it as it comes."""
    return dict(env, PYTHONUNBUFFERED="1")


class Filter:
    """A stream's bytes in (feed), the bytes to show out. A traceback is held until its last
    line names the exception: a KeyboardInterrupt's is dropped (with what chains to it),
    any other shown whole. A line not ended yet is shown at once (a progress bar being
    drawn) unless it is a noise line or a traceback waiting for its newline."""

    def __init__(self):
        self.partial = b""  # the start of a line, held
        self.traceback = []  # the lines of a traceback not ended yet
        self.dropped = None  # what the previous line was, when dropped: "noise" or "traceback"

    def feed(self, data):
        lines = re.split(rb"(?<=[\r\n])", self.partial + data)
        self.partial = b"" if lines[-1].endswith((b"\n", b"\r")) else lines.pop()
        out = [self._line(line) for line in lines]
        if self.partial and not self.traceback and not self._held(self.partial.decode("utf-8", "replace")):
            out.append(self.partial)
            self.partial = b""
        return b"".join(out)

    def close(self):
        """What is left at the end of the stream (a traceback cut short is shown)."""
        rest = b"".join(self.traceback) + self.partial
        self.traceback, self.partial = [], b""
        return rest

    @staticmethod
    def _held(text):
        return any(m in text or m.startswith(text) for m in NOISE + (TRACEBACK,) + CHAINED)

    def _line(self, line):
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if self.traceback:
            self.traceback.append(line)
            if text and not text[0].isspace():  # the exception's own line ends it
                block, self.traceback = b"".join(self.traceback), []
                self.dropped = "traceback" if text.startswith("KeyboardInterrupt") else None
                return b"" if self.dropped else block
            return b""
        if text == TRACEBACK:
            self.traceback = [line]
            return b""
        previous, self.dropped = self.dropped, None
        if previous == "traceback" and (not text.strip() or text in CHAINED):
            self.dropped = "traceback"
        elif any(m in text for m in NOISE) or (previous == "noise" and text.strip() == WARNING_SOURCE):
            self.dropped = "noise"
        return b"" if self.dropped else line


def _relay(source, target):
    """Copy source to target through a Filter until the child closes it. When target is
    gone (`make export | head`), go on reading: a child writing to a full pipe would hang."""
    f = Filter()
    out = target.buffer if hasattr(target, "buffer") else target
    last = b"\n"
    while True:
        data = os.read(source.fileno(), 65536)
        shown = f.feed(data) if data else f.close()
        if not data and not last.endswith(b"\n"):  # a child killed mid-line (a progress bar):
            shown += b"\n"  # end it, so the kit's next line starts a line of its own
        if shown and out is not None:
            try:
                out.write(shown)
                out.flush()
            except (OSError, ValueError):  # a closed pipe or file
                out = None
        last = shown[-1:] or last
        if not data:
            break
    source.close()


def pipes():
    """Popen's stdout/stderr arguments: pipes to relay, or the kit's own (VERBOSE=1)."""
    import subprocess

    return {} if verbose() else {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}


def relay(child):
    """Threads relaying the child's pipes (none with VERBOSE=1); join() them with wait()."""
    threads = [threading.Thread(target=_relay, args=(stream, target), daemon=True)
               for stream, target in ((child.stdout, sys.stdout), (child.stderr, sys.stderr)) if stream is not None]
    sys.stdout.flush()
    for t in threads:
        t.start()
    return threads


def wait(threads, timeout=5):
    """Until the relays have shown what the child wrote (a grandchild holding the pipe open,
    a DataLoader worker, is not waited for past timeout)."""
    for t in threads:
        t.join(timeout)
