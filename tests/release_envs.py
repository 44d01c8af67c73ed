"""The Python environments that run each PaddleOCR release's own code in the clone tier.

One Paddle and one numpy cannot serve every release: v2.8 and v2.9 pin numpy<2, and
v2.6/v2.7 need Paddle 2.6 (their code calls APIs Paddle 3 removed). So the releases are
split into ranges, each with an environment holding a PyPI CPU Paddle and the
requirements.txt of one release of the range, read from the clone source (the releases
bundle or PADDLEOCR_REPO), never a copy of ours. The newest range shares the kit's own
.venv, which runs the tests.

`make test` runs `python tests/release_envs.py install` first; an environment is rebuilt
only when what it should hold changes (a stamp of its pins). The tests ask python_for().

usage: release_envs.py install    build what the clone source needs (nothing without one)
"""

import hashlib
import os
import re
import subprocess
import sys
from collections import namedtuple

HERE = os.path.dirname(os.path.abspath(__file__))
KIT = os.path.dirname(HERE)
sys.path.insert(0, HERE)  # centerkit comes on PYTHONPATH (the Makefile's KITPATH)

from centerkit.releases import parse_version  # noqa: E402

# first: the oldest release of the range; requirements_of: whose requirements.txt it installs;
# pins: what that file leaves open or cannot install here; drop: its lines (package names)
# that have no wheel for a current Python and are not imported by training or export.
Env = namedtuple("Env", "name first requirements_of pins drop")
ENVS = (
    Env("paddleocr3", (2, 10, 0), "v3.7.0", ("paddlepaddle==3.3.1",), ()),
    Env("paddleocr2", (2, 8, 0), "v2.9.0", ("paddlepaddle==3.3.1",), ()),
    # Paddle 2.6.2 is PyPI's newest wheel older than 3.0; it wants numpy<2 and an OpenCV
    # of its time, and its own zlib crashes (inflateReset2) the import of pyclipper, scipy
    # and scikit-image builds newer than these. PyMuPDF<1.21 (ppstructure's PDF reader) has
    # no wheel for Python 3.10+.
    Env("paddleocr2.7", (2, 6, 0), "v2.7.0",
        ("paddlepaddle==2.6.2", "numpy<2", "opencv-python<=4.6.0.66", "opencv-contrib-python<=4.6.0.66", "requests",
         "pyclipper<1.3.0.post6", "scipy<1.14", "scikit-image<0.23"),
        ("PyMuPDF", "opencv-contrib-python")),
)
KIT_VENV = os.path.join(KIT, ".venv")
ENVS_DIR = os.path.join(KIT, ".venv-releases")
_NAME = re.compile(r"^\s*([A-Za-z0-9_.\-]+)")


def env_for(release):
    """The Env of a release ('v2.9.1'), or None for one older than every range."""
    version = parse_version(release)
    return next((e for e in ENVS if version >= e.first), None)


def env_path(env):
    return KIT_VENV if env is ENVS[0] else os.path.join(ENVS_DIR, env.name)


def env_python(env):
    return os.path.join(env_path(env), "bin", "python")


def requirement_lines(source, env):
    """The release's requirements.txt lines to install, less the dropped packages."""
    import git

    text = git.Repo(source).git.show("refs/tags/%s:requirements.txt" % env.requirements_of)
    drop = {d.lower() for d in env.drop}
    keep = []
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        m = _NAME.match(line)
        if m and m.group(1).lower() not in drop:
            keep.append(line)
    return keep


def stamp(lines):
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def install(source, log=print):
    """Build every environment the clone source needs, side by side: each is a pip run that
    mostly waits on downloads and unpacking (one after the other they took ~2.5 min of a
    fresh CI run). The first failure is raised once all have ended."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(len(ENVS)) as pool:
        for future in [pool.submit(install_one, source, env, log) for env in ENVS]:
            future.result()


def install_one(source, env, log=print):
    try:
        lines = requirement_lines(source, env) + list(env.pins)
    except Exception as e:  # a clone without that tag: its range is skipped with a reason
        log("release env %s: not built (%s lacks %s: %s)" % (env.name, source, env.requirements_of, e))
        return
    path = env_path(env)
    done = os.path.join(path, ".installed-%s" % stamp(lines))
    if os.path.isfile(done):
        return
    log("release env %s: installing PaddleOCR %s's requirements + %s into %s"
        % (env.name, env.requirements_of, " ".join(env.pins), path))
    if not os.path.isfile(env_python(env)):
        subprocess.run([sys.executable, "-m", "venv", path], check=True)
    pip = [env_python(env), "-m", "pip", "install", "-qq", "--disable-pip-version-check"]
    # the kit's own requirements too: the export and the tests' helpers run in it
    subprocess.run(pip + ["-r", os.path.join(KIT, "requirements.txt")] + lines, check=True)
    for old in os.listdir(path):
        if old.startswith(".installed-"):
            os.unlink(os.path.join(path, old))
    open(done, "w").close()


def python_for(release):
    """(python, None) of the release's environment, or (None, why not)."""
    override = os.environ.get("PADDLEOCR_PYTHON_V%d" % parse_version(release)[0]) or os.environ.get("PADDLEOCR_PYTHON")
    if override:
        return override, None
    env = env_for(release)
    if env is None:
        return None, "no test environment covers %s" % release
    python = env_python(env)
    if not any(n.startswith(".installed-") for n in _listdir(env_path(env))):
        return None, "%s's environment %s is not built; `make test` builds it" % (release, env_path(env))
    return python, None


def _listdir(path):
    return os.listdir(path) if os.path.isdir(path) else []


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit(__doc__)
    import upstream

    source, why = upstream.clone_source()
    if source is None:
        print("release envs: none built (%s)" % why)
    else:
        install(source)
