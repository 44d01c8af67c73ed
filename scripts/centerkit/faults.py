"""Named kill points for the fault-injection test: dead code unless the test suite arms them.

Why: "a killed run never loses a user's work" only means something if the kit is killed at
every step of apply, run and revert, and a kill timed by sleeping lands anywhere or nowhere.
The kit calls fault_point("<step>") at each step. tests/test_fault_injection.py arms the
points by setting both

    CENTERKIT_TEST_FAULTS=<token file>   a file the test run created, holding TOKEN_TEXT
    CENTERKIT_KILL_AT=<point>[#<k>][:<SIGNAL>[:self]]   e.g. revert.file-restored#2:INT

to have the k-th (default first) time <point> is reached, or the n-th point of the run when
<point> is a number, send SIGNAL (default KILL) to the kit's process group (everything make
started, as Ctrl-C or a CI timeout does) or, with `self`, to the kit's process only (`kill
<pid>`). CENTERKIT_FAULT_TRACE=<file> appends the name of every point reached (the test
lists a run's points from it and checks where a kill landed).

A CENTERKIT_KILL_AT or CENTERKIT_FAULT_TRACE that a user's shell inherited does nothing
without the token file (tests/test_fault_injection.py proves it); unarmed, fault_point is
one global lookup and a return.
"""

import os
import signal

TOKEN_TEXT = "ppocr-center-kit test run: fault injection armed\n"


def armed(environ=os.environ):
    """Whether the test suite armed fault injection for this process (see above)."""
    token = environ.get("CENTERKIT_TEST_FAULTS")
    if not token:
        return False
    try:
        with open(token, encoding="utf-8") as f:
            return f.read() == TOKEN_TEXT
    except OSError:
        return False


_ARMED = armed()
_KILL_AT = (os.environ.get("CENTERKIT_KILL_AT") or None) if _ARMED else None
_TRACE = (os.environ.get("CENTERKIT_FAULT_TRACE") or None) if _ARMED else None
_ACTIVE = bool(_KILL_AT or _TRACE)
_seen = {}  # point name -> times reached; "" -> points reached in all


def _parse(spec):
    point, _, rest = spec.partition(":")
    name, _, nth = point.partition("#")
    sig_name, _, whom = rest.partition(":")
    sig = getattr(signal, "SIG" + (sig_name or "KILL").upper().replace("SIG", "", 1))
    return name, int(nth or 1), sig, whom == "self"


def fault_point(name):
    if not _ACTIVE:
        return
    _seen[name] = _seen.get(name, 0) + 1
    _seen[""] = _seen.get("", 0) + 1
    if _TRACE:
        with open(_TRACE, "a", encoding="utf-8") as f:
            f.write("%s#%d\n" % (name, _seen[name]))
    if not _KILL_AT:
        return
    want, nth, sig, self_only = _parse(_KILL_AT)
    hit = _seen[""] == int(want) if want.isdigit() else (want == name and _seen[name] == nth)
    if hit:
        if self_only:
            os.kill(os.getpid(), sig)
        else:
            os.killpg(os.getpgrp(), sig)
