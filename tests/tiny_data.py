"""A tiny generated training set and a random-init checkpoint for real `make export` runs
(clone tier): a handful of noise images, so a run takes seconds on a CPU."""

import os
import subprocess
import sys

from centerkit.standin import noise_images

HERE = os.path.dirname(os.path.abspath(__file__))
KIT = os.path.dirname(HERE)
ALPHABET = "abcdefghij"
# What a Python started by a test needs to import centerkit (the Makefile's KITPATH).
KIT_ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.path.join(KIT, "scripts"), os.environ.get("PYTHONPATH")])))


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
    model reads; `centers`: the reference pkl) in the unpatched tree."""
    cmd = [python, os.path.join(HERE, "reference_centers.py"), mode, cfg, ckpt, labels, ref, *opts]
    subprocess.run(cmd, cwd=tree, env=KIT_ENV, check=True, capture_output=True)


def release_python(tree, release):
    """paddle_python for this release's major version, or a pytest skip naming why not."""
    import pytest

    from centerkit.releases import parse_version

    python, why = paddle_python(tree, parse_version(release)[0])
    if python is None:
        pytest.skip(why)
    return python


def paddle_python(tree, major=3):
    """(the Python that can run this tree's ppocr with Paddle, None) or (None, why not):
    PADDLEOCR_PYTHON_V<major>, else PADDLEOCR_PYTHON, else the one running the tests."""
    python = os.environ.get("PADDLEOCR_PYTHON_V%d" % major) or os.environ.get("PADDLEOCR_PYTHON") or sys.executable
    probe = subprocess.run(
        [python, "-c", "import paddle, ppocr.data, ppocr.modeling.architectures, ppocr.postprocess, tools.program"],
        cwd=tree, capture_output=True, text=True,
    )
    if probe.returncode:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return None, "%s cannot import this release's ppocr (%s); set PADDLEOCR_PYTHON[_V2]" % (python, last)
    return python, None
