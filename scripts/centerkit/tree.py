"""Which PaddleOCR tree a command works on (PADDLEOCR=, else the clone around the folder
make ran in), its git dir, and the lock that lets one kit run work on it at a time."""

import argparse
import errno
import fcntl
import os

from . import KitError


def is_tree(path):
    return os.path.isfile(os.path.join(path, "tools", "export_center.py")) and os.path.isdir(os.path.join(path, "ppocr"))


def find_tree(given, invoked_from):
    """PADDLEOCR if given, else the PaddleOCR tree enclosing the folder make ran in."""
    if given:
        path = os.path.abspath(os.path.join(invoked_from, given))
        if not is_tree(path):
            raise KitError("%s is not a PaddleOCR tree (no tools/export_center.py and ppocr/); set PADDLEOCR=<your clone>" % path)
        return path
    path = os.path.abspath(invoked_from)
    while True:
        if is_tree(path):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            raise KitError("%s is not inside a PaddleOCR clone; run make there or set PADDLEOCR=<clone>" % invoked_from)
        path = parent


def tool_arguments(doc):
    """The arguments every kit tool that works on a tree takes: --tree (PADDLEOCR=) and
    --invoked-from (the folder make ran in); add the tool's own to the parser returned."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    p.add_argument("--tree", default="", help="PaddleOCR tree (default: the clone around --invoked-from)")
    p.add_argument("--invoked-from", default=os.getcwd())
    return p


def git_dir(tree):
    """The tree's own git dir (a worktree's private one), or None outside git."""
    try:
        import git

        repo = git.Repo(tree)
    except Exception:
        return None
    if os.path.realpath(repo.working_tree_dir) != os.path.realpath(tree):
        return None
    return repo.git_dir


class TreeLock:
    """One kit run per tree: an flock on the tree's own git dir (a worktree's private one),
    else on the tree folder. Nothing is created, and every run on the tree sees the same
    lock, whatever its TMPDIR or user; the kernel drops it when the holder dies."""

    def __init__(self, tree):
        self.path = git_dir(tree) or tree
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
