"""The demo's before/after figures, run in the PaddleOCR tree (cwd) with its Python:

    python center_figures.py CONFIG CKPT CENTERS_PKL [Key=value ...]

Forwards the Student in eval mode over the Train images (the export's Eval pipeline over
the Train data) and, for every time step of the images it recognises exactly, measures its
CTC feature (the input of the head's last FC, read with a forward pre-hook: no patch
needed) against the given centers. Prints JSON:
- center_loss: upstream CenterLoss's value on those steps (mean squared distance to the
  center of the step's class);
- separation: mean distance to the step's own class center / mean distance to the nearest
  other center (lower = tighter, better separated classes);
- images_used / images_seen.
"""

import json
import os
import pickle
import sys

sys.path.insert(0, os.getcwd())  # the tree's ppocr; centerkit comes on PYTHONPATH (KITPATH)

import numpy as np  # noqa: E402

from centerkit.export_script import export_script as ec  # noqa: E402


def figures(config_path, ckpt, centers_path, opts):
    import paddle
    from ppocr.data import build_dataloader
    from ppocr.modeling.architectures import build_model
    from ppocr.utils.logging import get_logger

    paddle.set_device("cpu")
    config = ec.load_config(config_path, ec.parse_opts(list(opts) + ["Global.checkpoints=%s" % ckpt]))
    name = ec.derive_export_config(config, ec.post_process_classes(config))
    model = build_model(config["Architecture"])
    ec.load_checkpoint(model, ckpt)
    net = model.model_list[0] if name is not None else model
    seen = {}
    ec.ctc_last_fc(ec.ctc_heads(net)[0]).register_forward_pre_hook(lambda layer, inputs: seen.__setitem__("x", inputs[0]))
    net.eval()
    with open(centers_path, "rb") as f:
        table = pickle.load(f)
    classes = np.array(sorted(table))
    centers = np.stack([table[c] for c in classes]).astype(np.float64)
    row = {c: i for i, c in enumerate(classes)}
    decode = ec.ctc_decoder(config["Global"])
    loader = build_dataloader(config, "Eval", paddle.CPUPlace(), get_logger())
    own, other, sq, seen_images, used = [], [], [], 0, 0
    with paddle.no_grad():
        for batch in loader:
            out = net(batch[0])
            probs = out["head_out"] if isinstance(out, dict) else out  # softmax: upstream's eval output
            idx = probs.numpy().argmax(-1)
            keep = ec.recognised(decode, idx, batch[1].numpy())
            seen_images += len(keep)
            used += int(np.sum(keep))
            feats = seen["x"].numpy().astype(np.float64)
            for b in np.flatnonzero(keep):
                for t in range(idx.shape[1]):
                    c = int(idx[b, t])
                    if c not in row:
                        continue
                    d = np.sqrt(((centers - feats[b, t]) ** 2).sum(1))
                    mine = d[row[c]]
                    own.append(mine)
                    sq.append(mine ** 2)
                    rest = np.delete(d, row[c])
                    if rest.size:
                        other.append(rest.min())
    return {"center_loss": float(np.mean(sq)) if sq else None,
            "separation": float(np.mean(own) / np.mean(other)) if other else None,
            "images_used": used, "images_seen": seen_images, "steps": len(own)}


if __name__ == "__main__":
    print(json.dumps(figures(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])))
