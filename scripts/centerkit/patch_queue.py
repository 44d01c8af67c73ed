"""Apply and revert a patch series in a PaddleOCR tree without ever losing a byte.

- state detection as patch-package does it: the forward dry run passes = not applied,
  else the reverse dry run passes = applied, else the files conflict;
- before applying, the original bytes and mode of every target are saved in a state
  folder (quilt's .pc/), inside the git dir when there is one so `git status` stays clean;
- revert restores those bytes (not a reverse patch), so local edits survive, and a
  crashed or killed run is always recoverable: the state folder says a run is open;
- one run per tree at a time (an flock, released by the kernel even on SIGKILL);
- a kill at any step leaves either the untouched tree or an open run that `make revert`
  finishes (tests/test_fault_injection.py kills a run at every faults.fault_point).
"""

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile

from . import KitError
from .faults import fault_point
from .fork import export_center as ec
from .patchfile import series_patches, targets

STATE_NAME = "ppocr-center-kit"
MANIFEST = "manifest.json"
# Temp files of _write_atomic: a kill between mkstemp and rename leaves one next to a
# restored file, so revert removes whatever carries this prefix in the target folders.
TMP_PREFIX = ".ppocr-center-kit-tmp-"


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _git_dir(tree):
    """The tree's own git dir (a worktree's private one), or None outside git."""
    try:
        import git

        repo = git.Repo(tree)
    except Exception:
        return None
    if os.path.realpath(repo.working_tree_dir) != os.path.realpath(tree):
        return None
    return repo.git_dir


def state_dir(tree):
    git_dir = _git_dir(tree)
    return os.path.join(git_dir, STATE_NAME) if git_dir else os.path.join(tree, "." + STATE_NAME)


def _is_original(path, entry):
    """Whether path holds the saved original's bytes and mode (its manifest entry)."""
    return os.path.isfile(path) and sha256_file(path) == entry["sha256"] and os.stat(path).st_mode & 0o7777 == entry["mode"]


def read_manifest(tree):
    """The open run's manifest (series, phase, saved files), or None when none is open."""
    path = os.path.join(state_dir(tree), MANIFEST)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _write_atomic(path, data, mode=None):
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        fault_point("atomic.temp-written")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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


class TreeLock:
    """One kit run per tree: an flock on the tree's own git dir (a worktree's private one),
    else on the tree folder. Nothing is created, and every run on the tree sees the same
    lock, whatever its TMPDIR or user; the kernel drops it when the holder dies."""

    def __init__(self, tree):
        self.path = _git_dir(tree) or tree
        self.tree = tree
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(self.fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise KitError("another ppocr-center-kit run is working in %s; wait for it to finish" % self.tree)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # closing releases the flock


class PatchQueue:
    def __init__(self, tree, series):
        self.tree = os.path.abspath(tree)
        self.series = series
        self.patches = series_patches(series)
        self.state = state_dir(self.tree)
        self.kept_edits = []  # (file, copy of the edits made to it while patched)
        self.reverted = None  # what the revert at the end of applied() did

    # -- git apply ------------------------------------------------------------------
    def _git_apply(self, *args):
        """(ok, message) of `git apply` in the tree. GIT_CEILING_DIRECTORIES keeps a tree
        that is not a repository from being taken for part of an enclosing one."""
        import git

        env = {"GIT_CEILING_DIRECTORIES": os.path.dirname(self.tree)}
        try:
            git.Git(self.tree).execute(["git", "apply", *args], env=env)
            return True, ""
        except git.GitCommandError as e:
            return False, (e.stderr or str(e)).strip().replace("stderr: ", "")

    def targets(self):
        seen = []
        for patch in self.patches:
            seen += [t for t in targets(patch) if t not in seen]
        return seen

    def detect(self):
        """'unapplied', 'applied' or 'conflict', plus per-patch detail for messages."""
        if self._git_apply("--check", *self.patches)[0]:
            return "unapplied", []
        if self._git_apply("--check", "-R", *reversed(self.patches))[0]:
            return "applied", []
        detail = []
        for patch in self.patches:
            ok, msg = self._git_apply("--check", patch)
            if not ok and not self._git_apply("--check", "-R", patch)[0]:
                first = msg.splitlines()[0] if msg else "does not apply"
                detail.append("%s (%s)" % (os.path.basename(patch), first))
        return "conflict", detail

    # -- state folder ---------------------------------------------------------------
    def manifest(self):
        return read_manifest(self.tree)

    def require_writable(self):
        """Refuse before touching anything when a file to patch, its folder (git apply and
        the restore replace files) or the state folder's parent cannot be written: else the
        run would stop halfway. Targets the tree lacks are left to detect()'s message."""
        checks = [os.path.dirname(self.state)]
        for rel in self.targets():
            path = os.path.join(self.tree, rel)
            if os.path.exists(path):
                checks += [path, os.path.dirname(path)]
            elif os.path.isdir(os.path.dirname(path)):  # a file the series creates
                checks.append(os.path.dirname(path))
        for path in checks:
            if not os.access(path, os.W_OK | (os.X_OK if os.path.isdir(path) else 0)):
                raise KitError(
                    "%s is read-only, and the kit must patch %s and restore it; make it "
                    "writable (chmod u+w) for the run, or export from a writable clone"
                    % (path, ", ".join(self.targets()))
                )

    def require_no_open_run(self):
        m = self.manifest()
        if m is not None:
            raise KitError(
                "a previous run left %s patched (series %s, %s); run `make revert` to restore it"
                % (self.tree, m["series"], m["phase"])
            )

    def apply(self, release=None, outputs=()):
        """Dry run, save originals, apply the whole series atomically (git apply is
        all-or-nothing across the patches it is given). outputs: the files the run will
        write, whose temp files a revert removes (a killed export leaves its own behind)."""
        self.require_no_open_run()
        self.require_writable()
        status, detail = self.detect()
        if status == "applied":
            raise KitError(
                "%s already carries the %s patches (applied by hand?); run `make revert` first"
                % (self.tree, self.series)
            )
        if status == "conflict":
            raise KitError(
                "the %s patches do not apply to %s: %s; commit or stash local edits to %s "
                "(git stash), or set PADDLEOCR_VERSION if the release is misdetected"
                % (self.series, self.tree, "; ".join(detail), ", ".join(self.targets()))
            )
        shutil.rmtree(self.state, ignore_errors=True)  # leftovers of a run killed pre-manifest
        os.makedirs(os.path.join(self.state, "orig"))
        files = {}
        for i, rel in enumerate(self.targets()):
            src = os.path.join(self.tree, rel)
            entry = {"existed": os.path.exists(src)}
            if entry["existed"]:
                saved = os.path.join(self.state, "orig", str(i))
                with open(src, "rb") as f:
                    data = f.read()
                _write_atomic(saved, data)  # fsynced before the manifest points at it
                entry.update(saved=saved, sha256=hashlib.sha256(data).hexdigest(), mode=os.stat(src).st_mode & 0o7777)
                fault_point("apply.original-saved")
            files[rel] = entry
        manifest = dict(series=self.series, release=release, phase="applying", files=files, outputs=list(outputs))
        # From here on the manifest says a run is open: a kill leaves `make revert` to finish.
        _write_atomic(os.path.join(self.state, MANIFEST), json.dumps(manifest, indent=1).encode())
        try:
            fault_point("apply.manifest-written")
            ok, msg = self._git_apply(*self.patches)
            fault_point("apply.git-applied")
            if not ok:
                raise KitError("git apply failed in %s: %s" % (self.tree, msg))
            manifest["phase"] = "applied"
            for rel, entry in files.items():  # to tell later edits from the patches
                if os.path.isfile(os.path.join(self.tree, rel)):
                    entry["patched_sha256"] = sha256_file(os.path.join(self.tree, rel))
            _write_atomic(os.path.join(self.state, MANIFEST), json.dumps(manifest, indent=1).encode())
            fault_point("apply.done")
        except BaseException:  # a failed apply or Ctrl-C/SIGTERM mid-apply: undo it now
            self.revert()
            raise
        return manifest

    @contextlib.contextmanager
    def applied(self, release=None, outputs=()):
        """The series applied for the with-block and reverted after it, whatever ends it (an
        error, Ctrl-C or SIGTERM in apply or in the block), as pre-commit's staged_files_only.
        An apply that fails undoes itself; self.reverted says what the final revert did."""
        self.require_no_open_run()  # an earlier run's patches are for `make revert`, not us
        try:
            self.apply(release, outputs=outputs)
            yield self
        finally:
            with signals_deferred():  # a second Ctrl-C waits for the revert
                if self.manifest() is not None:
                    self.reverted = self.revert()

    @staticmethod
    def _remove_stale_temps(folder, pattern=None):
        """Remove what a killed _write_atomic left in folder, or with pattern, the files
        matching it (the temps of the export's write_files)."""
        with contextlib.suppress(OSError):
            for name in os.listdir(folder):
                if (pattern.match(name) if pattern else name.startswith(TMP_PREFIX)):
                    os.unlink(os.path.join(folder, name))

    def _keep_edits(self, path, entry):
        """A file edited while the series was applied (`make apply`, then experiments) is
        copied beside itself before the original comes back: revert never loses an edit."""
        if "patched_sha256" not in entry or not os.path.isfile(path) or sha256_file(path) == entry["patched_sha256"]:
            return
        keep, n = path + ".edited-while-patched", 1
        while os.path.exists(keep):
            n += 1
            keep = "%s.edited-while-patched.%d" % (path, n)
        shutil.copy2(path, keep)
        self.kept_edits.append((path, keep))

    def revert(self):
        """Restore every target to its saved bytes and mode, check them, drop the state.
        Without a state folder, a series found applied is reversed with git apply -R."""
        with signals_deferred():
            m = self.manifest()
            if m is None:
                shutil.rmtree(self.state, ignore_errors=True)
                for folder in {os.path.dirname(os.path.join(self.tree, t)) for t in self.targets()}:
                    self._remove_stale_temps(folder)
                status, detail = self.detect()
                if status == "applied":
                    ok, msg = self._git_apply("-R", *reversed(self.patches))
                    if not ok:
                        raise KitError("could not reverse the %s patches: %s" % (self.series, msg))
                    return "reversed"
                if status == "conflict":
                    raise KitError(
                        "%s carries neither the %s patches nor their originals (%s); restore the "
                        "files with git checkout -- %s" % (self.tree, self.series, "; ".join(detail), " ".join(self.targets()))
                    )
                return "clean"
            fault_point("revert.begin")
            for out in m.get("outputs", []):  # the run's child is gone: its temps are debris
                pattern = re.compile(re.escape(ec.temp_prefix(out)) + r"[a-z0-9_]{8}$")
                self._remove_stale_temps(os.path.dirname(out), pattern)
            for rel, entry in m["files"].items():
                path = os.path.join(self.tree, rel)
                self._remove_stale_temps(os.path.dirname(path))
                if not entry["existed"]:  # a file the series created: removed, edits kept aside
                    if os.path.isfile(path):
                        self._keep_edits(path, entry)
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                    fault_point("revert.file-removed")
                    continue
                if _is_original(path, entry):
                    fault_point("revert.file-restored")
                    continue  # already the original (a revert killed after this file)
                self._keep_edits(path, entry)
                try:
                    with open(entry["saved"], "rb") as f:
                        data = f.read()
                except OSError as e:
                    raise KitError("the saved original of %s is unreadable (%s); restore it with git checkout -- %s" % (path, e.strerror, rel))
                if hashlib.sha256(data).hexdigest() != entry["sha256"]:  # never write a damaged copy
                    raise KitError("the saved original of %s (%s) is damaged; restore it with git checkout -- %s" % (path, entry["saved"], rel))
                _write_atomic(path, data, entry["mode"])
                if not _is_original(path, entry):
                    raise KitError("%s could not be restored; its original is kept in %s" % (path, entry["saved"]))
                fault_point("revert.file-restored")
            # The manifest goes first: once it is gone the run is closed, and what is left of
            # the state folder is removed by the next apply or revert.
            os.unlink(os.path.join(self.state, MANIFEST))
            fault_point("revert.manifest-removed")
            shutil.rmtree(self.state, ignore_errors=True)
            fault_point("revert.done")
            return "restored"
