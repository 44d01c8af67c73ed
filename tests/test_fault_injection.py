"""Fault injection (clone tier, issue #5 "never lose a user's work"): `make export` in a
real tree of the newest release is killed at every step of apply, run and revert, then `make status` and
`make revert` are run as a user would, and

- the patched files are byte-identical (sha256 + mode) to before, `git status` is clean,
  and no kit temp file or state folder is left;
- while a run is open, `make status` says so (exit 1) and check/apply/export refuse with one
  line (exit 2); a run the kit could finish itself (SIGINT/SIGTERM) is not left open;
- the user's config, checkpoint, data and existing outputs are unchanged, and the output
  path holds either the old files or complete new ones, never a partial file or a temp.

Kit steps are hit exactly through faults.fault_point (CENTERKIT_KILL_AT); steps inside the
export child, which the kit does not own, through tests/child_faults/sitecustomize.py, and
one by timing. Both act only when CENTERKIT_TEST_FAULTS names this test run's token file: a
CENTERKIT_KILL_AT a user's shell inherited does nothing (tested here too). Apply/revert points need only git: without Paddle the child fails at once
and the revert after it still runs; the run-phase tests then skip.
"""

import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tiny_data
import upstream
from conftest import NEWEST
import kit_run
from kit_run import CHILD_HOOK, error_lines, fault_env, git_status, helper_env, make, make_command, recipe_exit, snapshot
from centerkit import faults, patchfile, quiet, releases
from centerkit.patch_queue import read_manifest, state_dir
from centerkit.make_commands import opts_text

RELEASE = NEWEST
ENV = {"PADDLEOCR_VERSION": RELEASE}
TARGETS = [t for p in patchfile.series_patches(releases.series_for(RELEASE)) for t in patchfile.targets(p)]
OLD = {"out.pkl": b"old centers", "out.report.json": b'{"old": true}\n', "out.samples.png": b"old chart"}

def created_by(series):
    """The files the series creates (its `new file` diffs): removed on revert, nothing saved."""
    out = set()
    for path in patchfile.series_patches(series):
        with open(path, encoding="utf-8") as f:
            _, diff = patchfile.split_patch(f.read())
        out |= {t for t, section in patchfile.sections(diff) if "\nnew file mode " in section.split("\n@@ ", 1)[0]}
    return out


CREATED = created_by(releases.series_for(RELEASE))
FILES = list(dict.fromkeys(TARGETS))  # the series' files in the order it patches (and reverts) them
SAVED = len(set(FILES) - CREATED)  # those that exist upstream: saved, then restored


def fault_points(files, created):
    """Every fault_point of one `make export`, in order, and whether a SIGKILL there leaves a
    run open (manifest written, not yet removed). A run traced without a kill must list
    exactly these, so a new step cannot go untested. Each save and restore writes a temp
    file first (atomic.temp-written), numbered in the order of the run; the revert goes
    through the files in the series' order, restoring the saved and removing the created."""
    saved = len([f for f in files if f not in created])
    points = []
    for i in range(1, saved + 1):  # a copy of each original, not yet renamed; then saved
        points += [("atomic.temp-written#%d" % i, False), ("apply.original-saved#%d" % i, False)]
    temp = saved + 1
    points += [
        ("atomic.temp-written#%d" % temp, False),  # the manifest, not yet renamed: nothing is open
        ("apply.manifest-written#1", True),
        ("apply.git-applied#1", True),
        ("atomic.temp-written#%d" % (temp + 1), True),
        ("apply.done#1", True),
        ("export.child-started#1", True),
        ("export.child-exited#1", True),
        ("revert.begin#1", True),
    ]
    restored = removed = 0
    for f in files:
        if f in created:
            removed += 1
            points.append(("revert.file-removed#%d" % removed, True))
        else:  # a restored file's temp, next to it in the tree
            restored += 1
            points += [("atomic.temp-written#%d" % (temp + 1 + restored), True), ("revert.file-restored#%d" % restored, True)]
    return points + [("revert.manifest-removed#1", False), ("revert.done#1", False)]


POINTS = fault_points(FILES, CREATED)
FIRST_RESTORE_TEMP = "atomic.temp-written#%d" % (SAVED + 3)
OPEN_AFTER_KILL = dict(POINTS)
ORDER = [p for p, _ in POINTS]
CHILD_DONE = ORDER.index("export.child-exited#1")

# (point, signal, whom): SIGKILL of everything make started at every point; Ctrl-C and
# SIGTERM, which the kit must finish cleanly itself, at one step of each phase; and the kit
# alone killed or terminated while the child runs (the child must not outlive it).
KILLS = [(p, "KILL", "group") for p in ORDER] + [
    ("apply.original-saved#1", "INT", "group"),
    ("apply.git-applied#1", "INT", "group"),
    ("export.child-started#1", "INT", "group"),
    ("revert.file-restored#1", "INT", "group"),
    ("apply.manifest-written#1", "TERM", "group"),
    (FIRST_RESTORE_TEMP, "TERM", "group"),
    ("export.child-started#1", "TERM", "self"),
    ("export.child-started#1", "KILL", "self"),
    ("revert.begin#1", "INT", "self"),
]
# The other steps for Ctrl-C and SIGTERM (the kit's own handling, a real child each, ~6 s):
# two of them a run, drawn with a seed that changes every day (UTC), which the test ids show
# ("seed20261203"). CENTERKIT_FAULT_SEED=<seed> draws that run's two again, =all takes every one.
OTHER_KILLS = [(p, s, "group") for s in ("INT", "TERM") for p in ORDER if (p, s, "group") not in KILLS]
FAULT_SEED = os.environ.get("CENTERKIT_FAULT_SEED") or time.strftime("%Y%m%d", time.gmtime())
SAMPLED_KILLS = OTHER_KILLS if FAULT_SEED == "all" else random.Random(int(FAULT_SEED)).sample(OTHER_KILLS, 2)

# What a kill at each step must leave is the same whatever the export child did, since the
# kit's steps around it do not depend on its result: so the kills after the child's start
# run a real export (Paddle, the model, the outputs) only where the outputs are at stake or
# a kill can land inside the child, and elsewhere a child that exits at once
# (CENTERKIT_CHILD_FAULT=start:-:EXIT), which takes the very same kit path. Likewise the
# refusals an open run gives check, apply and export (one code path: require_no_open_run)
# are asserted once per phase; status and revert after every kill.
REAL_CHILD = {"export.child-started#1", "export.child-exited#1", "revert.begin#1", "revert.file-restored#1",
              "revert.done#1"}
REFUSALS_AT = {"apply.manifest-written#1", "export.child-started#1", "revert.file-restored#2"}
QUICK_CHILD = {"CENTERKIT_CHILD_FAULT": "start:-:EXIT"}

_PREPARED = {}


def _prepare(tree, base):
    """Once per session: the user's files (a copy of the tiny config, a data set, a
    checkpoint: random-init and matching with Paddle, else a placeholder the child never
    gets to load)."""
    python, why = tiny_data.paddle_python(tree)
    shutil.copy(tiny_data.config_path("tiny_plain_ctc.yml"), base / "cfg.yml")
    opts = tiny_data.dataset(base / "data", images=6)
    if python:
        tiny_data.reference(python, tree, "init", str(base / "cfg.yml"), str(base / "ckpt"),
                            str(base / "data" / "train.txt"), str(base / "ref.pkl"), opts)
        (base / "ref.pkl").unlink(missing_ok=True)
    else:
        (base / "ckpt.pdparams").write_bytes(b"placeholder weights")
    return python, why


@pytest.fixture(scope="session")
def fault_token(tmp_path_factory):
    """The file that arms fault injection (centerkit.faults.armed) for this test run only."""
    return kit_run.fault_token(tmp_path_factory.mktemp("armed"))


@pytest.fixture
def run(clone_source, tmp_path_factory, tmp_path, fault_token):
    """A clean tree of the newest release, a fresh copy of the user's files and earlier outputs (Run)."""
    tree = upstream.release_tree(clone_source, RELEASE)
    if tree is None:
        pytest.skip("%s has neither tag %s nor the commit the shared table gives" % (clone_source, RELEASE))
    shutil.rmtree(state_dir(tree), ignore_errors=True)  # what a failed earlier test left open
    if tree not in _PREPARED:
        base = tmp_path_factory.mktemp("fault-user")
        _PREPARED[tree] = (base, *_prepare(tree, base))
    base, python, why = _PREPARED[tree]
    user = tmp_path / "user"
    shutil.copytree(base, user)
    out = user / "out"
    out.mkdir()
    for name, data in OLD.items():  # an earlier export's files, overwritten only by a finished run
        (out / name).write_bytes(data)
    (out / "other.pkl").write_bytes(b"another model's centers")
    return Run(tree, user, python, why, fault_token)


class Run:
    def __init__(self, tree, user, python, why, token):
        self.tree, self.user, self.python, self.why, self.token = tree, user, python, why, token
        self.trace = str(user.parent / "trace.txt")
        self.targets_before = self.target_snapshot()
        self.user_before = self.user_snapshot()
        self.variables = dict(CONFIG=str(user / "cfg.yml"), CHECKPOINT=str(user / "ckpt"),
                              OUTPUT=str(user / "out" / "out.pkl"), FORCE="1",
                              OPTS=opts_text(tiny_data.dataset_opts(user / "data")))

    def need_paddle(self):
        if self.python is None:
            pytest.skip(self.why)

    def target_snapshot(self):
        """(sha256, mode) of every file in the folders the series patches (a stray temp
        file there shows up too)."""
        folders = sorted({os.path.dirname(t) for t in TARGETS})
        return {f: snapshot(os.path.join(self.tree, f)) for f in folders}

    def user_snapshot(self):
        return {k: v for k, v in snapshot(str(self.user)).items() if not k.startswith("out" + os.sep)}

    def make(self, target, **extra):
        return make(target, cwd=self.tree, env=ENV, **(self.variables if target == "export" else {}), **extra)

    def make_in_session(self, env=None, kill_when=None, target="export", armed=True):
        """make <target> in a session of its own (its process group is what a fault kills);
        returns (returncode, stdout, stderr) once every process of it has exited.
        kill_when: SIGKILL the group as soon as a line of its stdout contains this.
        armed: with the test run's token (else fault variables are as a user's shell's)."""
        hook = fault_env(self.token) if armed else {"PYTHONPATH": CHILD_HOOK}
        full_env = dict(ENV, CENTERKIT_FAULT_TRACE=self.trace, **hook, **(env or {}))
        cmd, full_env = make_command(target, full_env, **(self.variables if target == "export" else {}))
        # SIGINT as a terminal gives it: a shell's `cmd &` starts pytest with SIGINT ignored,
        # and an ignored signal stays ignored in every child.
        p = subprocess.Popen(cmd, cwd=self.tree, env=full_env, start_new_session=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = ""
        while kill_when is not None:
            line = p.stdout.readline()
            first += line
            if kill_when in line or not line:
                os.killpg(p.pid, signal.SIGKILL)
                break
        stdout, stderr = p.communicate(timeout=600)
        wait_group_gone(p.pid)
        return p.returncode, first + stdout, stderr

    def traced(self):
        if not os.path.exists(self.trace):
            return []
        with open(self.trace) as f:
            return f.read().split()

    def check_recovery(self, open_run, new_outputs_ok, refusals=True):
        """What a user does after a killed run, and everything that must then hold
        (refusals: also that check, apply and export refuse while the run is open)."""
        status = self.make("status")
        if open_run:
            assert status.returncode != 0 and "OPEN RUN" in status.stdout, status.stdout + status.stderr
            for target in ("check", "apply", "export") if refusals else ():
                r = self.make(target)
                lines = error_lines(r)
                assert recipe_exit(r) == 2 and len(lines) == 1, (target, r.stdout, r.stderr)
                assert "make revert" in lines[0], lines[0]
            assert read_manifest(self.tree) is not None  # the refusals left it as it was
        else:
            assert status.returncode == 0 and "patches  unapplied" in status.stdout, status.stdout + status.stderr
            assert self.target_snapshot() == self.targets_before  # clean already, as status says
        r = self.make("revert")
        assert r.returncode == 0, r.stdout + r.stderr
        self.check_clean(new_outputs_ok)

    def check_clean(self, new_outputs_ok):
        assert self.target_snapshot() == self.targets_before
        assert git_status(self.tree) == ""
        assert not os.path.exists(state_dir(self.tree))
        assert self.user_snapshot() == self.user_before
        check_outputs(self.user / "out", new_outputs_ok)


def wait_group_gone(pgid, timeout=60):
    """Until no live process of the group is left: after Ctrl-C, make can return while the
    kit it started still reverts (zombies an init that does not reap keeps are not alive)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        alive = False
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive = True
                break
        if not alive:
            return
        time.sleep(0.1)
    raise AssertionError("processes of group %d still running after %ds" % (pgid, timeout))


def check_outputs(out, new_ok):
    """The output folder holds the old files, or (new_ok) complete new ones; nothing else."""
    names = sorted(os.listdir(out))
    assert set(names) <= set(OLD) | {"other.pkl"}, names  # no temp file, no stray output
    assert (out / "other.pkl").read_bytes() == b"another model's centers"
    for name, old in OLD.items():
        path = out / name
        data = path.read_bytes() if path.exists() else None
        if data == old:
            continue
        assert new_ok, "%s changed by a run that did not finish" % name
        assert data is not None, "%s deleted" % name
        if name.endswith(".pkl"):
            centers = pickle.loads(data)
            assert centers and all(v.dtype == np.float32 for v in centers.values())
        elif name.endswith(".json"):
            assert json.loads(data)["images_seen"] == 6
        else:
            assert data.startswith(b"\x89PNG") and data.endswith(b"IEND\xaeB`\x82")


def test_every_fault_point_is_listed(run):
    """A traced run without a kill passes every point in POINTS once, in order, and (with
    Paddle) exports; so the kill tests below cover every step there is."""
    rc, stdout, stderr = run.make_in_session()
    assert run.traced() == ORDER
    if run.python:
        assert rc == 0, stdout[-2000:] + stderr[-2000:]
    else:
        assert rc != 0  # the child cannot import Paddle; apply and revert ran all the same
    run.check_clean(new_outputs_ok=True)
    if run.python:
        assert all((run.user / "out" / n).read_bytes() != old for n, old in OLD.items())


@pytest.mark.parametrize("point,sig,whom", KILLS + SAMPLED_KILLS, ids=["%s-%s-%s" % k for k in KILLS] + [
    "%s-%s-%s-seed%s" % (k + (FAULT_SEED,)) for k in SAMPLED_KILLS])
def test_killed_export_loses_nothing(run, point, sig, whom):
    real = point in REAL_CHILD or sig != "KILL"
    env = {"CENTERKIT_KILL_AT": "%s:%s%s" % (point, sig, ":self" if whom == "self" else "")}
    rc, stdout, stderr = run.make_in_session(dict(env, **({} if real else QUICK_CHILD)))
    traced = run.traced()
    assert point in traced, "the run never reached %s: %s" % (point, traced)
    assert rc != 0, "make export finished despite the kill at %s" % point
    child_done = ORDER.index(point) >= CHILD_DONE and run.python is not None and real
    if not real and ORDER.index(point) >= CHILD_DONE:
        assert "child.start#1" in traced  # the quick child ran (and exited) before the kill
    if sig == "KILL":
        assert traced[-1] == point  # nothing ran after it
        run.check_recovery(OPEN_AFTER_KILL[point], new_outputs_ok=child_done, refusals=point in REFUSALS_AT)
    else:
        # Ctrl-C / SIGTERM: the kit reverts by itself (deferred while it restores files).
        if OPEN_AFTER_KILL[point]:
            assert traced[-1] == "revert.done#1", traced
        assert "ppocr-center-kit: interrupted" in stderr, stderr[-2000:]
        assert read_manifest(run.tree) is None
        run.check_recovery(open_run=False, new_outputs_ok=child_done)


@pytest.mark.parametrize("sig", ["INT", "TERM", "KILL"])
def test_killed_make_revert_loses_nothing(run, sig):
    """`make revert` itself interrupted between the two files it restores: Ctrl-C and
    SIGTERM wait until every file is back; after SIGKILL the next `make revert` finishes."""
    rc, _, _ = run.make_in_session({"CENTERKIT_KILL_AT": "apply.done"})
    assert rc != 0 and read_manifest(run.tree) is not None
    os.unlink(run.trace)
    rc, stdout, stderr = run.make_in_session({"CENTERKIT_KILL_AT": "revert.file-restored:%s" % sig}, target="revert")
    traced = run.traced()
    assert rc != 0 and "revert.file-restored#1" in traced, (traced, stdout, stderr)
    if sig == "KILL":
        assert traced[-1] == "revert.file-restored#1" and read_manifest(run.tree) is not None
    else:
        assert traced[-1] == "revert.done#1", traced  # the signal waited for the restore
        assert read_manifest(run.tree) is None
    run.check_recovery(sig == "KILL", new_outputs_ok=False)


CHILD_FAULTS = [  # (event, file, action, the kit's run left open, new outputs possible)
    ("loop", "-", "KILL", True, False),  # mid-forward
    ("fsync", "out.pkl", "KILL", True, False),  # the pkl's temp written, not renamed
    ("replaced", "out.pkl", "KILL", True, True),  # the pkl in place, the report not yet
    ("fsync", "out.report.json", "INT", False, True),  # Ctrl-C while writing the report
]


@pytest.mark.parametrize("event,name,action,open_run,new_ok", CHILD_FAULTS,
                         ids=["%s-%s-%s" % c[:3] for c in CHILD_FAULTS])
def test_export_child_killed(run, event, name, action, open_run, new_ok):
    run.need_paddle()
    rc, stdout, stderr = run.make_in_session({"CENTERKIT_CHILD_FAULT": "%s:%s:%s" % (event, name, action)})
    assert "child.%s#1" % event in run.traced(), stdout[-2000:] + stderr[-2000:]
    assert rc != 0
    run.check_recovery(open_run, new_outputs_ok=new_ok)


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "VERBOSE=1"])
def test_ctrl_c_prints_the_kits_lines_not_a_traceback(run, verbose):
    """Ctrl-C mid-export: the kit's lines (interrupted, reverted), not the child's
    KeyboardInterrupt traceback, and none of Paddle's known noise; VERBOSE=1 shows the noise."""
    run.need_paddle()
    rc, stdout, stderr = run.make_in_session({"CENTERKIT_CHILD_FAULT": "loop:-:INT", **({"VERBOSE": "1"} if verbose else {})})
    assert "child.loop#1" in run.traced(), stdout[-2000:] + stderr[-2000:]
    assert rc != 0 and "ppocr-center-kit: interrupted" in stderr and "reverted series" in stdout, stderr[-3000:]
    shown = stdout + stderr
    if verbose:
        assert "No ccache found" in shown and "Skipping import of the encryption module" in shown, shown[-3000:]
    else:
        assert "Traceback" not in shown and "KeyboardInterrupt" not in shown, shown[-3000:]
        assert not any(noise in shown for noise in quiet.NOISE), shown[-3000:]
    run.check_recovery(False, new_outputs_ok=False)


@pytest.mark.parametrize("progress", ["+ ", "Initialize indexs of datasets", "weights: "])
def test_export_killed_at_child_progress(run, progress):
    """SIGKILL of everything as soon as the child's output shows a stage (the kit's launch
    line: Paddle's import ahead; the data loader built; the weights loaded): timing,
    not a step, so where it lands varies, and everything must hold wherever it does."""
    run.need_paddle()
    rc, stdout, stderr = run.make_in_session(kill_when=progress)
    assert progress in stdout and rc == -signal.SIGKILL, (rc, stdout[-2000:], stderr[-2000:])
    run.check_recovery(read_manifest(run.tree) is not None, new_outputs_ok=True)


@pytest.mark.parametrize("name", ["out.pkl", "out.report.json"])
def test_full_disk_writing_an_output(run, name):
    """ENOSPC on the pkl, or on the report after the pkl was written: one line naming it,
    exit 2, tree reverted, and the old outputs kept (both temp files are written before
    either is published)."""
    run.need_paddle()
    rc, stdout, stderr = run.make_in_session({"CENTERKIT_CHILD_FAULT": "fsync:%s:ENOSPC" % name})
    result = subprocess.CompletedProcess([], rc, stdout, stderr)
    lines = error_lines(result)
    assert recipe_exit(result) == 2 and len(lines) == 1, stderr[-3000:]
    out = str(run.user / "out" / name)
    assert "cannot write %s: No space left on device" % out in lines[0] and "OUTPUT=" in lines[0], lines[0]
    assert read_manifest(run.tree) is None
    run.check_clean(new_outputs_ok=False)


def test_no_kill_hook_without_the_variable():
    """The hook costs nothing and does nothing in a real run: the flag is read once (this
    process has conftest.HOSTILE's CENTERKIT_KILL_AT, without the test run's token)."""
    assert not faults._ACTIVE
    faults.fault_point("apply.done")  # would kill this very process were it armed
    assert faults._seen == {}


def test_inherited_fault_variables_alone_do_nothing(run):
    """CENTERKIT_KILL_AT, CENTERKIT_CHILD_FAULT and CENTERKIT_FAULT_TRACE left in a user's
    shell (the test hook even on PYTHONPATH), without the test run's token: nothing is
    killed or traced, and the export completes."""
    run.need_paddle()
    rc, stdout, stderr = run.make_in_session({"CENTERKIT_KILL_AT": "apply.done", "CENTERKIT_CHILD_FAULT": "loop:-:KILL"},
                                             armed=False)
    assert rc == 0, stdout[-2000:] + stderr[-2000:]
    assert run.traced() == []
    run.check_clean(new_outputs_ok=True)
    assert all((run.user / "out" / n).read_bytes() != old for n, old in OLD.items())


@pytest.mark.parametrize("token", ["none", "missing file", "other text", "armed"])
def test_fault_points_need_the_test_runs_token(tmp_path, token):
    """No clone needed: a process with CENTERKIT_KILL_AT set reaches the point and goes on,
    unless CENTERKIT_TEST_FAULTS names a file holding faults.TOKEN_TEXT."""
    env = helper_env({"CENTERKIT_KILL_AT": "apply.done", "CENTERKIT_FAULT_TRACE": str(tmp_path / "trace")})
    if token != "none":
        env["CENTERKIT_TEST_FAULTS"] = str(tmp_path / "token")
    if token in ("other text", "armed"):
        (tmp_path / "token").write_text(faults.TOKEN_TEXT if token == "armed" else "1\n")
    code = "from centerkit import faults; faults.fault_point('apply.done'); print('went on')"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, start_new_session=True)
    if token == "armed":
        assert r.returncode == -signal.SIGKILL and (tmp_path / "trace").read_text() == "apply.done#1\n"
    else:
        assert r.returncode == 0 and r.stdout == "went on\n", r.stderr
        assert not (tmp_path / "trace").exists()
