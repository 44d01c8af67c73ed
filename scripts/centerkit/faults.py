"""Named kill points, so tests/test_fault_injection.py can kill a run at one exact step.

Why: "a killed run never loses a user's work" only means something if the kit is killed at
every step of apply, run and revert, and a kill timed by sleeping lands anywhere or nowhere.
The kit calls fault_point("<step>") at each step; a test sets

    CENTERKIT_KILL_AT=<point>[#<k>][:<SIGNAL>[:self]]   e.g. revert.file-restored#2:INT

to have the k-th (default first) time <point> is reached, or the n-th point of the run when
<point> is a number, send SIGNAL (default KILL) to the kit's process group (everything make
started, as Ctrl-C or a CI timeout does) or, with `self`, to the kit's process only (`kill
<pid>`). CENTERKIT_FAULT_TRACE=<file> appends the name of every point reached (the test
lists a run's points from it and checks where a kill landed).

Both unset (any real use): fault_point is one global lookup and a return.
"""

import os
import signal

_KILL_AT = os.environ.get("CENTERKIT_KILL_AT") or None
_TRACE = os.environ.get("CENTERKIT_FAULT_TRACE") or None
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
