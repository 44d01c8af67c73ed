"""Run in a PaddleOCR tree (cwd): the loss dict of one training forward of CONFIG on the
first Train batch, as tools/train.py builds model, loss and loader, with fixed seeds and
the given checkpoint; prints it as JSON. The test runs it in an unpatched and a patched
tree: the values must be identical.

usage: python train_step_losses.py CONFIG CKPT_PREFIX BATCH_NPZ [Key=value ...]
BATCH_NPZ: the batch, written by the first run and read by the others (the data pipeline
draws random augmentations; the patches do not touch it).
"""

import json
import os
import random
import sys

sys.path.insert(0, os.getcwd())  # the tree's ppocr; centerkit comes on PYTHONPATH (KITPATH)

import numpy as np  # noqa: E402
import paddle  # noqa: E402

from centerkit.dropins import kit_export


def main(config_path, ckpt, batch_file, opts):
    from ppocr.data import build_dataloader
    from ppocr.losses import build_loss
    from ppocr.modeling.architectures import build_model
    from ppocr.utils.logging import get_logger

    paddle.set_device("cpu")
    config = kit_export.config.load_config(config_path, kit_export.config.parse_opts(opts))
    config.pop("Export")
    kit_export.config.set_head_channels(config, kit_export.model.post_process_classes(config))
    for sub in (config["Architecture"].get("Models") or {}).values():
        sub.pop("pretrained", None)
    for seed_fn in (paddle.seed, np.random.seed, random.seed):
        seed_fn(3)
    model = build_model(config["Architecture"])
    model.set_state_dict(paddle.load(ckpt + ".pdparams"))
    loss_class = build_loss(config["Loss"])
    config["Global"]["distributed"] = False
    if not os.path.isfile(batch_file):
        loader = build_dataloader(config, "Train", paddle.CPUPlace(), get_logger())
        np.savez(batch_file, *[np.asarray(b) for b in next(iter(loader))])
    with np.load(batch_file) as saved:
        batch = [paddle.to_tensor(saved["arr_%d" % i]) for i in range(len(saved.files))]
    model.train()
    paddle.seed(5)
    preds = model(batch[0], data=batch[1:])
    losses = loss_class(preds, batch)
    return {k: float(v) for k, v in losses.items()}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])))
