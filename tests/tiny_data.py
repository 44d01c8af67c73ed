"""A tiny generated training set and a random-init checkpoint for real `make export` runs
(clone tier): a handful of noise images, so a run takes seconds on a CPU."""

import functools
import os
import pathlib
import shutil
import subprocess
import tempfile

import release_envs
from conftest import NEWEST
from centerkit.standin import noise_images
from kit_run import helper_env

HERE = os.path.dirname(os.path.abspath(__file__))
KIT = os.path.dirname(HERE)
ALPHABET = "abcdefghij"


def config_path(name):
    return os.path.join(KIT, "configs", name)


def dataset(data, images=11, seed=7, labels=None, shape=(32, 64)):
    """data/img/<i>.png (noise), data/train.txt (labels[i], default every label 'a' until
    `init` relabels it) and data/dict.txt; returns the -o overrides that point a config at
    them (drop the first, the dictionary, to keep a config's own)."""
    noise_images(str(data), list(labels or "a" * images)[:images], shape, seed)
    (data / "dict.txt").write_text("".join(c + "\n" for c in ALPHABET))
    return dataset_opts(data)


def dataset_opts(data):
    """The -o overrides that point a config at the data set under data."""
    return ["Global.character_dict_path=%s" % (data / "dict.txt"), "Train.dataset.data_dir=%s" % data,
            "Train.dataset.label_file_list=[%s]" % (data / "train.txt")]


def reference(python, tree, mode, cfg, ckpt, labels, ref, opts):
    """Run reference_centers.py (`init`: random-init checkpoint + labels half of which the
    model reads; `centers`: the reference pkl; `init+centers`: both in one process) in the
    unpatched tree."""
    _run_reference(python, tree, [mode, cfg, ckpt, labels, ref, *opts])


def references(python, tree, jobs, folder):
    """Several reference runs (each [mode, cfg, ckpt, labels, ref, *opts]) in one process."""
    import json

    path = os.path.join(str(folder), "reference-jobs.json")
    with open(path, "w") as f:
        json.dump(jobs, f)
    _run_reference(python, tree, ["jobs", path])


def _run_reference(python, tree, args):
    cmd = [python, os.path.join(HERE, "reference_centers.py"), *args]
    subprocess.run(cmd, cwd=tree, check=True, capture_output=True, env=helper_env())


SHARED = None  # the worker's folder for inputs several tests read (conftest's shared_inputs sets it)
_MADE_ONCE = {}


def made_once(key, build):
    """(folder, what build(folder) returned), build run once per worker and key in a new
    folder under SHARED; a build that fails is retried by the next test that asks."""
    if key not in _MADE_ONCE:
        assert SHARED is not None, "conftest's shared_inputs fixture sets tiny_data.SHARED"
        folder = pathlib.Path(tempfile.mkdtemp(prefix="shared-", dir=SHARED))
        _MADE_ONCE[key] = (folder, build(folder))
    return _MADE_ONCE[key]


def initialised(tree, release, config, folder, images=11):
    """(python, data folder, opts, checkpoint): `images` images under folder/data and a
    fresh-weights checkpoint of config (a name in configs/) that reads half of them. The
    init (seeded: the same files every time) runs once per worker, tree, config and size;
    each test gets its own copy, which it may change."""
    python = release_python(tree, release)

    def build(made):
        opts = dataset(made / "data", images=images)
        reference(python, tree, "init", config_path(config), str(made / "ckpt"), str(made / "data" / "train.txt"), "-", opts)

    made, _ = made_once(("init", tree, config, images), build)
    data = folder / "data"
    shutil.copytree(made / "data", data)
    shutil.copy2(made / "ckpt.pdparams", folder / "ckpt.pdparams")
    return python, data, dataset_opts(data), str(folder / "ckpt")


def release_python(tree, release):
    """paddle_python for this release, or a pytest skip naming why not."""
    import pytest

    python, why = paddle_python(tree, release)
    if python is None:
        pytest.skip(why)
    return python


@functools.lru_cache(maxsize=None)
def paddle_python(tree, release=NEWEST):
    """(the Python that can run this tree's ppocr with Paddle, None) or (None, why not):
    the release's test environment (release_envs.py), PADDLEOCR_PYTHON[_V2|_V3] if set.
    Asked once per tree and worker: the probe imports Paddle and ppocr (~5 s), and a
    test's tree is reset to the same commit, never to another release."""
    python, why = release_envs.python_for(release)
    if python is None:
        return None, why
    probe = subprocess.run(
        [python, "-c", "import paddle, ppocr.data, ppocr.modeling.architectures, ppocr.postprocess, tools.program"],
        cwd=tree, capture_output=True, text=True, env=helper_env(),
    )
    if probe.returncode:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return None, "%s cannot import %s's ppocr (%s); `make test` builds its environment" % (python, release, last)
    return python, None
