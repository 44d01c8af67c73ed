"""`make bench`: the kit's speed and memory, measured in one run on one machine.

Run with the Python of a PaddleOCR tree (paddle + the tree's requirements):

1. accumulation: upstream's own update_center (read from the tree's tools/program.py, fed
   as tools/program.py get_center feeds it) vs the kit's CenterAccumulator, on one batch of
   B=128, T=40, 6625 classes, width 256;
2. end to end on the SVTRv2 distillation config, same data and (stand-in) checkpoint, time
   of the loop over the data only (model building excluded for all three):
   - ours: `make export ENGINE=dygraph`, the loop time its report records, and
     `make export ENGINE=inference`, its loop time without the conversion (printed apart);
     both with the report's breakdown (load / forward / accumulate / convert);
   - the manual recipe: the whole Teacher+Student model forwarded in eval mode, Student's
     outputs taken from the dict, upstream's update_center;
   - the floor: a bare loop that forwards the Student only and does nothing else;
   - `make confusions ENGINE=inference DATA=train` on the same images: its recognition
     loop against the export's (confusions_vs_export, both without the conversion);
3. peak memory (max RSS of `make export`) at 1k and 10k images with the tiny plain config;
4. `make export NPROC=2` vs one process on the 10k images (CPU, gloo);
6. released: the kit's recognition on PaddleOCR's released PP-OCRv4 inference model against
   upstream's tools/infer/predict_rec.py on the same lines (tools/bench_released.py);
5. the training loss: upstream CenterLoss (the tree's ppocr/losses/center_loss.py) against
   the kit's (dropin/ppocr/losses/kit_center_loss.py), forward + backward at B=128, T=40, D=256 for
   C=6625 and C=18383, same features, logits and centers: the extra peak RSS of the first
   step (each in a fresh process, RSS high-water mark reset after the inputs are made) and
   the best of 3 steps' time. loss_mem_ratio / loss_speedup are the smaller of the two C.

The last line is machine-readable:
bench: accumulate_speedup=.. e2e_vs_recipe=.. e2e_vs_floor=.. e2e_inference_vs_floor=.. inference_convert_s=..
       confusions_vs_export=.. mem_10k_over_1k=.. nproc2_speedup=.. loss_mem_ratio=.. loss_speedup=..
       released_vs_predict_rec=..

Run by the Makefile, which puts the kit's scripts/ on PYTHONPATH.
"""

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from centerkit import KIT_ROOT, LOSS_SOURCE, KitError, files, run_tool, stock
from centerkit.make_commands import kit_line, make_command, make_export_command, opts_text
from centerkit.dropins import kit_export
from centerkit.patch_queue import PatchQueue
from centerkit.standin import make_standin, noise_images
from centerkit.supervise import interrupt_on_term
from centerkit.tree import TreeLock, find_tree, tool_arguments

SVTRV2_DISTILL = ["configs/rec/SVTRv2/ch_SVTRv2_rec_distillation.yml", "configs/rec/SVTRv2/rec_svtrv2_ch_distillation.yml"]
TINY_PLAIN = os.path.join(KIT_ROOT, "configs", "tiny_plain_ctc.yml")
PARTS = ("accumulate", "e2e", "memory", "loss", "released")


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_accumulate(tree):
    import paddle

    update_center = stock.stock_update_center(os.path.join(tree, "tools", "program.py"))
    B, T, C, D = 128, 40, 6625, 256
    rng = np.random.default_rng(0)
    feats = paddle.to_tensor(rng.normal(size=(B, T, D)).astype(np.float32))
    probs = paddle.to_tensor(rng.random((B, T, C)).astype(np.float32))
    labels = [("x", 1.0)] * B  # every sample recognised: the most work for both
    stock_s = best_of(lambda: update_center({}, (labels, labels), (feats, probs)), 3)
    # Both pipelines decode from an argmax first (CTCLabelDecode); the export reuses it for the
    # accumulation, update_center computes its own again: that second argmax is its cost.
    class_idx = probs.numpy().argmax(axis=-1)

    def ours(batches=16):  # per batch, with the final fold of the float32 partials amortised
        acc = kit_export.center_math.CenterAccumulator(C, D)
        for _ in range(batches):
            acc.update(feats, class_idx, np.ones(B, bool))
        acc.totals()

    ours_s = best_of(ours, 5) / 16
    print("accumulate  stock update_center %.1f ms, ours %.2f ms per batch (B=%d T=%d C=%d D=%d)"
          % (stock_s * 1e3, ours_s * 1e3, B, T, C, D))
    return stock_s / ours_s


LOSS_SHAPE = (128, 40, 256)
LOSS_CLASSES = (6625, 18383)


def _rss_kib(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":"))


def loss_step(kind, classes, tree):
    """(extra peak MiB of the first forward+backward, best seconds of 3) in this process."""
    import importlib.util

    import paddle

    paddle.set_device("cpu")
    B, T, D = LOSS_SHAPE
    rng = np.random.default_rng(0)
    feats = paddle.to_tensor(rng.standard_normal((B, T, D)).astype(np.float32), stop_gradient=False)
    logits = paddle.to_tensor(rng.standard_normal((B, T, classes)).astype(np.float32))
    centers = rng.standard_normal((classes, D))
    path = os.path.join(tree, "ppocr", "losses", "center_loss.py") if kind == "upstream" else \
        LOSS_SOURCE
    spec = importlib.util.spec_from_file_location("bench_" + kind, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if kind == "upstream":
        loss = module.CenterLoss(num_classes=classes, feat_dim=D)
        loss.centers = paddle.to_tensor(centers)

        def step():
            loss((feats, logits), None)["loss_center"].backward()
    else:
        rows, table = paddle.to_tensor(np.arange(classes)), paddle.to_tensor(centers)

        def step():
            module.center_loss_value(feats, logits, rows, table, classes).backward()

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the RSS high-water mark: only what the step adds counts
    base = _rss_kib("VmRSS")
    step()
    extra = (_rss_kib("VmHWM") - base) / 1024.0
    return extra, best_of(step, 3)


def bench_loss(tree, loss_classes=LOSS_CLASSES):
    results = {}
    for classes in loss_classes:
        for kind in ("upstream", "kit"):
            cmd = [sys.executable, os.path.abspath(__file__), "--loss-step", kind, "--classes", str(classes), "--tree", tree]
            r = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
            if r.returncode:
                raise KitError("bench: the %s loss step failed: %s" % (kind, r.stderr.strip()[-2000:]))
            results[kind, classes] = [float(x) for x in r.stdout.split()[-2:]]
        (um, ut), (km, kt) = results["upstream", classes], results["kit", classes]
        print("loss        C=%d B=%d T=%d D=%d: upstream CenterLoss %.0f MiB %.0f ms, ours %.1f MiB %.1f ms "
              "(forward+backward, extra peak RSS)" % (classes, *LOSS_SHAPE, um, ut * 1e3, km, kt * 1e3))
    mem = min(results["upstream", c][0] / max(results["kit", c][0], 0.1) for c in loss_classes)
    speed = min(results["upstream", c][1] / results["kit", c][1] for c in loss_classes)
    return mem, speed


def write_images(data, count, label, shape):
    return noise_images(data, [label] * count, shape) + ["Eval.loader.num_workers=0"]


def make_export(tree, config, ckpt, out, opts, **extra):
    """(wall seconds, report, max RSS MiB) of a real `make export`, in a fresh child whose
    RUSAGE_CHILDREN covers only this export."""
    cmd = make_export_command(tree, sys.executable, config, ckpt, out, opts, FORCE=1, **extra)
    # the export's stderr passes through the probe: a failure's kit line is in r.stderr
    probe = ("import resource, subprocess, sys, time; t = time.time(); "
             "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
             "print(time.time() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)")
    r = subprocess.run([sys.executable, "-c", probe] + cmd, cwd=tree, capture_output=True, text=True)
    wall, rss_kib, rc = r.stdout.split()
    if int(rc):
        raise KitError("bench: make export failed: %s" % kit_line(r.stderr))
    with open(files.report_path(out)) as f:
        report = json.load(f)
    return float(wall), report, int(rss_kib) / 1024.0


def derived(config_path, opts, ckpt, model="Student", keep_all=False):
    """The export's config (ours), or with keep_all the recipe's: every sub-model kept."""
    config = kit_export.config.load_config(config_path, kit_export.config.parse_opts(opts + ["Global.checkpoints=%s" % ckpt, "Export.model=%s" % model]))
    char_num = kit_export.model.post_process_classes(config)
    full = copy.deepcopy(config)
    kit_export.config.derive_export_config(config, char_num)
    if keep_all:  # the recipe: the whole model (loop_seconds switches every CTC head's features on)
        kit_export.config.set_head_channels(full, char_num)
        for sub in full["Architecture"]["Models"].values():
            sub.pop("pretrained", None)
        full["Eval"] = config["Eval"]
        return full
    return config


def loop_seconds(config, body):
    import paddle
    from ppocr.data import build_dataloader
    from ppocr.modeling.architectures import build_model
    from ppocr.utils.logging import get_logger
    from ppocr.utils.save_load import load_model

    model = build_model(config["Architecture"])
    load_model(config, model)
    kit_export.model.set_mode(model, kit_export.model.ctc_heads(model), "eval")  # the recipe's hand edit of rec_ctc_head.py
    loader = build_dataloader(config, "Eval", paddle.set_device("cpu"), get_logger())
    start = time.perf_counter()
    for batch in loader:
        body(model, batch)
    return time.perf_counter() - start


def loop_in_patched_tree(kind, config, ckpt, opts):
    """Seconds of the recipe's or the floor's loop; run in a fresh interpreter after the
    series is applied, so ppocr is imported patched (the recipe's hand edits)."""
    import paddle

    if kind == "floor":
        with paddle.no_grad():
            return loop_seconds(derived(config, opts, ckpt), lambda model, batch: model(batch[0]))
    cfg = derived(config, opts, ckpt, keep_all=True)
    update_center = stock.stock_update_center(os.path.join(os.getcwd(), "tools", "program.py"))
    decode = kit_export.model.ctc_decoder(cfg["Global"])
    centers = {}

    def recipe_step(model, batch):
        nonlocal centers
        feats, probs = kit_export.model.head_outputs(model(batch[0])["Student"])  # the dict-unpacking fix
        centers = update_center(centers, decode(probs, batch[1].numpy()), (feats, probs))

    return loop_seconds(cfg, recipe_step)


def bench_e2e(tree, config, images, work):
    """(recipe / ours, ours / floor, ours with ENGINE=inference / floor, its conversion
    seconds): ours is the loop time of `make export` with ENGINE=dygraph, its report's
    seconds; the inference engine's is its loop time without the conversion (model
    building, excluded for every contender), which is printed beside it."""
    opts = write_images(os.path.join(work, "svtr"), images, "1", (48, 320))
    ckpt = os.path.join(work, "svtr_ckpt")
    make_standin(config, ckpt, "1", opts)
    parts = {}
    for engine in ("dygraph", "inference"):
        _, report, _ = make_export(tree, config, ckpt, os.path.join(work, "svtr_%s.pkl" % engine), opts, ENGINE=engine)
        if report["engine"] != engine:
            raise KitError("bench: ENGINE=%s exported with %s" % (engine, report["engine"]))
        parts[engine] = report["seconds_by_part"]
    ours = parts["dygraph"]["loop"]
    inference = parts["inference"]["loop"] - parts["inference"]["convert"]
    recognise = confusions_loop(tree, config, ckpt, opts, work)
    loops = {}
    q, _ = PatchQueue.for_tree(tree)
    with TreeLock(tree), q.applied():
        for kind in ("recipe", "floor"):
            cmd = [sys.executable, os.path.abspath(__file__), "--loop", kind, "--config", config,
                   "--ckpt", ckpt, "--opts", json.dumps(opts)]
            r = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
            if r.returncode:
                raise KitError("bench: the %s loop failed: %s" % (kind, r.stderr.strip()[-2000:]))
            loops[kind] = float(r.stdout.split()[-1])
    print("end to end  %d images of %s: ours %.1f s (ENGINE=dygraph), %.1f s + %.1f s conversion (ENGINE=inference), "
          "manual recipe %.1f s, bare Student forward %.1f s"
          % (images, os.path.basename(config), ours, inference, parts["inference"]["convert"], loops["recipe"], loops["floor"]))
    for engine, p in parts.items():
        print("  %-9s  load %.2f s, forward %.2f s, accumulate %.2f s, convert %.2f s (loop %.2f s)"
              % (engine, p["load"], p["forward"], p["accumulate"], p["convert"], p["loop"]))
    print("confusions  the same %d images (DATA=train, ENGINE=inference): %.2f s recognising, the export's loop %.2f s "
          "(both without the conversion)" % (images, recognise, inference))
    return (loops["recipe"] / ours, ours / loops["floor"], inference / loops["floor"], parts["inference"]["convert"],
            recognise / inference)


def confusions_loop(tree, config, ckpt, opts, work):
    """Seconds of `make confusions`' recognition loop (ENGINE=inference, its conversion
    excluded) on the export's images: DATA=train reads them as the export does."""
    out = os.path.join(work, "confusions.json")
    cmd = make_command("confusions", tree, sys.executable, CONFIG=config, CHECKPOINT=ckpt, DATA="train",
                       ENGINE="inference", OUTPUT=out, FORCE=1, OPTS=opts_text(opts))
    r = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
    if r.returncode:
        raise KitError("bench: make confusions failed: %s" % kit_line(r.stderr))
    with open(out, encoding="utf-8") as f:
        written = json.load(f)
    return written["seconds"] - written["seconds_convert"]


def bench_memory_and_nproc(tree, work):
    data = os.path.join(work, "tiny")
    dict_path = os.path.join(work, "dict.txt")
    with open(dict_path, "w") as f:
        f.write("".join(c + "\n" for c in "0123456789"))
    results = {}
    for count in (1000, 10000):
        opts = write_images("%s%d" % (data, count), count, "1", (32, 64))
        opts += ["Global.character_dict_path=%s" % dict_path]
        ckpt = os.path.join(work, "tiny_ckpt")
        if not os.path.exists(ckpt + ".pdparams"):
            make_standin(TINY_PLAIN, ckpt, "1", opts)
        results[count] = make_export(tree, TINY_PLAIN, ckpt, os.path.join(work, "tiny%d.pkl" % count), opts)
    wall2, _, _ = make_export(tree, TINY_PLAIN, ckpt, os.path.join(work, "tiny2.pkl"), opts, NPROC=2)
    (_, _, rss1k), (wall1, _, rss10k) = results[1000], results[10000]
    print("memory      peak RSS of make export: %.0f MiB at 1k images, %.0f MiB at 10k" % (rss1k, rss10k))
    print("processes   10k tiny images: %.1f s on 1 process, %.1f s on 2 (NPROC=2, gloo)" % (wall1, wall2))
    return rss10k / rss1k, wall1 / wall2


def main(argv):
    p = tool_arguments(__doc__)
    p.add_argument("--images", type=int, default=64, help="images for the SVTRv2 end-to-end run")
    p.add_argument("--config", default="", help="distillation config (default: the tree's SVTRv2 one)")
    p.add_argument("--loop", choices=["recipe", "floor"], help=argparse.SUPPRESS)
    p.add_argument("--ckpt", help=argparse.SUPPRESS)
    p.add_argument("--opts", help=argparse.SUPPRESS)
    p.add_argument("--loss-step", choices=["upstream", "kit"], help=argparse.SUPPRESS)
    p.add_argument("--classes", type=int, help=argparse.SUPPRESS)
    p.add_argument("--loss-classes", default="", help="dictionary sizes of the loss part (default %s)"
                   % ",".join(map(str, LOSS_CLASSES)))
    p.add_argument("--only", default="", help="comma list of parts: %s (default all)" % ",".join(PARTS))
    a = p.parse_args(argv)
    if a.loss_step:
        print("%f %f" % loss_step(a.loss_step, a.classes, a.tree))
        return 0
    if a.loop:
        sys.path.insert(0, os.getcwd())
        print(loop_in_patched_tree(a.loop, a.config, a.ckpt, json.loads(a.opts)))
        return 0
    tree = find_tree(a.tree, a.invoked_from)
    os.chdir(tree)
    sys.path.insert(0, tree)
    interrupt_on_term()  # like Ctrl-C: the series is reverted on the way out
    config = a.config or next((c for c in SVTRV2_DISTILL if os.path.isfile(os.path.join(tree, c))), None)
    if config is None:
        raise KitError("bench: this tree has no SVTRv2 distillation config; pass BENCH_CONFIG=<config>")
    parts = set((a.only or ",".join(PARTS)).split(","))
    if not parts <= set(PARTS):
        raise KitError("bench: BENCH_ONLY=%s: unknown part %s; choose from %s"
                       % (a.only, ", ".join(sorted(parts - set(PARTS))), ",".join(PARTS)))
    nan = float("nan")
    speedup = vs_recipe = vs_floor = inference_vs_floor = convert = confusions = mem = nproc = loss_mem = loss_speed = nan
    released = nan
    with tempfile.TemporaryDirectory(prefix="ppocr-center-kit-bench-") as work:
        if "accumulate" in parts:
            speedup = bench_accumulate(tree)
        if "e2e" in parts:
            vs_recipe, vs_floor, inference_vs_floor, convert, confusions = bench_e2e(tree, config, a.images, work)
        if "memory" in parts:
            mem, nproc = bench_memory_and_nproc(tree, work)
        if "loss" in parts:
            loss_mem, loss_speed = bench_loss(tree, [int(c) for c in a.loss_classes.split(",")] if a.loss_classes else LOSS_CLASSES)
        if "released" in parts:
            from bench_released import bench_released

            released = bench_released(tree, a.images, work, kit_export.engines.available_cores())
    print("bench: accumulate_speedup=%.1f e2e_vs_recipe=%.2f e2e_vs_floor=%.2f e2e_inference_vs_floor=%.2f "
          "inference_convert_s=%.1f confusions_vs_export=%.2f mem_10k_over_1k=%.2f nproc2_speedup=%.2f "
          "loss_mem_ratio=%.1f loss_speedup=%.1f released_vs_predict_rec=%.2f"
          % (speedup, vs_recipe, vs_floor, inference_vs_floor, convert, confusions, mem, nproc, loss_mem, loss_speed,
             released))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main, sys.argv[1:]))
