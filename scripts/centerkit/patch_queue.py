"""Apply and revert a patch series in a PaddleOCR tree without ever losing a byte.

- state detection as patch-package does it: the forward dry run passes = not applied,
  else the reverse dry run passes = applied, else the files conflict;
- before applying, the original bytes and mode of every target are saved in a state
  folder (quilt's .pc/), inside the git dir when there is one so `git status` stays clean;
- revert restores those bytes (not a reverse patch), so local edits survive, and a
  crashed or killed run is always recoverable: the state folder says a run is open;
- the caller holds tree.TreeLock: one run per tree at a time;
- a kill at any step leaves either the untouched tree or an open run that `make revert`
  finishes (tests/test_fault_injection.py kills a run at every faults.fault_point).
"""

import contextlib
import hashlib
import json
import os
import shutil
import sys

from . import KitError, conflicts, releases
from .faults import fault_point
from .files import remove_temps, sha256 as file_sha256, write_atomic
from .patchfile import all_series, series_patches, targets
from .supervise import signals_deferred
from .tree import git_dir

STATE_NAME = "ppocr-center-kit"
MANIFEST = "manifest.json"
def state_dir(tree):
    folder = git_dir(tree)
    return os.path.join(folder, STATE_NAME) if folder else os.path.join(tree, "." + STATE_NAME)


def _is_original(path, entry):
    """Whether path holds the saved original's bytes and mode (its manifest entry)."""
    return os.path.isfile(path) and file_sha256(path) == entry["sha256"] and os.stat(path).st_mode & 0o7777 == entry["mode"]


def read_manifest(tree):
    """The open run's manifest (series, phase, saved files), or None when none is open."""
    path = os.path.join(state_dir(tree), MANIFEST)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _write_atomic(path, data, mode=None):
    """files.write_atomic with the fault point the fault-injection test kills at."""
    write_atomic(path, data, mode, fault="atomic.temp-written")


def git_apply(folder, *args):
    """(ok, message) of `git apply` in folder. GIT_CEILING_DIRECTORIES keeps a folder that
    is not a repository from being taken for part of an enclosing one."""
    import git

    env = {"GIT_CEILING_DIRECTORIES": os.path.dirname(os.path.abspath(folder))}
    try:
        git.Git(folder).execute(["git", "apply", *args], env=env)
        return True, ""
    except git.GitCommandError as e:
        message = (e.stderr or str(e)).strip()
        if message.startswith("stderr: "):  # GitPython's wrapping: stderr: '<git's text>'
            message = message[len("stderr: "):].strip("'")
        return False, message


class PatchQueue:
    def __init__(self, tree, series):
        self.tree = os.path.abspath(tree)
        self.series = series
        self.patches = series_patches(series)
        self.state = state_dir(self.tree)
        self.kept_edits = []  # (file, copy of the edits made to it while patched)
        self.proven, self.note = True, None  # False: a release the table does not list (for_tree)
        self.version_source = None  # where for_tree read the release (a tag, a file, PADDLEOCR_VERSION)
        self.reverted = None  # what the revert at the end of applied() did
        self.conflicts = []  # what detect() found in the way [(patch, file, kind)]

    @classmethod
    def for_tree(cls, tree, for_revert=False, quiet=False):
        """(queue, release) of the tree's release; for a revert, an open run's own series.
        A release the table does not list (or a tree without a version) gets the first of
        releases.candidate_series that applies cleanly or is applied, with a note (unless
        quiet) that it is not yet proven; queue.proven says which."""
        m = read_manifest(tree) if for_revert else None
        if m is not None:
            return cls(tree, m["series"]), m.get("release")
        try:
            version, source = releases.detect_version(tree)
        except KitError:
            version, source = None, "no tag, no version file"
        series = releases.listed_series(version)
        if series is not None:
            q = cls(tree, series)
            q.version_source = source
            return q, version
        if version is not None:
            releases.require_version(version)
        failures = []
        for series in releases.candidate_series(version, folders=all_series()):
            q = cls(tree, series)
            status, detail = q.detect()
            if status in ("unapplied", "applied"):
                q.proven, q.version_source = False, source
                what = "PaddleOCR %s (%s)" % (version, source) if version else "this tree (%s)" % source
                q.note = ("%s is not in the release table; series %s applies cleanly and is used: this release "
                          "is not yet proven by the kit's tests (maintainers: make add-release)" % (what, series))
                if not quiet:
                    print("ppocr-center-kit: note: %s" % q.note, file=sys.stderr, flush=True)
                return q, version or "unknown"
            failures.append("%s: %s" % (series, "; ".join(detail) or status))
        what = "PaddleOCR %s" % version if version else "%s (no tag, no version file)" % tree
        raise KitError("%s is not in the release table and no patch series applies cleanly to it (%s); check out a "
                       "supported tag (patches/releases.tsv), or set PADDLEOCR_VERSION=<the release your tree matches>"
                       % (what, failures[0]))

    # -- git apply ------------------------------------------------------------------
    def _git_apply(self, *args):
        return git_apply(self.tree, *args)

    def targets(self):
        seen = []
        for patch in self.patches:
            seen += [t for t in targets(patch) if t not in seen]
        return seen

    def detect(self):
        """'unapplied', 'applied' or 'conflict', plus detail for messages: on a conflict,
        each file that stops a patch and where (the first line of the first failing hunk
        that differs); self.conflicts keeps them [(patch, file, kind)] for advice()."""
        self.conflicts = []
        if self._git_apply("--check", *self.patches)[0]:
            return "unapplied", []
        if self._git_apply("--check", "-R", *reversed(self.patches))[0]:
            return "applied", []
        detail = []
        for patch in self.patches:
            ok, msg = self._git_apply("--check", patch)
            if not ok and not self._git_apply("--check", "-R", patch)[0]:
                for path, kind, text in conflicts.reasons(self.tree, patch, msg):
                    if any(path == seen for _, seen, _ in self.conflicts):
                        continue  # a later patch of the file, checked alone, needs the earlier one's change
                    self.conflicts.append((patch, path, kind))
                    detail.append("%s (%s): %s" % (path, os.path.basename(patch), text))
        return "conflict", detail

    def advice(self, release=None):
        """The next step that clears what detect() found (conflicts.advice)."""
        return conflicts.advice(self.tree, self.conflicts, release)

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
                "the %s patches do not apply to %s: %s; %s (or set PADDLEOCR_VERSION if the release is misdetected)"
                % (self.series, self.tree, "; ".join(detail), self.advice(release))
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
                    entry["patched_sha256"] = file_sha256(os.path.join(self.tree, rel))
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

    def _keep_edits(self, path, entry):
        """A file edited while the series was applied (`make apply`, then experiments) is
        copied beside itself before the original comes back: revert never loses an edit."""
        if "patched_sha256" not in entry or not os.path.isfile(path) or file_sha256(path) == entry["patched_sha256"]:
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
                for rel in self.targets():
                    remove_temps(os.path.join(self.tree, rel))
                status, detail = self.detect()
                if status == "applied":
                    ok, msg = self._git_apply("-R", *reversed(self.patches))
                    if not ok:
                        raise KitError("could not reverse the %s patches: %s" % (self.series, msg))
                    return "reversed"
                if status == "conflict":
                    raise KitError(
                        "%s carries neither the %s patches nor their originals (%s); %s"
                        % (self.tree, self.series, "; ".join(detail), self.advice())
                    )
                return "clean"
            fault_point("revert.begin")
            for out in m.get("outputs", []):  # the run's child is gone: its temps are debris
                remove_temps(out)
            for rel, entry in m["files"].items():
                path = os.path.join(self.tree, rel)
                remove_temps(path)
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
