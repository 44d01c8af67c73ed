"""Clone tier: the kit with MODE=train gives the stock script's centers.

The UNPATCHED clone's own tools/export_center.py runs on the config it supports, PP-OCRv2's
enhanced-CTC config (unmodified but for -o: the tiny data set, `Global.use_gpu=false`,
which v3.x's stock script needs on a CPU-only paddle, and `Eval.loader.num_workers=0`),
with a fresh-weights checkpoint; the kit runs `make export MODE=train` on the same config,
checkpoint and data. The two pkls must hold the same classes, each center within 1e-5.

Why the comparison is meaningful with train-mode semantics: the stock script never calls
model.eval(), so BatchNorm normalises with the statistics of each batch and dropout would
be live. This config has no dropout (MobileNetV1Enhance, a 2-layer LSTM with dropout 0 and
CTCHead with mid_channels), so the stock run is deterministic; BatchNorm's batch statistics
are equal because both read the same images in the same batches (the config's Eval
batch_size_per_card, in order, no shuffle: the 11 images are one batch). The checkpoint is
made by reference_centers.py (fresh seeded weights; the CTC head's blank score raised until
the reads are shorter than max_text_length), and half of the labels are what the model
reads in train mode, so the stock script and the kit both average real features of several
classes, blank included.
"""

import os
import pickle
import subprocess

import numpy as np
import pytest

import tiny_data
from centerkit import pkl_format as pkl
from conftest import NEWEST, NEWEST_NUMPY1
from kit_run import git_status, helper_env, make
from centerkit.make_commands import opts_text

CONFIG = "configs/rec/ch_PP-OCRv2/ch_PP-OCRv2_rec_enhanced_ctc_loss.yml"
RELEASES = [NEWEST_NUMPY1, NEWEST]  # the newest release on each Paddle 3 environment (release_envs.py)


@pytest.mark.parametrize("release", RELEASES)
def test_stock_export_equals_kit_mode_train(tree_of, release, tmp_path):
    tree = tree_of(release)
    if not os.path.isfile(os.path.join(tree, CONFIG)):
        pytest.skip("%s has no %s" % (release, CONFIG))
    python = tiny_data.release_python(tree, release)
    data = tmp_path / "data"
    opts = tiny_data.dataset(data, images=11, shape=(32, 320))[1:]  # the config's own dictionary
    opts += ["Global.use_gpu=false", "Eval.loader.num_workers=0"]
    ckpt, labels = str(tmp_path / "ckpt"), str(data / "train.txt")
    tiny_data.reference(python, tree, "init", CONFIG, ckpt, labels, "-", ["--mode", "train", "--blank"] + opts)
    before = git_status(tree)

    stock_dir = tmp_path / "stock"  # the stock script writes ./train_center.pkl and ./output/
    stock_dir.mkdir()
    stock_opts = opts + ["Global.checkpoints=%s" % ckpt, "Global.save_model_dir=%s" % (stock_dir / "output"),
                         "Global.character_dict_path=%s" % os.path.join(tree, "ppocr/utils/ppocr_keys_v1.txt")]
    r = subprocess.run([python, os.path.join(tree, "tools", "export_center.py"), "-c", os.path.join(tree, CONFIG),
                        "-o", *stock_opts], cwd=str(stock_dir), env=helper_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    stock_pkl = str(stock_dir / "train_center.pkl")

    out = str(tmp_path / "kit.pkl")
    r = make("export", cwd=tree, env={"PADDLEOCR_VERSION": release}, PYTHON=python, CONFIG=CONFIG, CHECKPOINT=ckpt,
             OUTPUT=out, MODE="train", OPTS=opts_text(opts))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert git_status(tree) == before

    stock, width, fmt = pkl.load(stock_pkl)  # numpy integer keys: read as the stock format
    assert fmt == pkl.STOCK_FORMAT and width == 96
    with open(out, "rb") as f:
        ours = pickle.load(f)
    assert len(stock) > 1 and sorted(ours) == sorted(stock)
    diff = max(float(np.abs(ours[k] - stock[k]).max()) for k in stock)
    print("stock vs kit MODE=train, %s: %d classes, width %d, max abs difference %.3g" % (release, len(stock), width, diff))
    for k in stock:
        np.testing.assert_allclose(ours[k], stock[k], rtol=1e-5, atol=1e-5)
