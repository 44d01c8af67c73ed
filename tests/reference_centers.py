"""Independent reference for the end-to-end tests, run inside an UNPATCHED PaddleOCR tree
(cwd) with its own Python:

  init     build the config's model with fresh weights, save it as a checkpoint, and write a
           label file whose even lines are what the model reads (recognised) and odd lines
           something else (not recognised);
  centers  forward the same data, take the CTC features with a forward hook on the head's
           last FC layer (not the kit's patch), and average them with upstream's own
           tools/program.py update_center (not the kit's math); pickle the result.

usage: PYTHONPATH=<kit>/scripts reference_centers.py init|centers CONFIG CKPT LABELS OUT_PKL [Key=value ...]
"""

import os
import pickle
import sys

sys.path.insert(0, os.getcwd())  # the tree's ppocr and tools

import numpy as np  # noqa: E402
import paddle  # noqa: E402

from centerkit.export_script import export_script as ec  # noqa: E402
from ppocr.data import build_dataloader  # noqa: E402
from ppocr.modeling.architectures import build_model  # noqa: E402
from ppocr.utils.logging import get_logger  # noqa: E402


def setup(config_path, opts):
    config = ec.load_config(config_path, ec.parse_opts(opts))
    config["Global"]["checkpoints"] = None
    name = ec.derive_export_config(config, ec.post_process_classes(config))
    for m in config["Architecture"].get("Models", {}).values():
        m.pop("pretrained", None)
    ctc = ec.ctc_decoder(config["Global"])
    return config, name, ctc


def forward_all(config, name, model, ctc):
    """[(feats, probs, labels numpy)] per batch, features from a hook on the last FC."""
    net = model.model_list[0] if name else model
    net.eval()
    head = [l for l in net.sublayers() if type(l).__name__ == "CTCHead"][0]
    fc = head.fc2 if head.mid_channels is not None else head.fc
    seen = {}
    fc.register_forward_pre_hook(lambda layer, inputs: seen.__setitem__("feats", inputs[0]))
    head.register_forward_post_hook(lambda layer, inputs, out: seen.__setitem__("probs", out))
    loader = build_dataloader(config, "Eval", paddle.set_device("cpu"), get_logger())
    out = []
    with paddle.no_grad():
        for batch in loader:
            net(batch[0])
            out.append((seen["feats"], seen["probs"], batch[1].numpy()))
    return out


def main(mode, config_path, ckpt, labels, out_pkl, *opts):
    paddle.seed(1234)
    np.random.seed(1234)
    config, name, ctc = setup(config_path, opts)
    model = build_model(config["Architecture"])
    if mode == "init":
        paddle.save(model.state_dict(), ckpt + ".pdparams")
        texts = [ctc(p)[i][0] for _, p, _ in forward_all(config, name, model, ctc) for i in range(p.shape[0])]
        alphabet = ctc.character[1:]
        with open(labels) as f:
            images = [l.split("\t")[0] for l in f if l.strip()]
        with open(labels, "w") as f:
            for i, (image, text) in enumerate(zip(images, texts)):
                if i % 2 or not text:  # odd lines (and empty reads): a label it does not read
                    c = alphabet[i % len(alphabet)]
                    if text and c == text[-1]:
                        c = alphabet[(i + 1) % len(alphabet)]
                    text = text[:-1] + c
                f.write("%s\t%s\n" % (image, text))
        return
    model.set_state_dict(paddle.load(ckpt + ".pdparams"))
    import tools.program as program

    centers = {}
    for feats, probs, labels_np in forward_all(config, name, model, ctc):
        centers = program.update_center(centers, ctc(probs, labels_np), (feats, probs))
    with open(out_pkl, "wb") as f:
        pickle.dump({int(k): v[0] for k, v in centers.items()}, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
