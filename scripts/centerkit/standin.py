"""Stand-in checkpoints and noise images for smoke runs, the benchmark and the tests, where
no trained checkpoint of a large upstream model can be downloaded. The checkpoint is the
config's full model (every sub-model) with fresh weights, except that each CTC head's last
FC layer reads one character at every time step. Images labelled with that character are
then recognised exactly and the others are not, so an export runs its whole path on the
real architecture.

usage, in a PaddleOCR tree with its Python (PYTHONPATH=<kit>/scripts):
  python -m centerkit.standin CONFIG CKPT_PREFIX CHAR [Key=value ...]
prints JSON: {"widths": {sub-model name, "" for a single model: width of the features the
CTC head's last FC layer sees}, "class_index": CHAR's class index}
"""

import json
import os
import sys

import numpy as np

from .dropins import kit_export


def make_standin(config_path, ckpt, char, opts):
    sys.path.insert(0, os.getcwd())
    import paddle
    from ppocr.modeling.architectures import build_model

    paddle.seed(0)
    config = kit_export.config.load_config(config_path, kit_export.config.parse_opts(opts))
    kit_export.config.check_rec_ctc_config(config)
    kit_export.config.set_head_channels(config, kit_export.model.post_process_classes(config))
    for sub in (config["Architecture"].get("Models") or {}).values():
        sub.pop("pretrained", None)  # fresh weights, nothing to download
    index = kit_export.model.ctc_decoder(config["Global"]).dict[char]
    model = build_model(config["Architecture"])
    nets = zip(model.model_name_list, model.model_list) if kit_export.config.sub_model_names(config) else [("", model)]
    widths = {}
    for name, net in nets:
        fc = kit_export.model.ctc_last_fc(kit_export.model.ctc_heads(net)[0])
        bias = np.zeros(fc.bias.shape, np.float32)
        bias[index] = 10.0
        fc.weight.set_value(np.zeros(fc.weight.shape, np.float32))
        fc.bias.set_value(bias)
        widths[name] = int(fc.weight.shape[0])  # paddle Linear weight is [in, out]
    paddle.save(model.state_dict(), ckpt + ".pdparams")
    return {"widths": widths, "class_index": int(index)}


def noise_images(folder, labels, shape, seed=0):
    """folder/img/<i>.png (seeded noise, written with OpenCV, which PaddleOCR reads images
    with) and folder/train.txt with labels[i]; returns the -o overrides that make a config's
    Train set read them."""
    import cv2

    os.makedirs(os.path.join(folder, "img"), exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = []
    for i, label in enumerate(labels):
        if not cv2.imwrite(os.path.join(folder, "img", "%d.png" % i), rng.integers(0, 255, shape, dtype=np.uint8)):
            raise OSError("cannot write %s" % os.path.join(folder, "img", "%d.png" % i))
        lines.append("img/%d.png\t%s\n" % (i, label))
    with open(os.path.join(folder, "train.txt"), "w", encoding="utf-8") as f:
        f.writelines(lines)
    return ["Train.dataset.data_dir=%s" % folder, "Train.dataset.label_file_list=[%s]" % os.path.join(folder, "train.txt")]


if __name__ == "__main__":
    print(json.dumps(make_standin(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])))
