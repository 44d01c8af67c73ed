"""Independent reference for the end-to-end tests, run inside an UNPATCHED PaddleOCR tree
(cwd) with its own Python. It uses nothing of the kit: the config is edited by hand as the
manual recipe (the blog post's) does, here in memory:

  - every CTC head sized by hand: dictionary lines + blank (+ space with use_space_char);
    a MultiHead's NRTR head + 3 more, its SAR head + 2 (the tokens their decoders add);
  - the Train label files and data_dir on the Eval loader (SimpleDataSet, in order, no
    drop_last), no checkpoint or `pretrained` loading by upstream;
  - the whole model built (a Distillation config: Teacher and Student), and the outputs of
    the Student's CTC head picked with forward hooks on that head and on its last FC layer
    (whose input is what the centers average), instead of the kit's patched head;

and the features are averaged with upstream's own tools/program.py update_center.

  init     fresh weights (seeded), saved as a checkpoint; the label file is rewritten so
           that its even lines are what the model reads in MODE (recognised) and its odd
           lines something else. With --blank, the CTC head's last FC bias for the blank
           is raised (raise_blank) so that reads are a few characters (fresh weights on a
           6625-class dictionary read ~40, which the label encoder refuses).
  centers  forward the same data in MODE and pickle the reference centers.
  init+centers  both, one after the other, in one process (each as if alone: seeded, the
           model built anew and the checkpoint loaded): one Paddle start-up less.

  jobs     a JSON file's list of such argument lists, run one after the other in this one
           process (each as if alone, as above): one Paddle start-up for a release's configs.

usage: reference_centers.py init|centers|init+centers CONFIG CKPT LABELS OUT_PKL [--mode eval|train]
       [--blank] [Key=value ...]
       reference_centers.py jobs JOBS_JSON
"""

import os
import pickle
import sys

sys.path.insert(0, os.getcwd())  # the tree's ppocr and tools

import numpy as np  # noqa: E402
import paddle  # noqa: E402
import yaml  # noqa: E402

from ppocr.data import build_dataloader  # noqa: E402
from ppocr.modeling.architectures import build_model  # noqa: E402
from ppocr.postprocess import build_post_process  # noqa: E402
from ppocr.utils.logging import get_logger  # noqa: E402

EXPORTED = "Student"  # the sub-model a Distillation config's centers come from
EXTRA_TOKENS = {"NRTRHead": ("NRTRLabelDecode", 3), "SARHead": ("SARLabelDecode", 2)}


def hand_config(config_path, opts):
    with open(config_path) as f:
        config = yaml.load(f, Loader=yaml.Loader)
    for opt in opts:  # -o Key.sub=value, as PaddleOCR reads it
        key, value = opt.split("=", 1)
        node = config
        for part in key.split(".")[:-1]:
            node = node.setdefault(part, {})
        node[key.split(".")[-1]] = yaml.safe_load(value)
    g = config["Global"]
    with open(g["character_dict_path"], "rb") as f:
        chars = len(f.readlines()) + 1 + bool(g.get("use_space_char"))
    arch = config["Architecture"]
    for model in (arch["Models"].values() if arch.get("algorithm") == "Distillation" else [arch]):
        model.pop("pretrained", None)
        head = model["Head"]
        if head["name"] == "MultiHead":
            head["out_channels_list"] = {"CTCLabelDecode": chars}
            for entry in head["head_list"]:
                name = next(iter(entry))
                if name in EXTRA_TOKENS:
                    decode, extra = EXTRA_TOKENS[name]
                    head["out_channels_list"][decode] = chars + extra
        else:
            head["out_channels"] = chars
    g["checkpoints"] = g["pretrained_model"] = None
    train, ev = config["Train"]["dataset"], config["Eval"]["dataset"]
    ev.update(name="SimpleDataSet", data_dir=train["data_dir"], label_file_list=train["label_file_list"])
    ev.pop("ratio_list", None)
    config["Eval"]["loader"].update(shuffle=False, drop_last=False, num_workers=0)
    return config


def exported_net(config, model):
    if config["Architecture"].get("algorithm") == "Distillation":
        return model.model_list[model.model_name_list.index(EXPORTED)]
    return model


def forward_all(config, model, mode):
    """[(feats, scores, labels numpy)] per batch, from hooks on the exported CTC head."""
    net = exported_net(config, model)
    model.train() if mode == "train" else model.eval()
    head = [l for l in net.sublayers() if type(l).__name__ == "CTCHead"][0]
    fc = head.fc2 if head.mid_channels is not None else head.fc
    seen = {}
    fc.register_forward_pre_hook(lambda layer, inputs: seen.__setitem__("feats", inputs[0]))
    fc.register_forward_post_hook(lambda layer, inputs, out: seen.__setitem__("scores", out))
    for layer in model.sublayers():
        if type(layer).__name__ == "MultiHead":  # train mode: its CTC branch alone (no NRTR/SAR targets)
            layer.training = False
    loader = build_dataloader(config, "Eval", paddle.set_device("cpu"), get_logger())
    out = []
    with paddle.no_grad():
        for batch in loader:
            model(batch[0])
            out.append((seen["feats"], seen["scores"], batch[1].numpy()))
    return out


def raise_blank(config, model, mode):
    """Raise the blank's bias in the CTC head's last FC so that the blank wins ~85% of the
    time steps: reads of a few characters. The bias is set midway in the widest gap between
    the steps' margins (best other class minus blank) near that fraction, so that no step is
    a near-tie another forward pass could break the other way. The bias does not change the
    features (they are that layer's input), so one forward pass gives every margin."""
    head = [l for l in exported_net(config, model).sublayers() if type(l).__name__ == "CTCHead"][0]
    fc = head.fc2 if head.mid_channels is not None else head.fc
    scores = np.concatenate([s.numpy().reshape(-1, s.shape[-1]) for _, s, _ in forward_all(config, model, mode)])
    margins = np.sort(scores[:, 1:].max(axis=1) - scores[:, 0])
    lo, hi = int(0.8 * len(margins)), int(0.9 * len(margins))
    k = lo + int(np.argmax(margins[lo + 1:hi + 1] - margins[lo:hi]))
    bias = fc.bias.numpy()
    bias[0] += (margins[k] + margins[k + 1]) / 2
    fc.bias.set_value(bias)


def reads(config, model, mode, ctc):
    """What the exported model reads on every image, in order."""
    return [ctc(s.numpy())[i][0] for _, s, _ in forward_all(config, model, mode) for i in range(s.shape[0])]


def main(action, config_path, ckpt, labels, out_pkl, *args):
    args = list(args)
    mode = args.pop(args.index("--mode") + 1) if "--mode" in args else "eval"
    blank = "--blank" in args
    opts = [a for a in args if a not in ("--mode", "--blank")]
    paddle.seed(1234)
    np.random.seed(1234)
    config = hand_config(config_path, opts)
    ctc = build_post_process({"name": "CTCLabelDecode"}, dict(config["Global"]))
    model = build_model(config["Architecture"])
    if action == "init":
        if blank:
            raise_blank(config, model, mode)
        texts = reads(config, model, mode, ctc)
        paddle.save(model.state_dict(), ckpt + ".pdparams")
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
    for feats, scores, labels_np in forward_all(config, model, mode):
        centers = program.update_center(centers, ctc(scores.numpy(), labels_np), (feats, scores))
    with open(out_pkl, "wb") as f:
        pickle.dump({int(k): v[0] for k, v in centers.items()}, f)


def run(argv):
    for step in argv[0].split("+"):
        main(step, *argv[1:])


if __name__ == "__main__":
    if sys.argv[1] == "jobs":
        import json

        with open(sys.argv[2]) as f:
            for job in json.load(f):
                run(job)
    else:
        run(sys.argv[1:])
