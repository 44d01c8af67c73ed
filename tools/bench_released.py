"""`make bench BENCH_ONLY=released`: the kit's recognition loop on PaddleOCR's released PP-OCRv4
mobile recognizer (an inference model, centerkit.released_models) against upstream's own
predictor for inference models, tools/infer/predict_rec.py's TextRecognizer, on the same
rendered lines (demo/real_lines.py).

- ours: `make confusions CHECKPOINT=<the model> ENGINE=inference`, its loop seconds without
  the conversion (the JSON's seconds - seconds_convert): the Eval pipeline's reading and
  resizing, the forward, the decoding; the config's Eval batch size;
- upstream: TextRecognizer on the images read with OpenCV, timed around its call after one
  warm-up batch (predict_rec.py's --warmup), with its defaults (rec_batch_num 6) but oneDNN
  and as many threads as the kit's engine uses (every core), so that both run one engine.

released_vs_predict_rec = ours / upstream (the goal: <= 1.2).
"""

import json
import os
import subprocess
import sys

from centerkit import KIT_ROOT, KitError, released_models
from centerkit.make_commands import kit_line, make_command, opts_text

sys.path.insert(0, os.path.join(KIT_ROOT, "demo"))
import real_lines  # noqa: E402

UPSTREAM = r"""
import glob, os, sys, time
sys.path.insert(0, os.getcwd())
import cv2
from tools.infer import utility
from tools.infer.predict_rec import TextRecognizer
args = utility.parse_args()
recognizer = TextRecognizer(args)
images = [cv2.imread(p) for p in sorted(glob.glob(os.path.join(args.image_dir, "*.png")))]
recognizer(images[:args.rec_batch_num])
start = time.perf_counter()
recognizer(images)
print(time.perf_counter() - start)
"""


def bench_released(tree, images, work, cores):
    """ours / upstream seconds on `images` rendered lines; prints both."""
    model = released_models.model_folder("pp-ocrv4-mobile", log=lambda line: print("released    " + line))
    config = released_models.config_in(tree, "pp-ocrv4-mobile")
    data = os.path.join(work, "released")
    labels = real_lines.make_lines(data, images, seed=3)
    opts = ["Global.character_dict_path=%s" % os.path.join(model, "dict.txt"),
            "Eval.dataset.data_dir=%s" % data, "Eval.dataset.label_file_list=[%s]" % labels]
    out = os.path.join(work, "released.json")
    cmd = make_command("confusions", tree, sys.executable, CONFIG=config, CHECKPOINT=model, ENGINE="inference",
                       OUTPUT=out, FORCE=1, OPTS=opts_text(opts))
    r = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
    if r.returncode:
        raise KitError("bench: make confusions on the released model failed: %s" % kit_line(r.stderr))
    with open(out, encoding="utf-8") as f:
        written = json.load(f)
    ours = written["seconds"] - written["seconds_convert"]
    cmd = [sys.executable, "-c", UPSTREAM, "--image_dir=%s" % os.path.join(data, "img"), "--rec_model_dir=%s" % model,
           "--rec_char_dict_path=%s" % os.path.join(model, "dict.txt"), "--use_gpu=False", "--enable_mkldnn=True",
           "--cpu_threads=%d" % cores]
    r = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
    if r.returncode:
        raise KitError("bench: upstream's TextRecognizer failed: %s" % r.stderr.strip()[-2000:])
    upstream = float(r.stdout.split()[-1])
    print("released    %d rendered lines, PP-OCRv4 mobile (inference model): make confusions ENGINE=inference %.2f s "
          "(%.0f lines/s, line accuracy %.3f), upstream predict_rec.py's TextRecognizer %.2f s (%.0f lines/s)"
          % (images, ours, images / ours, written["line_accuracy"], upstream, images / upstream))
    return ours / upstream
