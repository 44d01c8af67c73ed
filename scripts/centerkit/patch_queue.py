"""Apply and revert a patch series in a PaddleOCR tree without ever losing a byte.

- state detection as patch-package does it: the forward dry run passes = not applied,
  else the reverse dry run passes = applied, else the files conflict;
- before applying, the original bytes and mode of every target are saved in a state
  folder (quilt's .pc/), inside the git dir when there is one so `git status` stays clean;
- revert restores those bytes (not a reverse patch), so local edits survive, and a
  crashed or killed run is always recoverable: the state folder says a run is open;
- one run per tree at a time (an flock, released by the kernel even on SIGKILL).
"""

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import signal
import tempfile

from . import KitError
from .patchfile import series_patches, targets

STATE_NAME = "ppocr-center-kit"
MANIFEST = "manifest.json"


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


def read_manifest(tree):
    """The open run's manifest (series, phase, saved files), or None when none is open."""
    path = os.path.join(state_dir(tree), MANIFEST)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _write_atomic(path, data, mode=None):
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".ck-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def signals_deferred():
    """Hold SIGINT/SIGTERM/SIGHUP while restoring files, then deliver them."""
    sigs = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class TreeLock:
    """One kit run per tree; the lock file lives outside the tree."""

    def __init__(self, tree):
        key = hashlib.sha1(os.path.realpath(tree).encode()).hexdigest()[:16]
        self.path = os.path.join(tempfile.gettempdir(), "ppocr-center-kit-%s.lock" % key)
        self.tree = tree
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(self.fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(self.fd)
            raise KitError(
                "another ppocr-center-kit run (pid %s) is working in %s; wait for it to finish"
                % (holder, self.tree)
            )
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # closing releases the flock


class PatchQueue:
    def __init__(self, tree, series):
        self.tree = os.path.abspath(tree)
        self.series = series
        self.patches = series_patches(series)
        self.state = state_dir(self.tree)

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

    def require_no_open_run(self):
        m = self.manifest()
        if m is not None:
            raise KitError(
                "a previous run left %s patched (series %s, %s); run `make revert` to restore it"
                % (self.tree, m["series"], m["phase"])
            )

    def apply(self, release=None):
        """Dry run, save originals, apply the whole series atomically (git apply is
        all-or-nothing across the patches it is given)."""
        self.require_no_open_run()
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
                shutil.copyfile(src, saved)
                entry.update(saved=saved, sha256=sha256_file(src), mode=os.stat(src).st_mode & 0o7777)
            files[rel] = entry
        manifest = dict(series=self.series, release=release, phase="applying", files=files)
        _write_atomic(os.path.join(self.state, MANIFEST), json.dumps(manifest, indent=1).encode())
        ok, msg = self._git_apply(*self.patches)
        if not ok:
            self.revert()
            raise KitError("git apply failed in %s: %s" % (self.tree, msg))
        manifest["phase"] = "applied"
        _write_atomic(os.path.join(self.state, MANIFEST), json.dumps(manifest, indent=1).encode())
        return manifest

    def revert(self):
        """Restore every target to its saved bytes and mode, check them, drop the state.
        Without a state folder, a series found applied is reversed with git apply -R."""
        with signals_deferred():
            m = self.manifest()
            if m is None:
                shutil.rmtree(self.state, ignore_errors=True)
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
            for rel, entry in m["files"].items():
                path = os.path.join(self.tree, rel)
                if not entry["existed"]:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                    continue
                with open(entry["saved"], "rb") as f:
                    data = f.read()
                _write_atomic(path, data, entry["mode"])
                if sha256_file(path) != entry["sha256"] or os.stat(path).st_mode & 0o7777 != entry["mode"]:
                    raise KitError("%s could not be restored; its original is kept in %s" % (path, entry["saved"]))
            shutil.rmtree(self.state)
            return "restored"
