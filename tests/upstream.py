"""Real upstream PaddleOCR files for the tests, never committed, cached between runs.

- sdist tier (always, offline from GitHub): the PyPI sdists paddleocr==2.9.0 ... 3.7.0,
  fetched with pip and checked against the sha256 pinned in patches/releases.tsv. They
  carry tools/ (export_center.py, program.py, train.py) and ppocr/ without ppocr/modeling.
- clone tier: PADDLEOCR_REPO (a local clone with history), else PADDLEOCR_GIT_URL, else
  ../shared/paddleocr-releases.bundle (one tagged commit per supported release; the last two
  are cloned once into the cache); one sparse shared clone per release, at the release tag
  when the clone has it, else at the commit that ../shared/upstream-releases.tsv gives.
"""

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile

import git

from centerkit import released_models
from centerkit.files import sha256

KIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = released_models.cache_dir()  # the kit's one cache rule (PPOCR_CENTER_KIT_CACHE, XDG_CACHE_HOME)
SHARED = os.path.join(os.path.dirname(KIT), "shared")
RELEASES_TSV = os.environ.get("PADDLEOCR_RELEASES_TSV") or os.path.join(SHARED, "upstream-releases.tsv")
BUNDLE = os.environ.get("PADDLEOCR_RELEASES_BUNDLE") or os.path.join(SHARED, "paddleocr-releases.bundle")
SDIST_PARTS = ("tools/", "ppocr/", "PKG-INFO")
SPARSE_DIRS = ("ppocr", "tools", "configs")


def sdist_archive(release):
    """The verified sdist archive of a release (downloaded once into the cache)."""
    version = release.name.lstrip("v")
    pinned = released_models.Pinned("paddleocr==%s" % version, "paddleocr-%s.tar.gz" % version, release.sdist_sha256)
    return released_models.downloaded(pinned, log=lambda line: None, folder=os.path.join(CACHE, "sdists"),
                                      pip_args=("--no-binary", ":all:"))


def sdist_tree(release, dest):
    """A fresh tree of the sdist's tools/, ppocr/ and PKG-INFO under dest; returns its path."""
    archive = sdist_archive(release)
    with tarfile.open(archive) as tar:
        top = tar.getnames()[0].split("/")[0]
        members = [
            m for m in tar.getmembers()
            if m.name.split("/", 1)[-1].startswith(SDIST_PARTS) and (m.isfile() or m.isdir())
        ]
        tar.extractall(dest, members=members)
    return os.path.join(dest, top)


def release_commits():
    """{release: upstream commit} from ../shared/upstream-releases.tsv ({} if absent)."""
    if not os.path.isfile(RELEASES_TSV):
        return {}
    with open(RELEASES_TSV, encoding="utf-8") as f:
        rows = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    return {r[0]: r[1] for r in rows[1:]}


def clone_source():
    """(path of a local clone with history, or None, why not)."""
    repo = os.environ.get("PADDLEOCR_REPO")
    if repo:
        if not os.path.exists(repo):
            return None, "PADDLEOCR_REPO=%s does not exist" % repo
        return repo, ""
    url = os.environ.get("PADDLEOCR_GIT_URL")
    if url:
        return cached_bare_clone(url, "upstream.git"), ""
    if os.path.isfile(BUNDLE):
        # keyed by the bundle's hash: a newer bundle gets its own clone
        return cached_bare_clone(BUNDLE, "releases-%s.git" % sha256(BUNDLE)[:12]), ""
    return None, ("no %s; set PADDLEOCR_REPO=<local PaddleOCR clone> or PADDLEOCR_GIT_URL to run "
                  "the clone tier" % os.path.normpath(BUNDLE))


def cached_bare_clone(url, name):
    """A bare clone of url in the cache, made once (under a temp name, renamed when whole)."""
    path = os.path.join(CACHE, name)
    if not os.path.isdir(path):
        os.makedirs(CACHE, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=name + ".", dir=CACHE)
        try:
            git.Repo.clone_from(url, tmp, bare=True)
            try:
                os.replace(tmp, path)
            except OSError:  # another test worker's clone got there first
                if not os.path.isdir(path):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def release_revision(source, release):
    """The tag if the clone has it, else the shared table's commit, else None."""
    repo = git.Repo(source)
    try:
        return repo.git.rev_parse("--verify", "-q", "refs/tags/%s^{commit}" % release)
    except git.GitCommandError:
        pass
    commit = release_commits().get(release)
    if commit:
        try:
            return repo.git.rev_parse("--verify", "-q", "%s^{commit}" % commit)
        except git.GitCommandError:
            return None
    return None


def release_tree(source, release, gitignore=True):
    """A clean sparse checkout of the release (ppocr/, tools/, configs/, top-level files),
    a shared clone of `source` kept in the cache and reset before each use. Without
    `gitignore`, upstream's .gitignore is removed in a local commit on top: a clean tree in
    which nothing the kit leaves behind (bytecode included) is hidden from `git status`."""
    rev = release_revision(source, release)
    if rev is None:
        return None
    # one tree per test worker (pytest-xdist): one kit run per tree at a time
    name = (release if gitignore else release + "-no-gitignore") + os.environ.get("PYTEST_XDIST_WORKER", "")
    path = os.path.join(CACHE, "trees", hashlib.sha1(os.path.abspath(source).encode()).hexdigest()[:10], name)
    if not os.path.isdir(os.path.join(path, ".git")):
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        subprocess.run(["git", "clone", "-q", "--shared", "--no-checkout", source, path], check=True)
        subprocess.run(["git", "-C", path, "sparse-checkout", "set", "--cone", *SPARSE_DIRS], check=True)
    g = git.Git(path)
    # A missing big blob outside the sparse dirs makes git complain on stderr only.
    g.execute(["git", "checkout", "-q", "-f", "--detach", rev], with_extended_output=True)
    g.execute(["git", "clean", "-fdxq"])
    # a run an earlier test left open (it failed between make apply and make revert)
    shutil.rmtree(os.path.join(path, ".git", "ppocr-center-kit"), ignore_errors=True)
    if not gitignore:
        g.execute(["git", "rm", "-q", ".gitignore"])
        g.execute(["git", "-c", "user.name=ppocr-center-kit tests", "-c", "user.email=tests@invalid",
                   "commit", "-q", "--no-verify", "-m", "tests: a tree without upstream's .gitignore"])
    return path
